"""After one chat completion on a real fleet (Kafka, Postgres): the audit API's timeline and stage runs, the
OpenLineage events (validated against the spec's JSON Schema), tenant scoping, the replay timeline with
codex-lineage stopped, the lineage rebuild, and tamper evidence. The tests run in this order (the last one
changes the store)."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import httpx
import jsonschema
import openai
import pytest

from codex_lineage.as_recorded import digest
from codex_lineage.lineage import parent_run_id
from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.lineage.conftest import Keys, LineageFleet

pytestmark = pytest.mark.e2e
SCHEMA = json.loads((Path(__file__).parents[2] / "data" / "openlineage-runevent.schema.json").read_text())
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if isinstance(value, str):
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return "T" in value
    return True


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlparse(value).scheme and (urlparse(value).netloc or ":" in value))


@pytest.fixture(scope="module")
def journey(lineage_fleet: LineageFleet, scripted_server: Scripted, keys: Keys) -> dict[str, Any]:
    """One chat completion with two expert tasks merged by the judge; waits until its lineage is complete."""
    m = f"L{uuid.uuid4().hex[:8]}"
    scripted_server.script([
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Explain tides {m}"), ("science", f"Physics of tides {m}"))},
        {"model": "expert-model", "contains": f"Explain tides {m}", "reply": "The moon pulls.\nCONFIDENCE: medium"},
        {"model": "expert-model", "contains": f"Physics of tides {m}", "reply": "Gravity.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": "Tides come from the moon's gravity."},
    ])
    since = datetime.now(UTC) - timedelta(seconds=2)
    client = openai.OpenAI(base_url=f"{lineage_fleet.gateway}/v1", api_key=keys.user, max_retries=0, timeout=60)
    response = client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Why are there tides? {m}"}])
    rid = response.id.removeprefix("chatcmpl-")
    wanted = {"planner.plan", "expert-worker.expert", "merger.merge", "request"}
    deadline = time.monotonic() + 90
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # codex-lineage is off the request path: it catches up on its own
        reply = httpx.get(f"{lineage_fleet.control_plane}/v1/lineage/{rid}", headers=_auth(keys.user), timeout=10)
        events = reply.json().get("events", []) if reply.status_code == 200 else []
        ended = {e["job"]["name"] for e in events if e["eventType"] in ("COMPLETE", "FAIL")}
        experts = {e["run"]["runId"] for e in events if e["job"]["name"] == "expert-worker.expert"
                   and e["eventType"] == "COMPLETE"}
        if wanted <= ended and len(experts) == 2:
            break
        time.sleep(0.3)
    return {"rid": rid, "answer": response.choices[0].message.content, "since": since, "events": events}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _audit(fleet: LineageFleet, rid: str, token: str, **params: str) -> httpx.Response:
    return httpx.get(f"{fleet.control_plane}/v1/audit/{rid}", headers=_auth(token), params=params, timeout=30)


def _cross_tenant_reads(fleet: LineageFleet, tenant: str, rid: str) -> int:
    """The operator's reads of `rid` in the tenant's audit chain (policy_decision records of audit.read), once
    codex-lineage has stored at least one (it consumes the audit topic; 60 s at most)."""
    query = (f"SELECT count(*) FROM {fleet.schema}.audit_log WHERE tenant_id = $1 AND kind = 'record' "
             "AND payload LIKE '%policy_decision%' AND payload LIKE '%audit.read%' AND payload LIKE $2")

    async def count() -> int:
        conn = await asyncpg.connect(fleet.owner_dsn)
        try:
            return int(await conn.fetchval(query, tenant, f"%{rid}%"))
        finally:
            await conn.close()

    import asyncio

    for _ in range(120):
        found = asyncio.run(count())
        if found:
            return found
        time.sleep(0.5)
    return 0


def test_audit_lists_every_stage_run_with_its_times(lineage_fleet: LineageFleet, journey: dict[str, Any],
                                                    keys: Keys) -> None:
    reply = _audit(lineage_fleet, journey["rid"], keys.user)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["tenant_id"] == keys.tenant
    timeline = body["timeline"]
    kinds = [(row["stage"], row["message_type"]) for row in timeline]
    for expected in [("gateway", "ChatRequest"), ("planner", "Plan"), ("planner", "ExpertTask"),
                     ("expert-worker", "TaskResult"), ("merger", "Answer")]:
        assert expected in kinds, (expected, kinds)
    stamps = [datetime.fromisoformat(row["broker_timestamp"]) for row in timeline]  # ISO: no fixed precision
    assert stamps == sorted(stamps)
    for row in timeline:
        assert row["topic"].startswith(lineage_fleet.env["MOE_TOPIC_NAMESPACE"])
        assert isinstance(row["partition"], int) and isinstance(row["offset"], int) and row["created_at"]
    plan = next(r for r in timeline if r["message_type"] == "Plan")["summary"]
    assert sorted(t["category"] for t in plan["tasks"]) == ["general", "science"]
    results = [r["summary"] for r in timeline if r["message_type"] == "TaskResult"]
    assert {(r["model"], r["server"]) for r in results} == {("expert-model", "scripted")}
    answer = next(r for r in timeline if r["message_type"] == "Answer")["summary"]
    assert answer["content"] == journey["answer"] and answer["cache_hit"] is False
    assert sorted(answer["experts_used"]) == ["general", "science"]
    runs = body["stage_runs"]
    by_job: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_job.setdefault(run["job"], []).append(run)
    assert len(by_job["planner.plan"]) == 1 and len(by_job["expert-worker.expert"]) == 2
    assert len(by_job["merger.merge"]) == 1 and len(by_job["request"]) == 1
    parent = by_job["request"][0]
    for run in runs:
        assert run["state"] == "COMPLETE", run
        assert run["started_at"] <= run["ended_at"], run
        if run is not parent:
            assert run["parent_run_id"] == parent["run_id"]
    plan_run, merge_run = by_job["planner.plan"][0], by_job["merger.merge"][0]
    # started_at (set as each stage consumed its input): the plan and the merge are real spans, not instants
    assert plan_run["started_at"] < plan_run["ended_at"] and merge_run["started_at"] < merge_run["ended_at"]
    assert plan_run["ended_at"] <= min(r["started_at"] for r in by_job["expert-worker.expert"])
    assert max(r["ended_at"] for r in by_job["expert-worker.expert"]) <= merge_run["ended_at"]


def test_another_tenants_request_is_not_found_like_an_unknown_one(lineage_fleet: LineageFleet,
                                                                  journey: dict[str, Any], keys: Keys) -> None:
    foreign = _audit(lineage_fleet, journey["rid"], keys.other)
    unknown = _audit(lineage_fleet, f"no-such-{uuid.uuid4().hex}", keys.user)
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["error"]["code"] == unknown.json()["error"]["code"] == "not_found"
    lineage = httpx.get(f"{lineage_fleet.control_plane}/v1/lineage/{journey['rid']}", headers=_auth(keys.other))
    assert lineage.status_code == 404
    assert httpx.get(f"{lineage_fleet.control_plane}/v1/audit/{journey['rid']}").status_code == 401
    assert _audit(lineage_fleet, journey["rid"], "moe-wrong-key").status_code == 401
    assert _audit(lineage_fleet, journey["rid"], keys.tenant_admin).status_code == 404  # another tenant's admin
    assert _audit(lineage_fleet, journey["rid"], keys.admin).status_code == 200  # the operator: policy allows it
    assert _cross_tenant_reads(lineage_fleet, keys.tenant, journey["rid"]) >= 1  # and that read is on the record
    as_client_saw_it = _audit(lineage_fleet, f"chatcmpl-{journey['rid']}", keys.user)  # the SDK's id works too
    assert as_client_saw_it.status_code == 200 and as_client_saw_it.json()["response_id"] == journey["rid"]
    assert _audit(lineage_fleet, journey["rid"], keys.user, verify="maybe").status_code == 400


def test_lineage_is_openlineage_json_with_start_and_complete_per_run(lineage_fleet: LineageFleet,
                                                                     journey: dict[str, Any], keys: Keys) -> None:
    reply = httpx.get(f"{lineage_fleet.control_plane}/v1/lineage/{journey['rid']}", headers=_auth(keys.user),
                      timeout=30)
    assert reply.status_code == 200
    events = reply.json()["events"]
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=FORMATS)
    for event in events:
        errors = [e.message for e in validator.iter_errors(event)]
        assert not errors, (errors, event)
    parent = parent_run_id(journey["rid"])
    by_run: dict[str, list[str]] = {}
    # (the planner's egress decision is an audit event, a run of its own: service:planner.egress.decided)
    assert len({e["run"]["runId"] for e in events if e["job"]["name"].endswith("egress.decided")}) == 1
    events = [e for e in events if not e["job"]["name"].endswith("egress.decided")]
    for event in events:
        by_run.setdefault(event["run"]["runId"], []).append(event["eventType"])
        if event["run"]["runId"] != parent:
            assert event["run"]["facets"]["parent"]["run"]["runId"] == parent
        assert event["run"]["facets"]["moe_tenant"]["tenantId"] == keys.tenant
    assert len(by_run) == 5  # the request, the plan, two expert tasks, the merge
    assert all(sorted(types) == ["COMPLETE", "START"] for types in by_run.values()), by_run
    expert = next(e for e in events if e["job"]["name"] == "expert-worker.expert" and e["eventType"] == "COMPLETE")
    assert expert["run"]["facets"]["moe_model"]["model"] == "expert-model"
    assert expert["run"]["facets"]["moe_model"]["server"] == "scripted"
    assert expert["run"]["facets"]["moe_tokens"]["completionTokens"] > 0
    assert expert["inputs"][0]["name"].endswith(".tasks.expert.v1")
    # every stage run says which configuration and prompt templates it ran with
    prompts = {e["job"]["name"]: e["run"]["facets"]["moe_versions"]["promptDigests"] for e in events}
    assert set(prompts["planner.plan"]) == {"planner.plan"}
    assert set(prompts["expert-worker.expert"]) <= {f"expert.{c}" for c in ("general", "science")}
    assert "merger.judge" in prompts["merger.merge"]
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", e["run"]["facets"]["moe_versions"]["configDigest"])
               for e in events)
    assert expert["inputs"][0]["namespace"].startswith("kafka://")
    # every custom facet names a JSON Schema codex-lineage serves
    for name, facet in expert["run"]["facets"].items():
        if name.startswith("moe_"):
            path = urlparse(facet["_schemaURL"]).path.rsplit("/", 1)[1]
            schema = httpx.get(f"{lineage_fleet.lineage}/api/v1/facets/{path}", timeout=10)
            assert schema.status_code == 200, name
            definition = schema.json()["$defs"][path.removesuffix(".json")]["allOf"][1]
            jsonschema.validate({k: v for k, v in facet.items() if not k.startswith("_")}, definition)


def test_rebuild_lineage_from_the_topics_equals_the_live_store(lineage_fleet: LineageFleet,
                                                                journey: dict[str, Any]) -> None:
    until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    done = lineage_fleet.replay("rebuild", "lineage", "--since", journey["since"].isoformat(), "--until", until)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "EQUAL" in done.stdout
    assert " 0 lineage events" not in done.stdout, done.stdout


def test_replay_rerun_asks_todays_fleet_under_a_new_id(lineage_fleet: LineageFleet, journey: dict[str, Any],
                                                       keys: Keys) -> None:
    done = lineage_fleet.replay("rerun", journey["rid"], "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"replayed {journey['rid']} as replay-")
    assert lines[1:] == ["plan:    same", "task:    expert:general: same (expert-model)",
                         "task:    expert:science: same (expert-model)", "experts: same",
                         "plan:    versions same", "answer:  versions same",  # same settings and prompt templates
                         "answer:  same"]  # the same scripted models answer, stage by stage
    new_id = lines[0].rsplit(" ", 1)[1]
    deadline = time.monotonic() + 60
    timeline: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not any(r["message_type"] == "Answer" for r in timeline):
        reply = _audit(lineage_fleet, new_id, keys.user)
        timeline = reply.json()["timeline"] if reply.status_code == 200 else []
        time.sleep(0.3)
    request = next(r for r in timeline if r["message_type"] == "ChatRequest")
    assert request["summary"]["replay_of"] == journey["rid"]
    original = _audit(lineage_fleet, journey["rid"], keys.user).json()["timeline"]
    assert any(r["message_type"] == "IngestEvent" for r in original)
    assert not any(r["message_type"] == "IngestEvent" for r in timeline)  # a replay is not learned


def test_replay_rerun_as_recorded_presents_every_stage_from_the_signed_record(
        lineage_fleet: LineageFleet, journey: dict[str, Any]) -> None:
    done = lineage_fleet.replay("rerun", "--as-recorded", journey["rid"])
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"as recorded: {journey['rid']} (tenant ") and ", verified (" in lines[0], lines[0]
    [plan] = [ln for ln in lines if ln.startswith("plan ")]
    assert "by planner-model: 2 tasks (expert:general, expert:science)" in plan, plan
    tasks = sorted(ln for ln in lines if ln.startswith("task "))
    assert len(tasks) == 2 and all(" expert-model @ " in t and " output sha256:" in t for t in tasks), tasks
    assert "expert:general" in tasks[0] + tasks[1] and "expert:science" in tasks[0] + tasks[1]
    [answer] = [ln for ln in lines if ln.startswith("answer ")]
    assert f"content {digest(journey['answer'])} ({len(journey['answer'])} chars)" in answer, answer
    as_json = json.loads(lineage_fleet.replay("rerun", "--as-recorded", "--json", journey["rid"]).stdout)
    assert as_json["verified"] and [s["stage"] for s in as_json["stages"]][:2] == ["request", "plan"]
    missing = lineage_fleet.replay("rerun", "--as-recorded", f"r-{uuid.uuid4().hex}")
    assert missing.returncode == 2 and "no stored record of" in missing.stderr


def test_replay_timeline_works_with_codex_lineage_stopped(lineage_fleet: LineageFleet, journey: dict[str, Any],
                                                          keys: Keys) -> None:
    api_timeline = _audit(lineage_fleet, journey["rid"], keys.user).json()["timeline"]
    lineage_fleet.fleet["codex-lineage"].stop()
    try:
        done = lineage_fleet.replay("timeline", journey["rid"], "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == api_timeline
        text = lineage_fleet.replay("timeline", journey["rid"])
        assert text.returncode == 0 and journey["rid"] in text.stdout and "merger" in text.stdout
        missing = lineage_fleet.replay("timeline", f"no-such-{uuid.uuid4().hex}")
        assert missing.returncode == 2
    finally:
        lineage_fleet.fleet["codex-lineage"].start()
        lineage_fleet.fleet["codex-lineage"].wait_ready()


async def test_a_changed_or_deleted_record_fails_verification(lineage_fleet: LineageFleet, journey: dict[str, Any],
                                                              keys: Keys) -> None:
    """The plain attack (a row changed or deleted, nothing recomputed):
    tests/lineage/codex_lineage/test_signed_record.py has the attacks that recompute the chain."""
    rid = journey["rid"]
    deadline = time.monotonic() + 60
    clean: dict[str, Any] = {}
    while time.monotonic() < deadline and not clean.get("anchored"):  # a checkpoint follows within a second
        clean = _audit(lineage_fleet, rid, keys.user, verify="true").json()["verification"]
        time.sleep(0.3)
    assert clean["verified"] is True and clean["anchored"] is True and clean["problems"] == [], clean
    done = lineage_fleet.replay("verify", rid)
    assert done.returncode == 0 and "verified: " in done.stdout, done.stdout + done.stderr
    conn = await asyncpg.connect(lineage_fleet.owner_dsn)  # the store's owner: the gateway's role cannot write
    try:
        table = f'"{lineage_fleet.schema}".audit_log'
        plan = await conn.fetchrow(f"SELECT seq, topic, partition, \"offset\" FROM {table} "
                                   "WHERE response_id=$1 AND message_type='Plan'", rid)
        await conn.execute(f"UPDATE {table} SET payload = replace(payload, 'science', 'finance') "
                           "WHERE response_id=$1 AND message_type='Plan'", rid)
        position = f"{plan['topic']}/{plan['partition']}/{plan['offset']}"
        name = f"seq {plan['seq']} ({position})"
        changed = _audit(lineage_fleet, rid, keys.user, verify="true").json()["verification"]
        assert changed["verified"] is False
        assert {"record": name, "problem": "signature does not match: changed after codex-lineage signed it, or "
                                           "inserted (never signed by codex-lineage)"} in changed["problems"]
        cli = lineage_fleet.replay("verify", rid)
        assert cli.returncode == 1 and f"FAILED  {name}: signature does not match" in cli.stdout
        assert f"FAILED  {position}: differs from the Kafka record it was stored from: payload changed" in cli.stdout
        answer = await conn.fetchrow(f"SELECT seq FROM {table} WHERE response_id=$1 "
                                     "AND message_type='Answer'", rid)
        await conn.execute(f"DELETE FROM {table} WHERE response_id=$1 AND message_type='Answer'", rid)
        deleted = _audit(lineage_fleet, rid, keys.user, verify="true").json()["verification"]
        assert {"record": f"seq {answer['seq']}", "problem": "missing: deleted from the store"} in deleted["problems"]
    finally:
        await conn.close()
