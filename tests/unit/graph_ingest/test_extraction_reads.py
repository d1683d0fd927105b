"""What learning's extraction call reads of an answer (issue 52): its first words, in proportion to the triples it
may return, not a long answer whole; a short answer whole."""

from __future__ import annotations

import pytest

from graph_ingest import core
from moe_core.contracts import IngestEvent, deadline_in

pytestmark = pytest.mark.unit
LONG = " ".join(f"w{i}" for i in range(1000))  # a long answer: ~1,000 words, under MAX_ANSWER_CHARS' 6,000 characters


def _event(answer: str) -> IngestEvent:
    return IngestEvent(response_id="r", tenant_id="acme", deadline_at=deadline_in(10), question="What about tides?",
                       answer=answer)


def test_a_long_answer_is_read_to_its_words_per_triple() -> None:
    user = core.extraction_messages(_event(LONG), 8)[1]["content"]
    read = 8 * core.ANSWER_WORDS_PER_TRIPLE
    assert user.endswith(" ".join(f"w{i}" for i in range(read)) + " [...]") and f"w{read}" not in user
    assert len(user.split()) < 250 < len(LONG[:core.MAX_ANSWER_CHARS].split())  # was the 6,000 characters
    fewer = core.extraction_messages(_event(LONG), 2)[1]["content"]
    assert f"w{2 * core.ANSWER_WORDS_PER_TRIPLE - 1} [...]" in fewer and "w50" not in fewer


def test_a_short_answer_is_read_whole_with_its_lines() -> None:
    answer = "Tides follow the Moon.\n\n- Two bulges\n- Twice a day"
    user = core.extraction_messages(_event(answer), 8)[1]["content"]
    assert user == f"Question: What about tides?\n\nAnswer:\n{answer}"
