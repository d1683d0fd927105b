"""The pure parts: a tenant's signed chain names what was changed, deleted, reordered or inserted even when
the hashes were recomputed (the standalone verifier's checks); a record always gives the same lineage events
(rebuilds compare them); retention settings are checked."""

from __future__ import annotations

import ast
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import moe_audit_verify
from codex_lineage.lineage import Datasets, Lineage, parent_run_id
from moe_audit_verify.format import GENESIS, chain_hash, checkpoint_bytes, content_hash
from moe_audit_verify.segment import Checkpoint, Entry, verify_chain
from moe_core.audit.entries import COLUMNS, Head, entry_of_row, seal
from moe_core.audit.records import from_kafka, message_types
from moe_core.audit.signer import Signer, SigningKeyError
from moe_core.contracts import Answer, ErrorInfo, Plan, PlannedTask, TaskResult, Topics, Usage, deadline_in
from moe_core.runtime.retention import DEFAULT_RETENTION_DAYS, retention_days, retention_ms

pytestmark = pytest.mark.unit
TOPICS = Topics.for_namespace("moe")
LINEAGE = Lineage(TOPICS, "moe-sovereign", Datasets("kafka://k:9092", "neo4j://n:7687", "chroma://c:8000"))


SIGNER = Signer.ephemeral()
KEY = SIGNER.public
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _chain(n: int, tenant: str = "acme") -> list[Entry]:
    """n signed record entries of one tenant's chain, as the store writes them."""
    head, entries = Head(0, GENESIS), []
    for i in range(1, n + 1):
        values = {"response_id": f"r{(i + 1) // 2}", "topic": "moe.results.v1", "partition": 0, "offset": i,
                  "broker_ts": NOW, "message_type": "TaskResult", "stage": "expert-worker", "created_at": NOW,
                  "payload": f'{{"content":"answer {i}"}}', "rseq": 2 - i % 2}
        row = dict(zip(COLUMNS, seal(SIGNER, head, "record", tenant, NOW, values), strict=True))
        entries.append(entry_of_row(row))
    return entries


def _checkpoint(entries: list[Entry], size: int) -> Checkpoint:
    body = {"format": "moe-audit-checkpoint/1", "tenant_id": "acme", "size": size, "root": entries[size - 1].hash,
            "time": "2026-11-23T10:00:01Z", "key_id": KEY.id}
    return Checkpoint(body, SIGNER.sign(checkpoint_bytes(body)))


def _rechain(entries: list[Entry]) -> list[Entry]:
    """What someone with the database's rights (but not the key) does after a change: renumber the seqs
    and recompute every hash; the signatures stay as they were."""
    out, prev = [], GENESIS
    for seq, entry in enumerate(entries, 1):
        content = {**entry.content, "seq": seq}
        prev = chain_hash(prev, content_hash(content))
        out.append(Entry(content, prev, entry.signature))
    return out


def _findings(entries: list[Entry], checkpoints: list[Checkpoint]) -> list[tuple[str, str]]:
    return [(p.record, p.problem.split(":")[0]) for p in verify_chain(entries, checkpoints, KEY, "acme", 1,
                                                                      require_anchor=True)]


def test_an_untouched_chain_verifies() -> None:
    entries = _chain(6)
    assert _findings(entries, [_checkpoint(entries, 3), _checkpoint(entries, 6)]) == []


def test_a_changed_record_is_named_even_with_the_chain_recomputed() -> None:
    entries = _chain(6)
    checkpoints = [_checkpoint(entries, 6)]
    entries[2] = Entry({**entries[2].content, "payload": '{"content":"answer X"}'}, entries[2].hash,
                       entries[2].signature)
    assert _findings(_rechain(entries), checkpoints) == [
        ("seq 3 (moe.results.v1/0/3)", "signature does not match"),
        ("checkpoint size 6 at 2026-11-23T10:00:01Z", "the records up to seq 6 no longer hash to the root it signed")]


def test_a_deleted_record_is_named_by_its_seq_and_its_renumbered_successors() -> None:
    entries = _chain(6)
    checkpoints = [_checkpoint(entries, 6)]
    found = _findings(_rechain(entries[:2] + entries[3:]), checkpoints)
    assert found == [("seq 3..5 (seq 3 (moe.results.v1/0/4) .. seq 5 (moe.results.v1/0/6))", "renumbered"),
                     ("seq 3", "missing"),
                     ("checkpoint size 6 at 2026-11-23T10:00:01Z", "the stored chain ends at seq 5")]


def test_reordered_records_are_named_with_the_place_they_were_signed_for() -> None:
    entries = _chain(6)
    checkpoints = [_checkpoint(entries, 6)]
    swapped = [*entries[:1], entries[4], entries[2], entries[3], entries[1], entries[5]]
    found = _findings(_rechain(swapped), checkpoints)
    assert ("seq 2 (moe.results.v1/0/5)", "moved") in found and ("seq 5 (moe.results.v1/0/2)", "moved") in found
    moved = {p.record: p.problem for p in verify_chain(_rechain(swapped), checkpoints, KEY, "acme", 1,
                                                        require_anchor=True)}
    assert moved["seq 2 (moe.results.v1/0/5)"].startswith("moved: signed as seq 5, stored as seq 2")


def test_an_inserted_record_has_no_signature_of_the_key() -> None:
    entries = _chain(4)
    checkpoints = [_checkpoint(entries, 4)]
    forged = Entry({**entries[1].content, "offset": 99, "payload": '{"content":"forged"}'}, "", entries[1].signature)
    found = _findings(_rechain([*entries[:2], forged, *entries[2:]]), checkpoints)
    assert found[:2] == [("seq 3 (moe.results.v1/0/99)", "signature does not match"),
                         ("seq 4..5 (seq 4 (moe.results.v1/0/3) .. seq 5 (moe.results.v1/0/4))", "renumbered")]


def test_records_after_the_last_checkpoint_are_not_anchored_and_a_cut_tail_is_seen() -> None:
    entries = _chain(5)
    assert _findings(entries, [_checkpoint(entries, 3)]) == [("seq 4..5", "not covered by any checkpoint")]
    assert verify_chain(entries, [_checkpoint(entries, 3)], KEY, "acme", 1, require_anchor=False) == []
    assert ("checkpoint size 5 at 2026-11-23T10:00:01Z", "the stored chain ends at seq 3") in _findings(
        entries[:3], [_checkpoint(entries, 5)])


def test_a_stretch_starts_at_a_checkpoint_and_another_key_is_refused() -> None:
    entries = _chain(6)
    start = _checkpoint(entries, 2)
    assert verify_chain(entries[2:], [start, _checkpoint(entries, 6)], KEY, "acme", 3, require_anchor=True) == []
    assert [p.problem.split(" anchors")[0] for p in verify_chain(entries[2:], [], KEY, "acme", 3,
                                                                  require_anchor=False)] == [
        "no valid checkpoint of size 2"]
    other = Signer.ephemeral().public
    problems = verify_chain(entries, [], other, "acme", 1, require_anchor=False)
    assert [p.problem for p in problems] == [f"signed by key {KEY.id}, not by a given key ({other.id})"] * 6


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


def test_the_standalone_verifier_imports_nothing_of_the_fleet() -> None:
    """An auditor runs moe_audit_verify with cryptography and rfc3161-client only."""
    allowed = set(sys.stdlib_module_names) | {"cryptography", "rfc3161_client", "moe_audit_verify"}
    package = Path(moe_audit_verify.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_the_signing_key_must_not_be_open_to_every_user(tmp_path: Path) -> None:
    from fleetlib import audit_key  # deploy/local (tests/conftest puts it on the path)

    private, public = audit_key.ensure(tmp_path / "key.pem", tmp_path / "public.pem")
    assert private.stat().st_mode & 0o777 == 0o600
    assert Signer.from_file(private).public.pem() == public.read_bytes()
    private.chmod(0o640)  # a Kubernetes Secret volume: root:fsGroup, group-readable
    assert Signer.from_file(private).key_id == KEY.__class__.from_pem(public.read_bytes()).id
    private.chmod(0o644)
    with pytest.raises(SigningKeyError, match="accessible to every user"):
        Signer.from_file(private)
    with pytest.raises(SigningKeyError, match="no audit signing key"):
        Signer.from_file(tmp_path / "missing.pem")
