"""The pure parts: the hash chains name what was changed or deleted; a record always gives the same lineage
events (rebuilds compare them); retention settings are checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from codex_lineage.lineage import Datasets, Lineage, parent_run_id
from moe_core.audit.chain import GENESIS, fold_root, record_hash, verify_day, verify_request
from moe_core.audit.records import from_kafka, message_types
from moe_core.contracts import Answer, ErrorInfo, Plan, PlannedTask, TaskResult, Topics, Usage, deadline_in
from moe_core.retention import DEFAULT_RETENTION_DAYS, retention_days, retention_ms

pytestmark = pytest.mark.unit
TOPICS = Topics.for_namespace("moe")
LINEAGE = Lineage(TOPICS, "moe-sovereign", Datasets("kafka://k:9092", "neo4j://n:7687", "chroma://c:8000"))


def _chain(n: int) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        content = {"seq": seq, "payload": f"message {seq}"}
        digest = record_hash(prev, content)
        rows.append({"seq": seq, "prev_hash": prev, "hash": digest, "name": f"t/0/{seq}", "content": content,
                     "day_seq": seq})
        prev = digest
    return rows


def test_an_untouched_chain_verifies() -> None:
    rows = _chain(4)
    root = GENESIS
    for row in rows:
        root = fold_root(root, row["hash"])
    assert verify_request(rows) == []
    assert verify_day(rows, root, 4, "day") == []


def test_a_changed_record_is_named() -> None:
    rows = _chain(4)
    rows[1]["content"] = {**rows[1]["content"], "payload": "changed"}
    assert [(p.record, p.problem.split(":")[0]) for p in verify_request(rows)] == [("t/0/2", "modified")]


def test_a_changed_hash_breaks_the_chain_and_the_day_root() -> None:
    rows = _chain(3)
    root = GENESIS
    for row in rows:
        root = fold_root(root, row["hash"])
    rows[0]["hash"] = "f" * 64
    problems = {(p.record, p.problem.split(":")[0]) for p in verify_request(rows)}
    assert ("t/0/1", "modified") in problems and ("t/0/2", "chain broken") in problems
    assert any(p.problem.startswith("day root differs") for p in verify_day(rows, root, 3, "day"))


def test_deleted_records_are_named_by_position() -> None:
    rows = _chain(5)
    del rows[2]
    assert [(p.record, p.problem.split(":")[0]) for p in verify_request(rows)] == [("seq 3 (before t/0/4)",
                                                                                     "missing")]
    last_deleted = _chain(3)[:2]
    problems = verify_day(last_deleted, "x", 3, "tenant t day d")
    assert problems[0].record == "tenant t day d day_seq 3..3" and problems[0].problem.startswith("missing")


def _record(message: Any, topic: str, stage: str, offset: int = 1) -> Any:
    millis = int(message.created_at.timestamp() * 1000)
    return from_kafka(topic, 0, offset, millis, message.response_id.encode(), message.model_dump_json().encode(),
                      {"x-moe-producer": stage}, message_types(TOPICS))


def test_a_task_result_is_a_child_run_with_its_facets_and_times() -> None:
    started = datetime.now(UTC) - timedelta(seconds=2)
    result = TaskResult(response_id="r1", tenant_id="acme", deadline_at=deadline_in(60), task_id="t1",
                        category="general", model="m1", server="s1", usage=Usage(prompt_tokens=5, completion_tokens=7),
                        started_at=started, confidence="high")
    events = LINEAGE.events(_record(result, TOPICS.results, "expert-worker"))
    assert events == LINEAGE.events(_record(result, TOPICS.results, "expert-worker"))  # deterministic
    start, end = events
    assert (start["eventType"], end["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == end["run"]["runId"] != parent_run_id("r1")
    assert datetime.fromisoformat(start["eventTime"]) == started
    assert end["job"] == {"namespace": "moe-sovereign", "name": "expert-worker.expert", "facets": {}}
    facets = end["run"]["facets"]
    assert facets["parent"]["run"]["runId"] == parent_run_id("r1")
    assert facets["moe_model"]["model"] == "m1" and facets["moe_model"]["server"] == "s1"
    assert facets["moe_tokens"] == {**facets["moe_tokens"], "promptTokens": 5, "completionTokens": 7}
    assert facets["moe_tenant"]["tenantId"] == "acme" and facets["moe_outcome"]["confidence"] == "high"
    assert end["inputs"][0] == {**end["inputs"][0], "namespace": "kafka://k:9092", "name": "moe.tasks.expert.v1"}


def test_a_failed_answer_fails_the_merge_and_the_request() -> None:
    answer = Answer(response_id="r2", tenant_id="acme", deadline_at=deadline_in(60), mode="moe-orchestrator",
                    error=ErrorInfo(code="deadline", message="no result in time"), finish_reason="error")
    events = LINEAGE.events(_record(answer, TOPICS.answers, "merger"))
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("merger.merge", "START"), ("merger.merge", "FAIL"), ("request", "FAIL")]
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == "no result in time"


def test_a_plan_outputs_to_the_topics_of_its_tasks() -> None:
    plan = Plan(response_id="r3", tenant_id="acme", deadline_at=deadline_in(60), mode="m", question="q",
                tasks=[PlannedTask(task_id="a", category="general", instruction="x"),
                       PlannedTask(task_id="b", kind="tool", category="math", instruction="y", tool="calc")])
    start, _ = LINEAGE.events(_record(plan, TOPICS.plans, "planner"))
    assert [o["name"] for o in start["outputs"]] == ["moe.plans.v1", "moe.tasks.expert.v1", "moe.tasks.mcp.v1"]


def test_retention_defaults_and_overrides() -> None:
    days = retention_days('{"answers": 90, "audit": -1}')
    assert days["answers"] == 90 and days["requests"] == DEFAULT_RETENTION_DAYS["requests"] == 30
    assert retention_ms(days["answers"]) == str(90 * 86_400_000) and retention_ms(days["audit"]) == "-1"
    assert set(DEFAULT_RETENTION_DAYS) == set(Topics.__dataclass_fields__)
    for bad in ('{"nope": 3}', '{"answers": 0}', "[1]"):
        with pytest.raises(ValueError):
            retention_days(bad)
