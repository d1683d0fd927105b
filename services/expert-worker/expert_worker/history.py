"""Chat history compression for expert prompts: the last turns, within a character budget."""

from __future__ import annotations

from moe_core.contracts import ChatMessage, FewShot

ELLIPSIS = " [...] "


def compress(history: list[ChatMessage], max_turns: int, max_chars: int) -> list[ChatMessage]:
    """The newest messages that fit: at most `max_turns`, at most `max_chars` characters in all.

    The newest message is always kept (shortened in the middle if it alone is over the budget); older
    messages are dropped whole, and a short note says how many were left out."""
    recent = [m for m in history if m.role in ("user", "assistant")]
    kept: list[ChatMessage] = []
    used = 0
    for message in reversed(recent[-max_turns:] if max_turns > 0 else []):
        size = len(message.content)
        if used + size <= max_chars:
            kept.append(message)
            used += size
        elif not kept:
            kept.append(message.model_copy(update={"content": shorten(message.content, max_chars)}))
            used = max_chars
        else:
            break
    kept.reverse()
    dropped = len(recent) - len(kept)
    if dropped:
        note = ChatMessage(role="system", content=f"({dropped} earlier messages of this conversation omitted)")
        kept.insert(0, note)
    return kept


def shorten(text: str, max_chars: int) -> str:
    """Keep the start and the end of an over-long text."""
    if len(text) <= max_chars:
        return text
    if max_chars <= len(ELLIPSIS):
        return text[:max_chars]
    head = (max_chars - len(ELLIPSIS)) // 2
    tail = max_chars - len(ELLIPSIS) - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def few_shot_block(examples: list[FewShot], max_chars: int) -> str:
    """Earlier answers to similar questions (from the semantic cache), for the system prompt."""
    if not examples:
        return ""
    parts = []
    budget = max_chars
    for example in examples:
        entry = f"Q: {example.question}\nA: {shorten(example.answer, max(budget - len(example.question) - 8, 0))}"
        if budget - len(entry) < 0:
            break
        parts.append(entry)
        budget -= len(entry)
    if not parts:
        return ""
    return ("\n\nEarlier answers to similar (not identical) questions, for reference only; check that they "
            "fit this question before you reuse anything:\n" + "\n\n".join(parts))
