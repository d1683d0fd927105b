"""The signed record on the real broker, Postgres and timestamp authority. Someone with the audit store's owner
rights modifies, deletes, reorders or inserts a row and recomputes the chain's hashes: `replay verify` names
what was changed (from the signatures, the signed checkpoints and the Kafka records it was stored from).
A tenant's period exported with `replay export` verifies offline with the standalone verifier
(python -m moe_audit_verify, no database, no fleet); a modified export does not; bad requests get clear
errors. Each attack is undone before the next (the snapshot is written back)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import openai
import pytest
from aiokafka import AIOKafkaConsumer

from moe_core.runtime.kafka_clients import client_kwargs
from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.lineage.attacker import Attacker
from tests.lineage.conftest import LineageFleet
from tests.support.fleet import REPO
from tests.support.keys import new_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Recorded:
    rid: str
    tenant: str
    since: datetime
    until: datetime


@pytest.fixture(scope="module")
def recorded(lineage_fleet: LineageFleet, scripted_server: Scripted, infra: dict[str, str]) -> Recorded:
    """One request of a tenant of its own, recorded completely and covered by a checkpoint."""
    tenant = new_namespace("signed")
    [key] = new_keys(infra["postgres"], ("signed-record", "user", [tenant]))
    m = f"S{uuid.uuid4().hex[:8]}"
    scripted_server.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Explain tides {m}"))},
        {"model": "expert-model", "contains": f"Explain tides {m}", "reply": "The moon pulls.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": "Tides come from the moon's gravity."},
    ])
    since = datetime.now(UTC) - timedelta(seconds=1)
    client = openai.OpenAI(base_url=f"{lineage_fleet.gateway}/v1", api_key=key, max_retries=0, timeout=60)
    response = client.chat.completions.create(model="moe-orchestrator",
                                              messages=[{"role": "user", "content": f"Why tides? {m}"}])
    rid = response.id.removeprefix("chatcmpl-")
    lineage_fleet.wait_settled(tenant)
    return Recorded(rid, tenant, since, datetime.now(UTC))


@pytest.fixture
async def attacker(lineage_fleet: LineageFleet, recorded: Recorded) -> AsyncIterator[Attacker]:
    """The database owner's connection to the tenant's chain; whatever it did is undone afterwards."""
    assert lineage_fleet.replay("verify", recorded.rid).returncode == 0  # clean before each attack
    conn = await asyncpg.connect(lineage_fleet.owner_dsn)
    who = Attacker(conn, lineage_fleet.schema, recorded.tenant)
    before = await who.snapshot()
    try:
        yield who
    finally:
        await who.restore(before)
        await conn.close()


def _position(row: asyncpg.Record) -> str:
    return f"{row['topic']}/{row['partition']}/{row['offset']}"


def _verify(fleet: LineageFleet, rid: str) -> list[str]:
    done = fleet.replay("verify", rid)
    assert done.returncode == 1, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("FAILED")]


async def test_a_modified_answer_is_named_though_the_hashes_were_recomputed(
        lineage_fleet: LineageFleet, recorded: Recorded, attacker: Attacker) -> None:
    answer = await attacker.row("response_id=$2 AND message_type='Answer'", recorded.rid)
    await attacker.execute("UPDATE {table} SET payload = replace(payload, 'moon', 'sun') WHERE tenant_id=$1 "
                           "AND seq=$2", recorded.tenant, answer["seq"])
    await attacker.rechain()
    failed = _verify(lineage_fleet, recorded.rid)
    name = f"seq {answer['seq']} ({_position(answer)})"
    assert f"FAILED  {name}: signature does not match: changed after codex-lineage signed it, or inserted (never " \
           "signed by codex-lineage)" in failed
    assert any("no longer hash to the root it signed" in line for line in failed), failed
    assert f"FAILED  {_position(answer)}: differs from the Kafka record it was stored from: payload changed" in failed


async def test_a_deleted_record_is_named_though_its_successors_were_renumbered(
        lineage_fleet: LineageFleet, recorded: Recorded, attacker: Attacker) -> None:
    plan = await attacker.row("response_id=$2 AND message_type='Plan'", recorded.rid)
    await attacker.execute("DELETE FROM {table} WHERE tenant_id=$1 AND seq=$2", recorded.tenant, plan["seq"])
    await attacker.shift(plan["seq"] + 1, -1)
    await attacker.execute("UPDATE {table} SET rseq = rseq - 1 WHERE response_id=$1 AND rseq > $2", recorded.rid,
                           plan["rseq"])
    await attacker.rechain()
    failed = _verify(lineage_fleet, recorded.rid)
    assert f"FAILED  seq {plan['seq']}: missing: deleted from the store" in failed
    assert any(line.startswith(f"FAILED  seq {plan['seq']}..") and "renumbered: each was signed as its seq +1 "
               "(a record before them was deleted)" in line for line in failed), failed
    assert f"FAILED  {_position(plan)}: missing: the Kafka record is not in the store, though codex-lineage's group " \
           "is past it (deleted from the store, or its offsets were moved past it unrecorded)" in failed


async def test_reordered_records_are_named_with_the_place_they_were_signed_for(
        lineage_fleet: LineageFleet, recorded: Recorded, attacker: Attacker) -> None:
    plan = await attacker.row("response_id=$2 AND message_type='Plan'", recorded.rid)
    task = await attacker.row("response_id=$2 AND message_type='ExpertTask'", recorded.rid)
    await attacker.swap(plan["seq"], task["seq"])
    await attacker.rechain()
    failed = _verify(lineage_fleet, recorded.rid)
    for row, now in ((plan, task["seq"]), (task, plan["seq"])):
        assert (f"FAILED  seq {now} ({_position(row)}): moved: signed as seq {row['seq']}, stored as seq {now} "
                "(records were reordered, deleted or inserted)") in failed, failed


async def test_an_inserted_record_is_named_as_never_signed_and_not_in_kafka(
        lineage_fleet: LineageFleet, recorded: Recorded, attacker: Attacker) -> None:
    answer = await attacker.row("response_id=$2 AND message_type='Answer'", recorded.rid)
    at = answer["seq"] + 1
    await attacker.shift(at, 1)
    forged = {**dict(answer), "seq": at, "offset": answer["offset"] + 1_000_000,
              "payload": answer["payload"].replace("moon", "sun")}  # a second answer, with a copied signature
    columns = list(forged)
    await attacker.execute(f"INSERT INTO {{table}} ({', '.join(chr(34) + c + chr(34) for c in columns)}) VALUES "
                           f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))})", *forged.values())
    await attacker.rechain()
    failed = _verify(lineage_fleet, recorded.rid)
    position = f"{answer['topic']}/{answer['partition']}/{forged['offset']}"
    assert f"FAILED  seq {at} ({position}): signature does not match: changed after codex-lineage signed it, or " \
           "inserted (never signed by codex-lineage)" in failed
    assert any(line.startswith(f"FAILED  seq {at + 1}..") and "renumbered: each was signed as its seq -1 (a record "
               "before them was inserted)" in line for line in failed), failed
    assert f"FAILED  {position}: not in Kafka: the topic holds no such record of this request (inserted, or its " \
           "position was changed)" in failed


def _export(fleet: LineageFleet, recorded: Recorded, out: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    args = {"tenant": recorded.tenant, "since": recorded.since.isoformat(), "until": recorded.until.isoformat(),
            "out": str(out), **overrides}
    return fleet.replay("export", *[part for k, v in args.items() for part in (f"--{k}", v)])


def _offline(fleet: LineageFleet, folder: Path, infra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The standalone verifier as an auditor runs it: no fleet settings at all, only the export and the keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOE_")}
    return subprocess.run([sys.executable, "-m", "moe_audit_verify", str(folder), "--public-key",
                           fleet.env["MOE_AUDIT_PUBLIC_KEY"], "--tsa-chain", infra["tsa-chain"], "--no-witness"],
                          env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def _rewrite(path: Path, change: object) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(item) + "\n" for item in change(lines)))  # type: ignore[operator]


def test_an_exported_period_verifies_offline_and_a_modified_export_does_not(
        lineage_fleet: LineageFleet, recorded: Recorded, infra: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "export"
    done = _export(lineage_fleet, recorded, folder)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["tenant_id"] == recorded.tenant and manifest["in_period"] > 0
    verified = _offline(lineage_fleet, folder, infra)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"VERIFIED: {manifest['in_period']} entries recorded in the period" in verified.stdout

    changed = tmp_path / "changed"
    shutil.copytree(folder, changed)
    entries = [json.loads(line) for line in (folder / "entries.jsonl").read_text().splitlines()]
    answer = next(e["content"] for e in entries if e["content"].get("message_type") == "Answer")

    def edit(lines: list[dict[str, object]]) -> list[dict[str, object]]:
        for line in lines:
            content = line["content"]
            if content == answer:
                line["content"] = {**answer, "payload": answer["payload"].replace("moon", "sun")}
        return lines

    _rewrite(changed / "entries.jsonl", edit)
    failed = _offline(lineage_fleet, changed, infra)
    name = f"seq {answer['seq']} ({answer['topic']}/{answer['partition']}/{answer['offset']})"
    assert failed.returncode == 1 and f"FAILED  {name}: signature does not match" in failed.stdout, failed.stdout

    cut = tmp_path / "cut"
    shutil.copytree(folder, cut)
    _rewrite(cut / "entries.jsonl", lambda lines: [e for e in lines if e["content"] != answer])
    _rewrite(cut / "checkpoints.jsonl", lambda lines: lines[:-1])  # and the checkpoint closing the period
    failed = _offline(lineage_fleet, cut, infra)
    assert failed.returncode == 1
    assert f"FAILED  seq {answer['seq']}: missing: deleted from the store" in failed.stdout, failed.stdout
    assert "no valid checkpoint made at or after the period's end" in failed.stdout


def test_an_export_holding_no_record_of_its_period_does_not_verify(
        lineage_fleet: LineageFleet, recorded: Recorded, infra: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "export"
    assert _export(lineage_fleet, recorded, folder).returncode == 0
    manifest = json.loads((folder / "manifest.json").read_text())
    earlier = {"since": (recorded.since - timedelta(hours=2)).isoformat(),
               "until": (recorded.since - timedelta(hours=1)).isoformat()}
    (folder / "manifest.json").write_text(json.dumps({**manifest, **earlier}))
    failed = _offline(lineage_fleet, folder, infra)
    assert failed.returncode == 1 and "the export holds no record of the period" in failed.stdout, failed.stdout


def test_unknown_tenants_empty_periods_and_non_exports_get_clear_errors(
        lineage_fleet: LineageFleet, recorded: Recorded, infra: dict[str, str], tmp_path: Path) -> None:
    unknown = _export(lineage_fleet, recorded, tmp_path / "a", tenant=f"nobody-{uuid.uuid4().hex[:6]}")
    assert unknown.returncode == 2 and "no audit record of tenant" in unknown.stderr and "at all" in unknown.stderr
    empty = _export(lineage_fleet, recorded, tmp_path / "b", since=(recorded.since - timedelta(hours=2)).isoformat(),
                    until=(recorded.since - timedelta(hours=1)).isoformat())
    assert empty.returncode == 2 and f"tenant {recorded.tenant!r} has no audit record between" in empty.stderr
    backwards = _export(lineage_fleet, recorded, tmp_path / "c", until=recorded.since.isoformat(),
                        since=recorded.until.isoformat())
    assert backwards.returncode == 2 and "--until must be after --since" in backwards.stderr
    assert not any((tmp_path / name).exists() for name in "abc")  # no bundle is left behind
    not_export = _offline(lineage_fleet, tmp_path, infra)
    assert not_export.returncode == 2 and "manifest.json: cannot be read" in not_export.stderr


async def test_checkpoints_are_published_on_the_topic_and_in_the_file(lineage_fleet: LineageFleet,
                                                                      recorded: Recorded) -> None:
    conn = await asyncpg.connect(lineage_fleet.dsn)
    try:
        body = await conn.fetchval(f'SELECT body FROM "{lineage_fleet.schema}".audit_checkpoints WHERE tenant_id=$1 '
                                   "ORDER BY time DESC LIMIT 1", recorded.tenant)
    finally:
        await conn.close()
    latest = json.loads(body)
    lines = Path(lineage_fleet.env["MOE_AUDIT_CHECKPOINT_FILE"]).read_text().splitlines()
    assert latest in [json.loads(line)["checkpoint"] for line in lines]
    topic = f"{lineage_fleet.env['MOE_TOPIC_NAMESPACE']}.audit-checkpoints.v1"
    consumer = AIOKafkaConsumer(topic, **client_kwargs(bootstrap=lineage_fleet.env["MOE_KAFKA_BOOTSTRAP"]),
                                group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        published = []
        deadline = time.monotonic() + 30
        while latest not in published and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                published += [json.loads(r.value)["checkpoint"] for r in records
                              if r.key == recorded.tenant.encode()]
    finally:
        await consumer.stop()
    assert latest in published
