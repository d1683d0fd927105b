"""The asking principal on the messages that carry it to an ontology gap (ChatRequest -> GraphTask -> OntologyGap,
and only those), and the gap-healer's rule for classifying a term again after reviewers rejected its held
classification (gap_healer.retry)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gap_healer.retry import classes_left, held_back, memo_round
from moe_core.access.keystore import ApiKey
from moe_core.contracts import (
    ChatMessage,
    ChatRequest,
    ExpertTask,
    GraphTask,
    OntologyGap,
    Plan,
    PlannedTask,
    ResearchTask,
    ToolTask,
    deadline_in,
)
from planner.app import task_message

pytestmark = pytest.mark.unit
DAY = 86_400.0


def request(**kw: Any) -> ChatRequest:
    return ChatRequest(response_id="r1", tenant_id="clinic", deadline_at=deadline_in(30), mode="moe-orchestrator",
                       messages=[ChatMessage(role="user", content="What dose of Kardolin?")], **kw)


def test_the_asker_is_optional_on_the_three_messages_and_old_payloads_still_read() -> None:
    old = request().model_dump(mode="json")
    del old["asked_by"]
    assert ChatRequest.model_validate(old).asked_by is None
    base = {"response_id": "r1", "tenant_id": "clinic", "deadline_at": deadline_in(30)}
    assert GraphTask.model_validate({**base, "task_id": "t1", "question": "q"}).asked_by is None
    assert OntologyGap.model_validate({**base, "term": "Kardolin"}).asked_by is None
    assert OntologyGap(**base, term="Kardolin", asked_by="p-alice").asked_by == "p-alice"
    with pytest.raises(ValidationError):
        OntologyGap(**base, term="Kardolin", asked_by="p" * 201)


def test_only_the_graph_task_carries_the_asker_from_the_request() -> None:
    asked = request(asked_by="p-alice")
    kinds = [("expert", None), ("tool", "calculator"), ("research", None), ("graph", None)]
    plan = Plan(**asked.child_fields(), mode=asked.mode, question="What dose of Kardolin?",
                tasks=[PlannedTask(task_id=f"t{i}", kind=kind, category="general", instruction="q", tool=tool)
                       for i, (kind, tool) in enumerate(kinds)])  # type: ignore[arg-type]
    messages = [task_message(asked, plan, t, []) for t in plan.tasks]
    assert [type(m) for m in messages] == [ExpertTask, ToolTask, ResearchTask, GraphTask]
    assert [m.model_dump().get("asked_by") for m in messages] == [None, None, None, "p-alice"]
    assert "asked_by" not in plan.model_dump()  # data minimisation: not on the plan, nor on other tasks
    unasked = task_message(request(), plan, plan.tasks[3], [])
    assert isinstance(unasked, GraphTask) and unasked.asked_by is None


def test_a_key_acts_as_its_principal_or_else_its_own_service_account() -> None:
    assert ApiKey("k1", "n", "admin", ("t",), principal_id="p-alice").principal == "p-alice"
    assert ApiKey("k2", "n", "admin", ("t",)).principal == "sa-k2"


def rejected(now: float, rejections: int = 1, **kw: Any) -> dict[str, Any]:
    return {"state": "rejected", "review_rejections": rejections, "reviewed_at": now, "decided_at": now,
            "rejected_classes": ["NSAID"], **kw}


def test_a_gap_reviewers_rejected_waits_its_cool_down_and_stops_at_the_limit() -> None:
    now = 1_000_000.0
    assert held_back(rejected(now), DAY, 3, now + 60) == "cooling_down"
    assert held_back(rejected(now), DAY, 3, now + DAY) is None
    assert held_back(rejected(now), 0, 3, now) is None
    assert held_back(rejected(now, 3), DAY, 3, now + 10 * DAY) == "review_limit"
    assert held_back(rejected(now, 2), 0, 2, now) == "review_limit"


def test_other_gaps_are_not_held_back() -> None:
    now = 1_000_000.0
    assert held_back({"state": "rejected", "decided_at": now}, DAY, 3, now) is None  # the model's own rejection
    assert held_back({"state": "open"}, DAY, 3, now) is None
    assert held_back(rejected(now, state="quarantined"), DAY, 3, now) is None
    # the model declined a classification after the cool-down: that rejection is not the reviewers'
    assert held_back(rejected(now, decided_at=now + DAY + 5), DAY, 3, now + DAY + 10) is None


def test_a_new_classification_is_asked_afresh_without_the_rejected_classes() -> None:
    gap = rejected(0.0, 2, rejected_classes=["NSAID", "Antibiotic"])
    assert classes_left(["Antibiotic", "Drug", "NSAID", "Protocol"], gap) == ["Drug", "Protocol"]
    assert classes_left(["Drug"], {"state": "open"}) == ["Drug"]
    assert (memo_round({"state": "open"}), memo_round(gap)) == ("", ":review2")
