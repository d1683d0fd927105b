"""Output shaping per mode: code only, a word limit, a report heading — and streamed pieces always give
exactly the whole text's result (the streamed answer and Answer.content agree)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moe_core.llm import shaping
from moe_core.llm.modes import CONCISE_WORDS, MODES, expert_suffix, get_mode

pytestmark = pytest.mark.unit

CODE_ANSWER = (
    "Here is the function you asked for:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
    "And a test:\n```python\nassert add(1, 2) == 3\n```\nHope this helps!"
)


def _pieces(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


def _streamed(mode: str, pieces: list[str]) -> str:
    chain = shaping.for_mode(mode)
    return "".join(chain.feed(p) for p in pieces) + chain.flush()


def test_code_mode_keeps_only_the_code_blocks() -> None:
    assert shaping.shape("moe-orchestrator-code", CODE_ANSWER) == (
        "```python\ndef add(a, b):\n    return a + b\n```\n\n```python\nassert add(1, 2) == 3\n```")


def test_code_mode_without_fences_keeps_the_text_and_closes_an_open_fence() -> None:
    assert shaping.shape("moe-orchestrator-code", "  print('hi')\n") == "print('hi')"
    assert shaping.shape("moe-orchestrator-code", "Sure:\n```sh\nls -la") == "```sh\nls -la\n```"


def test_concise_mode_cuts_at_the_word_limit() -> None:
    text = " ".join(f"w{i}" for i in range(300)) + "."
    shaped = shaping.shape("moe-orchestrator-concise", text)
    assert shaped.split() == [f"w{i}" for i in range(CONCISE_WORDS)]
    assert shaping.shape("moe-orchestrator-concise", "Short\n\nanswer.  ") == "Short\n\nanswer."


def test_report_mode_always_starts_with_a_heading() -> None:
    assert shaping.shape("moe-orchestrator-report", "\n Tides are caused by the Moon.") == (
        "## Summary\n\nTides are caused by the Moon.")
    assert shaping.shape("moe-orchestrator-report", "# Tides\n\n## Summary\nMoon.") == "# Tides\n\n## Summary\nMoon."


def test_default_mode_only_trims() -> None:
    assert shaping.shape("moe-orchestrator", "\n  Paris.  \n") == "Paris."
    assert shaping.shape("unknown-mode", " x ") == "x"


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab `\n#.")), max_size=120),
       cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
       mode=st.sampled_from(sorted(MODES)))
def test_streamed_pieces_give_the_same_text_as_the_whole(text: str, cuts: list[int], mode: str) -> None:
    assert _streamed(mode, _pieces(text, cuts)) == shaping.shape(mode, text)


def test_concise_limit_holds_for_any_split() -> None:
    text = "one two three " * 100
    assert len(_streamed("moe-orchestrator-concise", _pieces(text, [1, 7, 8, 50, 51, 333]))
               .split()) == CONCISE_WORDS


def test_mode_catalogue() -> None:
    assert set(MODES) == {
        "moe-orchestrator", "moe-orchestrator-code", "moe-orchestrator-concise", "moe-orchestrator-agent",
        "moe-orchestrator-agent-orchestrated", "moe-orchestrator-research", "moe-orchestrator-report",
        "moe-orchestrator-plan"}
    assert get_mode("nope").id == "moe-orchestrator"
    assert expert_suffix("moe-orchestrator") == ""
    assert "120 words" in expert_suffix("moe-orchestrator-concise")
    assert get_mode("moe-orchestrator-agent").forced_categories == ("code_reviewer", "technical_support")
