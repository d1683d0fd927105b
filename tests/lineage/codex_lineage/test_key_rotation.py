"""Rotating codex-lineage's signing key, and the offline verifier's own look at the published checkpoints.

An export spanning a rotation (entries and a checkpoint signed by the old key, then by the new one; every
checkpoint timestamped by the real local timestamp authority) verifies with the exported keyring, or with
both public keys; not with the new key alone. A checkpoint the old key signed after its retirement fails,
named. With --published the export's checkpoints are compared with the append-only checkpoint file: one
missing there, one that differs, and one published but left out of the export are each named."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from moe_audit_verify import cli
from moe_audit_verify.format import CHECKPOINT_FORMAT, EXPORT_FORMAT, GENESIS, checkpoint_bytes
from moe_audit_verify.keys import KeyRing
from moe_audit_verify.segment import Checkpoint, Entry
from moe_audit_verify.timestamps import TsaChain
from moe_core.audit import keyring
from moe_core.audit.entries import COLUMNS, Head, checkpoint_record, entry_of_row, seal
from moe_core.audit.records import iso
from moe_core.audit.signer import Signer
from moe_core.audit.tsa import TsaClient
from moe_core.audit.verify import load_trust
from tests.support.fleet import REPO
from tests.support.namespaces import new_namespace
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.infra
TENANT = "acme"


@dataclass
class Rotated:
    export: Path
    keys: Path  # the key directory: audit-signing-key.pem, audit-public-key.pem, audit-keyring.json
    old: Signer  # kept in memory only: rotation destroyed its file
    new: Signer
    t0: datetime
    entries: list[Entry]
    checkpoints: list[Checkpoint]
    stamp: Any  # async (Checkpoint body) -> timestamp


def _entries(signer: Signer, head: Head, start: datetime, n: int) -> list[Entry]:
    out = []
    for i in range(n):
        values = {"response_id": f"r{head.seq + 1}", "topic": "moe.answers.v1", "partition": 0,
                  "offset": head.seq + 1, "broker_ts": start, "message_type": "Answer", "stage": "merger",
                  "created_at": start, "payload": f'{{"content":"answer {head.seq + 1}"}}', "rseq": 1}
        row = dict(zip(COLUMNS, seal(signer, head, "record", TENANT, start + timedelta(seconds=i), values),
                       strict=True))
        out.append(entry_of_row(row))
    return out


async def _checkpoint(signer: Signer, entries: list[Entry], at: datetime, client: TsaClient) -> Checkpoint:
    body = {"format": CHECKPOINT_FORMAT, "tenant_id": TENANT, "size": len(entries), "root": entries[-1].hash,
            "time": iso(at), "key_id": signer.key_id}
    data = checkpoint_bytes(body)
    return Checkpoint(body, signer.sign(data), await client.stamp(data))


def _write_export(out: Path, entries: list[Entry], checkpoints: list[Checkpoint], since: datetime,
                  until: datetime, keys: Path, chain: Path) -> Path:
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"format": EXPORT_FORMAT, "tenant_id": TENANT, "since": iso(since),
                                                   "until": iso(until), "first_seq": 1}))
    (out / "entries.jsonl").write_text("".join(json.dumps({"content": e.content, "hash": e.hash,
                                                           "signature": e.signature}) + "\n" for e in entries))
    (out / "checkpoints.jsonl").write_text("".join(json.dumps(checkpoint_record(c)) + "\n" for c in checkpoints))
    (out / "public-key.pem").write_bytes((keys / "audit-public-key.pem").read_bytes())
    (out / "keyring.json").write_bytes((keys / "audit-keyring.json").read_bytes())
    (out / "tsa-chain.pem").write_bytes(chain.read_bytes())
    return out


@pytest.fixture
async def rotated(tmp_path: Path, tsa: dict[str, str]) -> Rotated:
    keys = tmp_path / "keys"
    private, public, ring = keys / "audit-signing-key.pem", keys / "audit-public-key.pem", keys / "audit-keyring.json"
    old = keyring.ensure(private, public, ring)
    client = TsaClient(tsa["url"], TsaChain(Path(tsa["chain"]).read_bytes()))
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
    head = Head(0, GENESIS)
    entries = _entries(old, head, t0 + timedelta(seconds=1), 3)
    first = await _checkpoint(old, entries, t0 + timedelta(seconds=10), client)
    retired_id, new_id = keyring.rotate(private, public, ring, now=t0 + timedelta(seconds=20))
    new = Signer.from_file(private)
    assert (retired_id, new_id) == (old.key_id, new.key_id) and old.key_id != new.key_id
    entries += _entries(new, head, t0 + timedelta(seconds=21), 3)
    second = await _checkpoint(new, entries, t0 + timedelta(seconds=30), client)
    export = _write_export(tmp_path / "export", entries, [first, second], t0, t0 + timedelta(seconds=25), keys,
                           Path(tsa["chain"]))

    async def stamp(signer: Signer, upto: list[Entry], at: datetime) -> Checkpoint:
        return await _checkpoint(signer, upto, at, client)

    return Rotated(export, keys, old, new, t0, entries, [first, second], stamp)


def _verify(capsys: pytest.CaptureFixture[str], export: Path, *args: str | Path) -> tuple[int, list[str]]:
    """The verifier with the auditor's TSA root (the test authority's, as the export's copy is) and no witness (these
    checkpoints are made without one)."""
    status = cli.main([str(a) for a in (export, *args, "--tsa-chain", export / "tsa-chain.pem", "--no-witness")])
    return status, capsys.readouterr().out.splitlines()


def test_an_export_across_a_rotation_verifies_with_the_keyring_or_both_keys(
        rotated: Rotated, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(rotated.export), "--tsa-chain", str(rotated.export / "tsa-chain.pem"),
                     "--no-witness"]) == cli.UNANCHORED  # the export's own keyring.json is not trusted by default
    assert "UNANCHORED: not verified: give --public-key or --keyring" in capsys.readouterr().err
    status, out = _verify(capsys, rotated.export, "--keyring", rotated.keys / "audit-keyring.json")
    assert status == 0, out
    assert out[-1].startswith("VERIFIED: 6 entries recorded in the period, 2 signed and timestamped checkpoints")
    assert f"{rotated.old.key_id} (retired {(rotated.t0 + timedelta(seconds=20)).isoformat()})" in out[1]
    ring = rotated.keys / "audit-keyring.json"
    assert _verify(capsys, rotated.export, "--keyring", ring)[0] == 0
    old_pem = rotated.export.parent / "old.pem"
    old_pem.write_bytes(rotated.old.public.pem())
    new_pem = rotated.keys / "audit-public-key.pem"
    both = _verify(capsys, rotated.export, "--public-key", old_pem, "--public-key", new_pem)
    assert both[0] == 0, both[1]
    status, out = _verify(capsys, rotated.export, "--public-key", new_pem)
    assert status == 1
    failed = [line for line in out if line.startswith("FAILED")]
    assert f"FAILED  checkpoint size 3 at {iso(rotated.t0 + timedelta(seconds=10))}: signed by key " \
           f"{rotated.old.key_id}, not by a given key ({rotated.new.key_id})" in failed
    assert f"FAILED  seq 1 (moe.answers.v1/0/1): signed by key {rotated.old.key_id}, not by a given key " \
           f"({rotated.new.key_id})" in failed


async def test_a_checkpoint_signed_by_a_retired_key_after_its_retirement_fails(
        rotated: Rotated, capsys: pytest.CaptureFixture[str]) -> None:
    late_at = rotated.t0 + timedelta(seconds=40)
    late = await rotated.stamp(rotated.old, rotated.entries, late_at)  # the old key, had it not been destroyed
    with open(rotated.export / "checkpoints.jsonl", "a") as out:
        out.write(json.dumps(checkpoint_record(late)) + "\n")
    status, lines = _verify(capsys, rotated.export, "--keyring", rotated.keys / "audit-keyring.json")
    assert status == 1
    assert [line for line in lines if line.startswith("FAILED")] == [
        f"FAILED  checkpoint size 6 at {iso(late_at)}: signed by key {rotated.old.key_id} after its retirement at "
        f"{(rotated.t0 + timedelta(seconds=20)).isoformat()}: a retired key vouches for nothing later"]


def test_the_verifier_compares_the_export_with_the_published_checkpoints(
        rotated: Rotated, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    first, second = rotated.checkpoints
    published = tmp_path / "audit-checkpoints.jsonl"
    ring = rotated.keys / "audit-keyring.json"

    def publish(*checkpoints: Checkpoint | dict[str, Any]) -> None:
        lines = [c if isinstance(c, dict) else checkpoint_record(c) for c in checkpoints]
        other = {**checkpoint_record(first), "checkpoint": {**first.body, "tenant_id": "someone-else"}}
        published.write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in [other, *lines]))

    publish(first, second)
    status, out = _verify(capsys, rotated.export, "--published", published, "--keyring", ring)
    assert status == 0 and out[-1].endswith(f"all published ({published})"), out

    publish(first)  # the closing checkpoint was never published: re-made in the database
    status, out = _verify(capsys, rotated.export, "--published", published, "--keyring", ring)
    assert status == 1 and [line for line in out if line.startswith("FAILED")] == [
        f"FAILED  {second.name}: not among the published checkpoints ({published.name}): made or re-made in the "
        "database, never published"]

    changed = {**checkpoint_record(first), "checkpoint": {**first.body, "root": "f" * 64}}
    publish(changed, second)
    status, out = _verify(capsys, rotated.export, "--published", published, "--keyring", ring)
    assert status == 1 and [line for line in out if line.startswith("FAILED")] == [
        f"FAILED  {first.name}: differs from the published checkpoint of that time ({published.name}): root"]

    at = iso(rotated.t0 + timedelta(seconds=15))
    between = {**checkpoint_record(first), "checkpoint": {**first.body, "time": at}}
    publish(first, between, second)  # published, then deleted from the database with what it covered
    status, out = _verify(capsys, rotated.export, "--published", published, "--keyring", ring)
    assert status == 1 and [line for line in out if line.startswith("FAILED")] == [
        f"FAILED  checkpoint size 3 at {at}: published ({published.name}) but "
        "not in the export: removed from the database (with the records it covered?)"]

    assert cli.main([str(rotated.export), "--published", str(tmp_path / "nowhere.jsonl"), "--keyring",
                     str(rotated.keys / "audit-keyring.json"), "--tsa-chain", str(rotated.export / "tsa-chain.pem"),
                     "--no-witness"]) == 2
    assert "published checkpoints: cannot read" in capsys.readouterr().err


def test_replay_verify_and_the_audit_api_trust_every_key_of_the_keyring(rotated: Rotated, tsa: dict[str, str]) -> None:
    trust = load_trust(str(rotated.keys / "audit-public-key.pem"), tsa["chain"], 300.0,
                       str(rotated.keys / "audit-keyring.json"))
    assert not isinstance(trust, str)
    assert set(trust.ring.keys) == {rotated.old.key_id, rotated.new.key_id}
    assert trust.ring.retired_by(rotated.old.key_id, datetime.now(UTC)) is not None
    assert trust.ring.retired_by(rotated.new.key_id, datetime.now(UTC)) is None
    assert isinstance(load_trust("", "", 300.0, str(rotated.keys / "nowhere.json")), str)


async def test_the_rotation_command_retires_the_key_on_the_record_and_codex_lineage_refuses_a_retired_one(
        tmp_path: Path, infra: dict[str, str]) -> None:
    private, public, ring = tmp_path / "k.pem", tmp_path / "p.pem", tmp_path / "ring.json"
    old = keyring.ensure(private, public, ring)
    namespace = new_namespace("rot")
    env = {**os.environ, "MOE_AUDIT_SIGNING_KEY": str(private), "MOE_AUDIT_PUBLIC_KEY": str(public),
           "MOE_AUDIT_KEYRING": str(ring), "MOE_TOPIC_NAMESPACE": namespace, "MOE_KAFKA_BOOTSTRAP": infra["kafka"]}

    def rotate(**more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "codex_lineage.rotate_key"], env={**env, **more}, cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=False)

    unrecorded = await asyncio.to_thread(rotate, MOE_KAFKA_BOOTSTRAP="127.0.0.1:1")  # no record, no rotation
    assert unrecorded.returncode == 1 and "not rotated" in unrecorded.stderr, unrecorded.stderr
    assert Signer.from_file(private).key_id == old.key_id
    done = await asyncio.to_thread(rotate)
    assert done.returncode == 0, done.stderr
    new = Signer.from_file(private)
    assert f"{old.key_id} retired, {new.key_id} in use" in done.stdout
    topic = f"{namespace}.audit.v1"
    async with TopicReader(infra["kafka"], topic) as reader:
        [event] = await reader.wait(topic, lambda e: e["action"] == "audit_key.rotated", count=1)
    assert event["details"] == {"event_id": event["details"]["event_id"], "retired": old.key_id, "in_use": new.key_id}
    assert event["actor"] == f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
    assert event["subject"] == f"audit-key:{new.key_id}"
    assert (private.stat().st_mode & 0o777) == 0o600 and public.read_bytes() == new.public.pem()
    loaded = KeyRing.from_json(ring.read_bytes())
    assert set(loaded.keys) == {old.key_id, new.key_id} and set(loaded.retired) == {old.key_id}
    assert keyring.retired(ring, old.public) is not None and keyring.retired(ring, new.public) is None
    missing = subprocess.run([sys.executable, "-m", "codex_lineage.rotate_key"],
                             env={**env, "MOE_AUDIT_KEYRING": ""}, cwd=REPO, capture_output=True, text=True,
                             timeout=60, check=False)
    assert missing.returncode == 2 and "set MOE_AUDIT_KEYRING" in missing.stderr


async def test_the_adoption_command_signs_a_legacy_keyring_once_on_the_record(tmp_path: Path,
                                                                            infra: dict[str, str]) -> None:
    """`make adopt-audit-keyring`: a keyring rotated before `introduced_by` existed is refused by every reader; the
    command has the key in use vouch for the older keys, with an AuditEvent `audit_keyring.adopted`; the keyring is
    then read (tests/unit/moe_core/audit/test_keyring_adoption.py: what it refuses afterwards)."""
    old, private, ring = tmp_path / "old.pem", tmp_path / "k.pem", tmp_path / "ring.json"
    keys = [keyring.ensure(old, tmp_path / "old.pub"), keyring.ensure(private, tmp_path / "p.pem")]
    retired = {keys[0].key_id: datetime.now(UTC) - timedelta(days=9)}
    ring.write_text(KeyRing([k.public for k in keys], retired).to_json())  # as written before `introduced_by`
    namespace = new_namespace("adopt")
    env = {**os.environ, "MOE_AUDIT_SIGNING_KEY": str(private), "MOE_AUDIT_KEYRING": str(ring),
           "MOE_TOPIC_NAMESPACE": namespace, "MOE_KAFKA_BOOTSTRAP": infra["kafka"]}

    def adopt(**more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "codex_lineage.adopt_keyring"], env={**env, **more}, cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=False)

    unrecorded = await asyncio.to_thread(adopt, MOE_KAFKA_BOOTSTRAP="127.0.0.1:1")  # no record, no adoption
    assert unrecorded.returncode == 1 and "not changed" in unrecorded.stderr, unrecorded.stderr
    with pytest.raises(ValueError, match="not introduced"):
        KeyRing.from_json(ring.read_bytes())
    done = await asyncio.to_thread(adopt)
    assert done.returncode == 0 and f"{keys[1].key_id} (in use) vouches for {keys[0].key_id}" in done.stdout, \
        done.stdout + done.stderr
    assert KeyRing.from_json(ring.read_bytes()).adoption is not None
    topic = f"{namespace}.audit.v1"
    async with TopicReader(infra["kafka"], topic) as reader:
        [event] = await reader.wait(topic, lambda e: e["action"] == "audit_keyring.adopted", count=1)
    assert event["details"]["adopted_by"] == keys[1].key_id
    assert event["details"]["keys"] == [keys[0].key_id, keys[1].key_id]
    assert event["actor"] == f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
    again = await asyncio.to_thread(adopt)
    assert again.returncode == 0 and "nothing to adopt" in again.stdout, again.stdout + again.stderr
