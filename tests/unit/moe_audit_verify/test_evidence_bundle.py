"""An evidence bundle written by codex-lineage's writer and read by the standalone verifier, on a chain made in
memory (two requests interleaved in one tenant's chain, signed checkpoints without timestamps: the timestamp
findings are the only ones of an untouched bundle; the real authority is in
tests/lineage/codex_lineage/test_evidence.py).
Findings that survive a manifest re-signed with codex-lineage's own key: a withheld record of the request, a
changed link of the other request, lineage events that are not the signed ones, a file the manifest does not
list, versions that are not the signed records' or not the approved ones."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from codex_lineage.evidence.gather import Stretch
from codex_lineage.evidence.writer import Material, archive, bundle_files, write_directory
from moe_audit_verify.cli import main as verify_main
from moe_audit_verify.evidence import read_evidence, verify_evidence
from moe_audit_verify.format import CHECKPOINT_FORMAT, GENESIS, checkpoint_bytes, manifest_message
from moe_audit_verify.keys import KeyRing
from moe_audit_verify.segment import Trust
from moe_audit_verify.versions import summary, unexpected
from moe_core.audit.entries import COLUMNS, Head, seal
from moe_core.audit.records import iso
from moe_core.audit.signer import Signer

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
TENANT = "acme"


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


VERSIONS = {"service": "merger", "config": _digest("merger settings"), "prompts": {"merger.judge": _digest("Merge")}}


def _record(rid: str, rseq: int, at: datetime) -> dict[str, Any]:
    return {"response_id": rid, "topic": "moe.answers.v1", "partition": 0, "offset": rseq + 100 * len(rid),
            "broker_ts": at, "message_type": "Answer", "stage": "merger", "created_at": at,
            "payload": json.dumps({"text": f"answer {rseq} of {rid}", "versions": VERSIONS}), "rseq": rseq}


def _event(rid: str, at: datetime) -> dict[str, Any]:
    body = {"eventType": "COMPLETE", "run": {"runId": f"run-{rid}"}, "job": {"name": "merger"}, "rid": rid}
    return {"response_id": rid, "run_id": f"run-{rid}", "event_type": "COMPLETE", "event_time": at,
            "job_name": "merger", "source_ts": at, "origin": "derived", "body": json.dumps(body, sort_keys=True)}


def _checkpoint(signer: Signer, head: Head, at: datetime) -> dict[str, Any]:
    body = {"format": CHECKPOINT_FORMAT, "tenant_id": TENANT, "size": head.seq, "root": head.hash, "time": iso(at),
            "key_id": signer.key_id}
    return {"body": json.dumps(body), "signature": signer.sign(checkpoint_bytes(body)), "timestamp": None}


def _stretch(signer: Signer) -> Stretch:
    """seq 1..2 before the first checkpoint; then the requests 'mine' and 'theirs' interleaved (seq 3..9)."""
    head, rows, at = Head(0, GENESIS), [], T0
    plan = [("record", "before", 1), ("record", "before", 2), ("record", "mine", 1), ("record", "theirs", 1),
            ("record", "mine", 2), ("lineage", "mine", 0), ("record", "theirs", 2), ("record", "mine", 3),
            ("lineage", "theirs", 0)]
    checkpoints = []
    for i, (kind, rid, rseq) in enumerate(plan):
        at = T0 + timedelta(seconds=i)
        values = _record(rid, rseq, at) if kind == "record" else _event(rid, at)
        rows.append(dict(zip(COLUMNS, seal(signer, head, kind, TENANT, at, values), strict=True)))
        if head.seq == 2:
            checkpoints.append(_checkpoint(signer, head, at + timedelta(milliseconds=500)))
    checkpoints.append(_checkpoint(signer, head, at + timedelta(seconds=1)))
    return Stretch(TENANT, 3, head.seq, rows[2:], checkpoints)


def _bundle(tmp_path: Path, signer: Signer) -> Path:
    files = bundle_files([_stretch(signer)], {"kind": "request", "response_id": "mine"}, signer,
                         Material(keyring=KeyRing([signer.public]).to_json().encode()), iso(T0 + timedelta(hours=1))
                         or "")
    write_directory(tmp_path / "bundle", files)
    return tmp_path / "bundle"


def _findings(folder: Path, signer: Signer) -> list[str]:
    """Every finding but the checkpoints' missing timestamps."""
    verdict = verify_evidence(read_evidence(folder), Trust(KeyRing([signer.public]), None))
    return [f"{p.record}: {p.problem}" for p in verdict.problems if "RFC 3161" not in p.problem]


def _resign(folder: Path, signer: Signer) -> None:
    """Digests recomputed and the manifest signed with codex-lineage's own key: only the content checks remain."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    raw = (json.dumps(manifest, indent=1) + "\n").encode()
    (folder / "manifest.json").write_bytes(raw)
    (folder / "manifest.sig").write_text(signer.sign(manifest_message(raw)) + "\n")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, items: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(i, sort_keys=True) + "\n" for i in items))


def test_an_untouched_bundle_holds_the_request_whole_and_the_others_as_links(tmp_path: Path) -> None:
    signer = Signer.ephemeral()
    folder = _bundle(tmp_path, signer)
    assert _findings(folder, signer) == []
    entries = _lines(folder / "entries.jsonl")
    assert [(e["content"]["seq"], e["content"]["response_id"]) for e in entries] == [
        (3, "mine"), (5, "mine"), (6, "mine"), (8, "mine")]
    assert [link["seq"] for link in _lines(folder / "links.jsonl")] == list(range(3, 10))
    assert [ev["rid"] for ev in _lines(folder / "lineage.jsonl")] == ["mine"]
    assert not any("theirs" in p.read_text() for p in folder.iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["chains"] == [{"tenant_id": TENANT, "first_seq": 3, "last_seq": 9}]
    assert set(manifest["files"]) == {p.name for p in folder.iterdir()} - {"manifest.json", "manifest.sig"}


def test_a_changed_byte_in_any_file_is_found(tmp_path: Path) -> None:
    signer = Signer.ephemeral()
    folder = _bundle(tmp_path, signer)
    for path in sorted(folder.iterdir()):
        original = path.read_bytes()
        changed = bytearray(original)
        changed[len(changed) // 3] ^= 0x01
        path.write_bytes(bytes(changed))
        try:
            findings = _findings(folder, signer)
        except ValueError as exc:  # the manifest no longer parses: not a bundle any more
            findings = [str(exc)]
        finally:
            path.write_bytes(original)
        assert findings, path.name
        if path.name not in ("manifest.json", "manifest.sig"):
            assert f"{path.name}: its SHA-256 is not the manifest's: the file was changed" in findings
    assert _findings(folder, signer) == []


def test_a_withheld_record_of_the_request_is_named(tmp_path: Path) -> None:
    signer = Signer.ephemeral()
    folder = _bundle(tmp_path, signer)
    _write(folder / "entries.jsonl", [e for e in _lines(folder / "entries.jsonl") if e["content"].get("rseq") != 2])
    _resign(folder, signer)
    assert _findings(folder, signer) == [
        "request mine: its records 2 are not in the bundle: withheld or deleted",
        "versions.jsonl: holds 3 rows that are not the 2 the signed records carry: changed, added or removed"]


def test_a_changed_link_breaks_its_signature_and_the_chain(tmp_path: Path) -> None:
    signer = Signer.ephemeral()
    folder = _bundle(tmp_path, signer)
    links = _lines(folder / "links.jsonl")
    links[1]["content_hash"] = hashlib.sha256(b"another record").hexdigest()  # seq 4, the other request's
    _write(folder / "links.jsonl", links)
    _resign(folder, signer)
    findings = _findings(folder, signer)
    assert f"{TENANT} seq 4: the link's signature does not match its content hash: changed, or never signed by " \
           "codex-lineage" in findings
    assert any(f.startswith("checkpoint size 9 at ") and "do not hash to the root" in f for f in findings), findings
    assert any(f.startswith("seq 5 (") and "stored hash is not the chain's" in f for f in findings), findings


def test_lineage_events_that_are_not_the_signed_ones_and_extra_files_are_named(tmp_path: Path) -> None:
    signer = Signer.ephemeral()
    folder = _bundle(tmp_path, signer)
    events = _lines(folder / "lineage.jsonl")
    _write(folder / "lineage.jsonl", [{**events[0], "job": {"name": "critic"}}])
    _resign(folder, signer)
    (folder / "note.txt").write_text("added later")
    findings = _findings(folder, signer)
    assert findings == ["note.txt: not listed in the manifest: added to the bundle",
                        "lineage.jsonl: holds 1 events that are not the 1 the signed lineage entries hold: changed, "
                        "added or removed"]


def test_versions_are_the_signed_records_and_only_approved_ones_pass(tmp_path: Path) -> None:
    signer = Signer.ephemeral()
    folder = _bundle(tmp_path, signer)
    rows = _lines(folder / "versions.jsonl")
    assert [(r["seq"], r["service"], r["prompts"]) for r in rows] == [
        (3, "merger", VERSIONS["prompts"]), (5, "merger", VERSIONS["prompts"]), (8, "merger", VERSIONS["prompts"])]
    verdict = verify_evidence(read_evidence(folder), Trust(KeyRing([signer.public]), None))
    approved = summary(verdict.versions)
    assert approved == {"merger": {"config": [VERSIONS["config"]], "prompts": {"merger.judge": [_digest("Merge")]}}}
    assert unexpected(verdict.versions, approved) == []
    other = {"merger": {**approved["merger"], "prompts": {"merger.judge": [_digest("Merge, more briefly")]}}}
    assert [f"{p.record}: {p.problem}" for p in unexpected(verdict.versions, other)] == [
        f"seq {seq} ({TENANT}, Answer of mine): merger sent prompt template merger.judge {_digest('Merge')}, not an "
        "approved one" for seq in (3, 5, 8)]
    rows[1]["prompts"] = {"merger.judge": _digest("Merge, more briefly")}  # claims another prompt
    _write(folder / "versions.jsonl", rows)
    _resign(folder, signer)
    assert _findings(folder, signer) == ["versions.jsonl: holds 3 rows that are not the 3 the signed records carry: "
                                         "changed, added or removed"]


def _throwaway_root() -> bytes:
    """A self-signed certificate standing in for the TSA's chain (nothing here is timestamped)."""
    key = Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test root")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(T0).not_valid_after(T0 + timedelta(days=1)).sign(key, None))
    return cert.public_bytes(Encoding.PEM)


def test_a_changed_byte_in_the_archive_is_a_clear_error_or_a_finding(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Every byte of the archive, changed, is a finding or a clear error: the archive is packed canonically and
    the verifier repacks what it unpacked (headers, padding and end blocks are covered, not only the files)."""
    signer = Signer.ephemeral()
    keyring = tmp_path / "keyring.json"
    keyring.write_text(KeyRing([signer.public]).to_json())
    files = bundle_files([_stretch(signer)], {"kind": "request", "response_id": "mine"}, signer,
                         Material(keyring=keyring.read_bytes(), tsa_chain=_throwaway_root()), "2026-11-01T13:00:00Z")
    data = archive(files, "evidence-mine")
    path = tmp_path / "bundle.tar"
    path.write_bytes(data)
    root = tmp_path / "tsa-root.pem"
    root.write_bytes(_throwaway_root())
    anchors = ["--tsa-chain", str(root), "--no-witness"]
    assert verify_main([str(path), "--keyring", str(keyring), *anchors]) == 1  # only the missing timestamps
    untouched = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("FAILED")]
    assert untouched and all("RFC 3161" in ln or "no TSA" in ln for ln in untouched), untouched
    for position in range(0, len(data), 61):  # a prime stride: headers, contents, padding and the end blocks
        changed = bytearray(data)
        changed[position] ^= 0x01
        path.write_bytes(bytes(changed))
        code = verify_main([str(path), "--keyring", str(keyring), *anchors])
        out = capsys.readouterr()
        found = [ln for ln in out.out.splitlines() if ln.startswith("FAILED")]
        assert (code == 2 and out.err.startswith("error: ")) or (code == 1 and len(found) > len(untouched)), position


def test_an_outdated_keyring_is_named_as_the_cause_before_the_findings(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Verified with a keyring that lacks the key the bundle was signed with (rotated since), every signature
    fails: the first line after the header says so, instead of dozens of lines that read like tampering."""
    signer, other = Signer.ephemeral(), Signer.ephemeral()
    keyring, stale = tmp_path / "keyring.json", tmp_path / "stale.json"
    keyring.write_text(KeyRing([signer.public]).to_json())
    stale.write_text(KeyRing([other.public]).to_json())
    files = bundle_files([_stretch(signer)], {"kind": "request", "response_id": "mine"}, signer,
                         Material(keyring=keyring.read_bytes(), tsa_chain=_throwaway_root()), "2026-11-01T13:00:00Z")
    path = tmp_path / "bundle.tar"
    path.write_bytes(archive(files, "evidence-mine"))
    root = tmp_path / "tsa-root.pem"
    root.write_bytes(_throwaway_root())
    anchors = ["--tsa-chain", str(root), "--no-witness"]
    assert verify_main([str(path), "--keyring", str(stale), *anchors]) == 1
    lines = capsys.readouterr().out.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith(("CAUSE", "FAILED")))
    assert lines[first].startswith("CAUSE") and f"signed with key {signer.public.id}" in lines[first]
    assert other.public.id in lines[first] and "keyring" in lines[first]
    assert verify_main([str(path), "--keyring", str(keyring), "--json", *anchors]) == 1  # the right keys: no such cause
    assert "signed with key" not in (json.loads(capsys.readouterr().out)["cause"] or "")


def test_the_tsa_chain_repeated_is_a_keyring_of_tsa_roots_all_named(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """--tsa-chain given twice (the old and the new authority's, across a change of TSA: docs/audit.md): the
    verifier holds both roots, names both in its result, and takes neither from the bundle."""
    signer = Signer.ephemeral()
    keyring = tmp_path / "keyring.json"
    keyring.write_text(KeyRing([signer.public]).to_json())
    files = bundle_files([_stretch(signer)], {"kind": "request", "response_id": "mine"}, signer,
                         Material(keyring=keyring.read_bytes(), tsa_chain=_throwaway_root()), "2026-11-01T13:00:00Z")
    path = tmp_path / "bundle.tar"
    path.write_bytes(archive(files, "evidence-mine"))
    old, new = tmp_path / "old-tsa.pem", tmp_path / "new-tsa.pem"
    old.write_bytes(_throwaway_root())
    new.write_bytes(_throwaway_root())
    verify_main([str(path), "--keyring", str(keyring), "--tsa-chain", str(old), "--tsa-chain", str(new),
                 "--no-witness", "--json"])
    named = json.loads(capsys.readouterr().out)["tsa_root_sha256"]
    assert named == ", ".join(x509.load_pem_x509_certificate(p.read_bytes()).fingerprint(hashes.SHA256()).hex()
                              for p in (old, new))
