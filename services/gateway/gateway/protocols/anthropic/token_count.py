"""Counting a prompt's tokens before it is sent (POST /v1/messages/count_tokens, the Responses API's
input estimate). The fleet routes one request to several models with different tokenizers, so no
single count is the bill; this one is deterministic and offline: the WordPiece tokenizer packaged with
the fleet's embedding model (all-MiniLM-L6-v2, `moe_core.knowledge.embeddings.model_files`), without special
tokens, over the text the experts would see: system prompt, every message's text, tool calls and
results, and the tool definitions as JSON."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from moe_core.contracts import ChatMessage
from moe_core.runtime.openai_error import OpenAIError


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    from moe_core.knowledge.embeddings import EmbeddingUnavailable, model_files  # imported here: it loads chromadb

    try:
        path = model_files()[1]
    except EmbeddingUnavailable as exc:  # a broken install: say so, never a 500
        raise OpenAIError(503, f"token counting is unavailable: {exc}", "server_error",
                          code="tokenizer_unavailable") from None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def count_text(text: str) -> int:
    if not text:
        return 0
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)


def count_prompt(messages: list[ChatMessage], tools: list[dict[str, Any]] | None = None) -> int:
    """Tokens of the internal (OpenAI-form) messages and tool definitions."""
    parts = [m.content for m in messages]
    parts += [json.dumps(m.tool_calls, ensure_ascii=False) for m in messages if m.tool_calls]
    if tools:
        parts.append(json.dumps(tools, ensure_ascii=False))
    return sum(count_text(p) for p in parts)
