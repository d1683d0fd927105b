"""The official openai SDK reads and re-serialises our completions as its types say, without a warning: OpenAI types
a completion's `metadata` as strings only, so the fleet's own fields (lists, booleans, objects) ride in `moe`, a
field no protocol defines, which the SDK keeps in `model_extra` (`to_dict()["moe"]`). A plain completion, a stream's
final chunk and a parse() structured answer; the Responses API echoes the client's metadata, strings only."""

from __future__ import annotations

import json
import warnings
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.conftest import Scripted
from tests.e2e.helpers import marker, plan_reply
from tests.support.moe_fields import moe

pytestmark = pytest.mark.e2e


class City(BaseModel):
    name: str
    country: str


@pytest.fixture
def client(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)


def _script(scripted: Scripted, m: str, reply: str) -> None:
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name the capital {m}"))},
        {"model": "expert-model", "contains": m, "reply": f"{reply}\nCONFIDENCE: medium"},
        {"model": "judge-model", "contains": m, "reply": reply},
    ])


def _serialise_strictly(obj: BaseModel, exclude: Any = None) -> None:
    """What a client does with a response it keeps or passes on: any pydantic serializer warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obj.model_dump(mode="json", exclude=exclude)
        obj.model_dump_json(exclude=exclude)


def test_a_completion_serialises_without_a_warning_and_the_fleets_fields_are_in_moe(
        client: openai.OpenAI, scripted: Scripted) -> None:
    m = marker()
    _script(scripted, m, "Paris.")
    response = client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"The capital of France? {m}"}])
    _serialise_strictly(response)
    assert response.metadata is None  # nothing of the fleet's in OpenAI's strings-only field
    fields = moe(response)
    assert fields == response.to_dict()["moe"]
    assert fields["response_id"] == response.id.removeprefix("chatcmpl-")
    assert fields["cache_hit"] is False and fields["experts_used"] == ["general"] and fields["missing"] == []


def test_a_streams_chunks_serialise_without_a_warning_and_the_final_one_carries_moe(
        client: openai.OpenAI, scripted: Scripted) -> None:
    m = marker()
    _script(scripted, m, "Paris.")
    chunks = list(client.chat.completions.create(
        model="moe-orchestrator", stream=True, messages=[{"role": "user", "content": f"The capital of France? {m}"}]))
    for chunk in chunks:
        _serialise_strictly(chunk)
        assert "metadata" not in chunk.to_dict()
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    fields = moe(final)
    assert fields["revised"] is False and fields["experts_used"] == ["general"]
    assert [c for c in chunks if (c.model_extra or {}).get("moe")] == [final]  # the fleet's fields once, at the end


def test_a_parsed_structured_answer_serialises_without_a_warning(client: openai.OpenAI, scripted: Scripted) -> None:
    m = marker()
    _script(scripted, m, json.dumps({"name": "Paris", "country": "France"}))
    parsed = client.chat.completions.parse(
        model="moe-orchestrator", response_format=City,
        messages=[{"role": "user", "content": f"The capital of France, as a city? {m}"}])
    assert parsed.choices[0].message.parsed == City(name="Paris", country="France")
    # `parsed` itself warns whatever the server sends: the SDK types it with an unbound TypeVar (its own defect,
    # openai/openai-python#2872), so it is left out; everything the server sent is serialised
    _serialise_strictly(parsed, exclude={"choices": {"__all__": {"message": {"parsed"}}}})
    assert moe(parsed)["experts_used"] == ["general"]


def test_the_responses_api_echoes_the_clients_metadata_strings_only(
        client: openai.OpenAI, scripted: Scripted) -> None:
    m = marker()
    _script(scripted, m, "Paris.")
    response = client.responses.create(model="moe-orchestrator", input=f"The capital of France? {m}",
                                       metadata={"ticket": "T-1"})
    assert response.metadata == {"ticket": "T-1"}
    _serialise_strictly(response)
    with pytest.raises(openai.BadRequestError) as refused:  # as OpenAI: a value that is not a string is a 400
        client.responses.create(model="moe-orchestrator", input=f"Again? {m}",
                                metadata={"priority": 1})  # type: ignore[dict-item]
    assert "metadata" in str(refused.value)
