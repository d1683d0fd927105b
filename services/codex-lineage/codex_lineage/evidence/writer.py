"""An evidence bundle's files (the layout: moe_audit_verify.evidence), its signed manifest, and the bundle as a
directory or a .tar archive."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_lineage.evidence.gather import Stretch
from moe_audit_verify.evidence import MANIFEST, SIGNATURE, pack
from moe_audit_verify.format import EVIDENCE_FORMAT, manifest_message
from moe_audit_verify.links import Link
from moe_audit_verify.segment import Entry
from moe_audit_verify.versions import NAME as VERSIONS
from moe_audit_verify.versions import rows as versions_rows
from moe_core.audit.entries import checkpoint_of_row, checkpoint_record, content_of_row
from moe_core.audit.signer import Signer
from moe_core.policy.classes import ClassBook, classify_request

VERIFY = "python -m moe_audit_verify {bundle} --keyring <codex-lineage's keyring> --tsa-chain <the TSA's chain>"


@dataclass(frozen=True)
class Material:
    """The verification material copied into the bundle (the auditor should compare it with their own)."""

    keyring: bytes = b""
    tsa_chain: bytes = b""

    @classmethod
    def from_files(cls, keyring: str, tsa_chain: str) -> Material:
        return cls(Path(keyring).read_bytes() if keyring else b"", Path(tsa_chain).read_bytes() if tsa_chain else b"")


def _jsonl(items: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(i, sort_keys=True, ensure_ascii=False) + "\n" for i in items).encode()


def classification(classes: ClassBook, entries: list[Entry]) -> dict[str, Any]:
    """Each request of the bundle with its tenant's data class and what its lineage reached that the class does
    not allow (codex-lineage's statement under the data-class file in force; the verifier checks the lineage)."""
    events: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in entries:
        if e.content["kind"] == "lineage" and e.content.get("response_id"):
            key = (str(e.content["tenant_id"]), str(e.content["response_id"]))
            events.setdefault(key, []).append(json.loads(e.content["body"]))
    requests = [{"tenant_id": t, "response_id": rid, **classify_request(classes, t, evs)}
                for (t, rid), evs in sorted(events.items())]
    return {"classes": {name: c.model_dump() for name, c in classes.classes.items()},
            "allowed": {name: a.model_dump() for name, a in classes.allowed.items()}, "requests": requests,
            "flagged": sum(1 for r in requests if r["findings"])}


def bundle_files(stretches: list[Stretch], scope: dict[str, Any], signer: Signer, material: Material,
                 exported_at: str, extra: dict[str, bytes] | None = None,
                 classes: ClassBook | None = None) -> dict[str, bytes]:
    """Every file of the bundle by name, manifest.json and manifest.sig included. A request's bundle holds its own
    entries whole and every entry of the stretches as a link; a period's holds the stretch whole. With the data
    classes in force, classification.json says each request's class and what its class forbids that it reached."""
    rid = scope.get("response_id") if scope["kind"] == "request" else None
    entries: list[Entry] = []
    links: list[dict[str, Any]] = []
    checkpoints: list[dict[str, Any]] = []
    for stretch in stretches:
        for row in stretch.rows:
            entry = Entry(content_of_row(row), row["hash"], row["signature"])
            if rid is not None:
                links.append(Link.of_entry(entry))
            if rid is None or row["response_id"] == rid:
                entries.append(entry)
        checkpoints += [checkpoint_record(checkpoint_of_row(r)) for r in stretch.checkpoints]
    entries.sort(key=lambda e: (str(e.content["tenant_id"]), e.seq))
    lineage = [json.loads(e.content["body"]) for e in entries if e.content["kind"] == "lineage"]
    versions = versions_rows(entries)
    files = {"entries.jsonl": _jsonl([{"content": e.content, "hash": e.hash, "signature": e.signature}
                                      for e in entries]),
             "checkpoints.jsonl": _jsonl(checkpoints), "lineage.jsonl": _jsonl(lineage),
             VERSIONS: _jsonl(versions),
             "public-key.pem": signer.public.pem()}
    if rid is not None:
        files["links.jsonl"] = _jsonl(links)
    if material.keyring:
        files["keyring.json"] = material.keyring
    if material.tsa_chain:
        files["tsa-chain.pem"] = material.tsa_chain
    if classes is not None:
        files["classification.json"] = (json.dumps(classification(classes, entries), indent=1, ensure_ascii=False)
                                        + "\n").encode()
    files.update(extra or {})
    manifest = {"format": EVIDENCE_FORMAT, "scope": scope, "producer": "codex-lineage", "exported_at": exported_at,
                "key_id": signer.key_id,
                "chains": [{"tenant_id": s.tenant, "first_seq": s.first_seq, "last_seq": s.last_seq}
                           for s in stretches],
                "counts": {"entries": len(entries), "links": len(links), "checkpoints": len(checkpoints),
                           "lineage_events": len(lineage), "versioned_records": len(versions)},
                "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                          for name, data in sorted(files.items())},
                "verify": VERIFY.format(bundle="<this bundle>")}
    raw = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode()
    return {**files, MANIFEST: raw, SIGNATURE: (signer.sign(manifest_message(raw)) + "\n").encode()}


def write_directory(out: Path, files: dict[str, bytes]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)


def archive(files: dict[str, bytes], root: str) -> bytes:
    """The bundle as one .tar with one top folder `root`, packed canonically (the verifier repacks and compares)."""
    return pack(files, root)
