"""Which cached answers a request may get (moe_core.llm.exact_cache.fits): not longer than its max_tokens, without
its stop sequences."""

from __future__ import annotations

import pytest

from moe_core.contracts import ChatMessage, ChatRequest, GenerationParams, deadline_in
from moe_core.llm.exact_cache import ExactEntry, answer_of, answer_tokens, fits

pytestmark = pytest.mark.unit
ANSWER = "Paris is the capital of France, on the Seine."


def _request(**params: object) -> ChatRequest:
    return ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(9), mode="moe-orchestrator",
                       messages=[ChatMessage(role="user", content="capital of France?")],
                       params=GenerationParams(**params))  # type: ignore[arg-type]


@pytest.mark.parametrize(("params", "tokens", "expected"), [
    ({}, 12, True),
    ({"max_tokens": 12}, 12, True),
    ({"max_tokens": 11}, 12, False),
    ({"max_tokens": 12}, None, True),  # an older entry: 45 characters / 4 -> 12 tokens
    ({"max_tokens": 11}, None, False),
    ({"stop": ["Seine"]}, 12, False),
    ({"stop": ["Lyon", ""]}, 12, True),
])
def test_a_cached_answer_fits_a_request_within_its_max_tokens_and_without_its_stop_sequences(
        params: dict[str, object], tokens: int | None, expected: bool) -> None:
    entry = ExactEntry(cache_key="k", question="capital of France?", answer=ANSWER, completion_tokens=tokens)
    assert answer_tokens(entry) == (tokens if tokens is not None else 12)
    assert fits(_request(**params), entry) is expected
    found = answer_of(_request(**params), entry.model_dump_json(), "capital of France?")
    assert (found is not None) is expected
    if found is not None:
        assert found.content == ANSWER and found.cache_hit
