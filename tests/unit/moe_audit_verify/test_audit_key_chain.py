"""The audit keys (issue 47, item 5): each new keyring is signed by the key it retires, and the offline verifier and
every reader of a keyring check that chain; a retirement in the future is refused; an entry without a key id after
one with is a finding, never verified with any key of the ring."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moe_audit_verify.anchors import trusted_keys
from moe_audit_verify.format import GENESIS, chain_hash, content_hash, entry_message
from moe_audit_verify.keys import KeyRing
from moe_audit_verify.segment import Entry, verify_chain
from moe_core.audit import keyring
from moe_core.audit.entries import COLUMNS, Head, content, entry_of_row, seal
from moe_core.audit.signer import Signer

pytestmark = pytest.mark.unit
NOW = datetime.now(UTC).replace(microsecond=0)


def _rotated_twice(folder: Path) -> Path:
    private, public, ring = folder / "key.pem", folder / "public.pem", folder / "keyring.json"
    keyring.ensure(private, public, ring)
    keyring.rotate(private, public, ring, now=NOW - timedelta(hours=2))
    keyring.rotate(private, public, ring, now=NOW - timedelta(hours=1))
    return ring


def _doc(ring: Path) -> dict:  # type: ignore[type-arg]
    doc: dict = json.loads(ring.read_text())  # type: ignore[type-arg]
    return doc


def test_each_rotation_is_signed_by_the_key_it_retires_and_the_chain_is_checked(tmp_path: Path) -> None:
    ring_file = _rotated_twice(tmp_path)
    ring = KeyRing.from_json(ring_file.read_bytes())
    first, second, third = ring.keys
    assert ring.introductions[second][0] == first and ring.introductions[third][0] == second
    assert set(ring.retired) == {first, second}
    assert KeyRing.from_json(ring.to_json().encode()).introductions == ring.introductions  # kept when written back

    added = Signer.ephemeral()  # a key written into the file by whoever can write it: no rotation introduces it
    doc = _doc(ring_file)
    doc["keys"].append({"id": added.key_id, "public_key": added.public.pem().decode(), "retired_at": None})
    with pytest.raises(ValueError, match=f"key {added.key_id} is not introduced by a rotation"):
        KeyRing.from_json(json.dumps(doc).encode())

    doc = _doc(ring_file)  # the last key swapped for another, its introduction copied from the real one
    doc["keys"][2] = {**doc["keys"][2], "id": added.key_id, "public_key": added.public.pem().decode()}
    with pytest.raises(ValueError, match=f"key {added.key_id}: the rotation that introduces it is not signed by key "
                                         f"{second}"):
        KeyRing.from_json(json.dumps(doc).encode())

    doc = _doc(ring_file)  # the retirement moved: the signed hand-over named another time
    doc["keys"][1]["retired_at"] = (NOW - timedelta(minutes=30)).isoformat()
    with pytest.raises(ValueError, match=f"not signed by key {second}"):
        KeyRing.from_json(json.dumps(doc).encode())


def test_a_retirement_in_the_future_is_refused(tmp_path: Path) -> None:
    ring_file = _rotated_twice(tmp_path)
    doc = _doc(ring_file)
    doc["keys"][1]["retired_at"] = "2100-01-01T00:00:00Z"
    with pytest.raises(ValueError, match=r"is retired at 2100-01-01T00:00:00Z, in the future"):
        KeyRing.from_json(json.dumps(doc).encode())
    # a rotation rounds its retirement up to the next second: that much ahead of the reader's clock is no promise
    private, public, ring = tmp_path / "k2.pem", tmp_path / "p2.pem", tmp_path / "r2.json"
    keyring.ensure(private, public, ring)
    keyring.rotate(private, public, ring, now=datetime.now(UTC) + timedelta(seconds=1))
    assert len(KeyRing.from_json(ring.read_bytes()).retired) == 1


def test_the_offline_verifier_takes_only_a_keyring_whose_chain_holds(tmp_path: Path) -> None:
    """The keys the verifier trusts (moe_audit_verify.anchors.trusted_keys: `--keyring`, or the export's copy); the CLI
    turns the refusal into exit status 2 with the message (cli.main)."""
    ring_file = _rotated_twice(tmp_path)
    args = argparse.Namespace(keyring=ring_file, public_key=[], export=tmp_path)
    ring, source = trusted_keys(args)
    assert len(ring.keys) == 3 and source == "given"
    doc = _doc(ring_file)
    doc["keys"][1]["retired_at"] = "2100-01-01T00:00:00Z"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="in the future"):
        trusted_keys(argparse.Namespace(keyring=tampered, public_key=[], export=tmp_path))
    (tmp_path / "keyring.json").write_text(json.dumps({**doc, "keys": [doc["keys"][0], doc["keys"][2]]}))
    with pytest.raises(ValueError, match="is not introduced by a rotation"):  # the export's copy, a rotation left out
        trusted_keys(argparse.Namespace(keyring=None, public_key=[], export=tmp_path))


def _keyless(head: Head, signer: Signer, at: datetime) -> Entry:
    """An entry whose content names no key (as entries signed before key ids were recorded), signed and chained."""
    values = {"response_id": "r", "topic": "moe.answers.v1", "partition": 0, "offset": head.seq + 1, "broker_ts": at,
              "message_type": "Answer", "stage": "merger", "created_at": at, "payload": "{}", "rseq": 1}
    body = content("record", "acme", head.seq + 1, at, values)
    digest = content_hash(body)
    head.seq, head.hash = head.seq + 1, chain_hash(head.hash, digest)
    return Entry(body, head.hash, signer.sign(entry_message(digest)))


def _keyed(head: Head, signer: Signer, at: datetime) -> Entry:
    values = {"response_id": "r", "topic": "moe.answers.v1", "partition": 0, "offset": head.seq + 1, "broker_ts": at,
              "message_type": "Answer", "stage": "merger", "created_at": at, "payload": "{}", "rseq": 1}
    return entry_of_row(dict(zip(COLUMNS, seal(signer, head, "record", "acme", at, values), strict=True)))


def test_an_entry_without_a_key_id_after_one_with_is_a_finding() -> None:
    signer, head = Signer.ephemeral(), Head(0, GENESIS)
    entries = [_keyless(head, signer, NOW), _keyless(head, signer, NOW), _keyed(head, signer, NOW),
               _keyless(head, signer, NOW), _keyed(head, signer, NOW)]
    problems = verify_chain(entries, [], signer.public, "acme", 1, require_anchor=False)
    assert [(p.record, p.problem) for p in problems] == [
        ("seq 4 (moe.answers.v1/0/4)", "names no signing key, after seq 3 (moe.answers.v1/0/3) named one: entries "
                                       "without a key id end where key ids begin")]
    assert verify_chain(entries[:3], [], signer.public, "acme", 1, require_anchor=False) == []  # old ones first: fine
