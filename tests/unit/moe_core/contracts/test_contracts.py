"""Contracts: schemas in schemas/ match the models; envelopes behave."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from moe_core.contracts import ChatMessage, ChatRequest, Plan, PlannedTask, Topics, deadline_in, utcnow
from moe_tools.schema_export import render

pytestmark = pytest.mark.unit
SCHEMAS = Path(__file__).resolve().parents[4] / "schemas"


def test_generated_schemas_match_the_models() -> None:
    expected = render()
    on_disk = {p.name: p.read_text() for p in SCHEMAS.glob("*.json")}
    assert sorted(on_disk) == sorted(expected), "schemas/ has missing or extra files: run `make schemas`"
    drifted = [name for name, content in expected.items() if on_disk[name] != content]
    assert not drifted, f"schemas drifted from the models, run `make schemas`: {drifted}"


def test_topics_are_versioned_and_namespaced() -> None:
    topics = Topics.for_namespace("abc")
    assert all(name.startswith("abc.") and name.endswith(".v1") for name in topics.all())
    assert len(set(topics.all())) == len(topics.all())


def test_envelope_requires_identity_and_deadline() -> None:
    with pytest.raises(ValidationError):
        ChatRequest.model_validate({"mode": "m", "messages": [{"role": "user", "content": "x"}]})


def test_unknown_fields_are_ignored_so_fields_can_be_added() -> None:
    request = ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(5), mode="m",
                          messages=[ChatMessage(role="user", content="hi")])
    data = request.model_dump(mode="json") | {"a_future_field": 1}
    assert ChatRequest.model_validate(data) == request


def test_child_messages_inherit_request_identity_and_deadline() -> None:
    request = ChatRequest(response_id="r1", tenant_id="acme", deadline_at=utcnow() + timedelta(seconds=9),
                          mode="m", messages=[ChatMessage(role="user", content="hi")])
    plan = Plan(**request.child_fields(), mode="m", question="hi",
                tasks=[PlannedTask(task_id="t1", category="general", instruction="hi")])
    assert (plan.response_id, plan.tenant_id, plan.deadline_at) == ("r1", "acme", request.deadline_at)
    assert 0 < plan.remaining_seconds() <= 9
    assert not plan.expired()
