"""`replay rerun --as-recorded` re-executes a recorded request with the recorded model outputs (real broker, Postgres,
timestamp authority; scripted models): after the models changed it reproduces the recorded answer byte for byte
without asking a model; a changed prompt template is named as the first differing stage; a tampered record is not
re-executed. Its own tenant, so the tampering touches no other test's chain."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import asyncpg
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, plan_reply
from tests.lineage.conftest import LineageFleet, reexecution, tenant_user

pytestmark = pytest.mark.e2e
JUDGED = ("An eclipse needs the new moon on a node of its orbit:\n  the moon then covers the sun (or the earth's "
          "shadow the moon).")


@pytest.fixture(scope="module")
def recorded(lineage_fleet: LineageFleet, scripted_server: Scripted, infra: dict[str, str]) -> dict[str, Any]:
    """One request of a tenant of its own: two expert tasks merged by the judge, recorded and checkpointed."""
    tenant, key = tenant_user(infra, "replay-user")
    m = f"E{uuid.uuid4().hex[:8]}"
    scripted_server.script([
        {"model": "planner-model", "contains": m,
         "reply": plan_reply(("general", f"Explain eclipses {m}"), ("science", f"Orbital nodes and eclipses {m}"))},
        {"model": "expert-model", "contains": f"Explain eclipses {m}",
         "reply": "The moon covers the sun.\nCONFIDENCE: high"},
        {"model": "expert-model", "contains": f"Orbital nodes and eclipses {m}",
         "reply": "The orbits cross at two nodes.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": JUDGED},
    ])
    rid, answer = lineage_fleet.ask(key, f"Why are there eclipses? {m}")
    lineage_fleet.wait_settled(tenant)  # every record stored and covered by a checkpoint
    return {"rid": rid, "m": m, "answer": answer}


def test_the_record_holds_every_model_call_with_its_output(lineage_fleet: LineageFleet,
                                                           recorded: dict[str, Any]) -> None:
    outputs = [o for p in lineage_fleet.records(recorded["rid"]) for o in p.get("model_outputs") or []]
    by_stage = sorted((o["stage"], o["task_id"] or "-") for o in outputs)
    assert ("planner", "-") in by_stage and ("expert-worker", "t1") in by_stage and ("expert-worker", "t2") in by_stage
    judge = [o for o in outputs if o["stage"] == "merger" and o["content"] == JUDGED]
    assert judge and judge[0]["model"] == "judge-model" and judge[0]["prompt"].startswith("sha256:")
    assert all(not o["replayed"] and o["error"] is None for o in outputs)


def test_as_recorded_reproduces_the_answer_after_the_models_changed(
        lineage_fleet: LineageFleet, scripted_server: Scripted, recorded: dict[str, Any], changed_models: str) -> None:
    done = lineage_fleet.rerun("--as-recorded", recorded["rid"])
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    head, replay_id = reexecution(lines)
    answered, total = map(int, re.search(r": (\d+) of (\d+) recorded model calls", head).groups())  # type: ignore[union-attr]
    assert answered == total >= 4, head  # planner, two experts, the judge (and the merger's thinking)
    compared = lines[lines.index(head) + 1:]
    assert compared[:3] == ["  plan     same: 2 tasks", "  task t1  same: expert:general",
                            "  task t2  same: expert:science"]
    assert compared[3].startswith(f"  answer   same: {len(recorded['answer'])} chars, sha256:"), compared
    assert lines[-1] == "REPRODUCED: the answer is byte for byte the recorded one"
    assert calls_for(scripted_server.calls(), changed_models) == []  # no model was asked
    replayed = lineage_fleet.records(replay_id, until="Answer")  # the re-execution is on the record too, as a replay
    answer = next(p for p in replayed if p["type"] == "Answer")
    assert answer["content"] == recorded["answer"] and answer["replay_of"] == recorded["rid"]
    assert all(o["replayed"] for p in replayed for o in p.get("model_outputs") or [])
    assert not any(p["type"] == "IngestEvent" for p in replayed)  # nothing learned from it
    today = lineage_fleet.rerun("--today", recorded["rid"])
    assert today.returncode == 0 and "answer:  same" not in today.stdout, today.stdout  # the models did change


def test_a_changed_prompt_template_is_named_and_not_reproduced(lineage_fleet: LineageFleet, recorded: dict[str, Any],
                                                               changed_models: str) -> None:
    planner = lineage_fleet.fleet["planner"]
    original = dict(planner.env)
    planner.stop()
    planner.env = {**original, "MOE_PLANNER_MAX_TASKS": "3"}  # rendered into the planner's system prompt
    try:
        planner.start()
        planner.wait_ready()
        done = lineage_fleet.rerun("--as-recorded", recorded["rid"])
    finally:
        planner.stop()
        planner.env = original
        planner.start()
        planner.wait_ready()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REPRODUCED: the answer is byte for byte the recorded one" not in done.stdout
    assert ("NOT REPRODUCED: first differing stage: plan (replay as recorded: planner: its system prompt differs from "
            "the recorded one (the prompt template changed") in done.stdout, done.stdout


def test_a_tampered_record_is_not_re_executed(lineage_fleet: LineageFleet, recorded: dict[str, Any],
                                              changed_models: str) -> None:
    table = f'"{lineage_fleet.schema}".audit_log'
    swap = (f"UPDATE {table} SET payload = replace(payload, $2, $3) WHERE response_id=$1 AND seq = (SELECT min(seq) "
            f"FROM {table} "
            "WHERE response_id=$1 AND kind='record' AND message_type='TaskResult' AND strpos(payload, $2) > 0)")

    async def tamper(old: str, new: str) -> str:
        conn = await asyncpg.connect(lineage_fleet.owner_dsn)  # the store's owner, nothing recomputed
        try:
            return str(await conn.execute(swap, recorded["rid"], old, new))
        finally:
            await conn.close()

    assert asyncio.run(tamper("The orbits cross at two nodes.", "The orbits never cross.")) == "UPDATE 1"
    try:
        done = lineage_fleet.rerun("--as-recorded", recorded["rid"])
    finally:
        asyncio.run(tamper("The orbits never cross.", "The orbits cross at two nodes."))
    assert done.returncode == 1, done.stdout + done.stderr
    assert ", NOT verified (" in done.stdout.splitlines()[0]
    assert done.stdout.splitlines()[-1] == "NOT REPRODUCED: the record does not verify, so it is not re-executed"
    assert not any(ln.startswith("re-executed as") for ln in done.stdout.splitlines())
