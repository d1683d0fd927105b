"""An evidence bundle (written by `replay evidence` or GET /v1/evidence): one request's or one tenant's period's
record, for an auditor to verify offline. A directory, or the same as a .tar archive (packed canonically: pack):

    manifest.json      format moe-evidence/1, the scope (a request, or a tenant and a period), the chain stretches
                       it holds (tenant, first_seq, last_seq), the signing key's id, and every other file's
                       SHA-256 and size
    manifest.sig       codex-lineage's Ed25519 signature over manifest.json's exact bytes (base64)
    entries.jsonl      the signed, chained entries: Kafka records and OpenLineage events (segment.Entry)
    links.jsonl        (a request) every entry of the stretches as a link: seq, content hash, signature, key id
    checkpoints.jsonl  the signed checkpoints with their RFC 3161 timestamps
    lineage.jsonl      the OpenLineage run events of the entries, one per line (derived: checked against them)
    versions.jsonl     per record, the configuration and prompt template digests of the stage run that made it
                       (derived: checked against the entries; moe_audit_verify.versions)
    public-key.pem, keyring.json, tsa-chain.pem   copies of the verification material
    compliance.json    (when exported over the API) the compliance report at export time: codex-lineage's
                       statement, covered by the manifest's signature, not by the chain

Any changed byte fails: a file's digest, the manifest's signature, or (were both redone) the entry and checkpoint
signatures and the RFC 3161 timestamps, which nobody but codex-lineage and the timestamp authority can make."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moe_audit_verify.bundle import Bundle, BundleError, json_objects, verify_bundle
from moe_audit_verify.format import EVIDENCE_FORMAT, manifest_message
from moe_audit_verify.links import Link, verify_links
from moe_audit_verify.segment import Checkpoint, Entry, Problem, Trust, check_checkpoints, retired_signers
from moe_audit_verify.versions import NAME as VERSIONS
from moe_audit_verify.versions import problems as versions_problems
from moe_audit_verify.versions import rows as versions_rows

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
REQUIRED = ("entries.jsonl", "checkpoints.jsonl", "lineage.jsonl")


def is_evidence(path: Path) -> bool:
    """An archive, or a directory whose manifest says moe-evidence/1 (else: the older audit export)."""
    if path.is_file():
        return True
    try:
        return bool(json.loads((path / MANIFEST).read_text()).get("format") == EVIDENCE_FORMAT)
    except (OSError, ValueError, AttributeError):
        return False


def pack(files: dict[str, bytes], root: str) -> bytes:
    """The canonical archive of a bundle: an uncompressed POSIX (ustar) tar, one folder `root`, the files sorted by
    name, every header field fixed (mode 0644, owner 0, time 0). The verifier packs what it unpacked the same way
    and compares the bytes, so a changed byte anywhere in the archive — header, padding, end — fails too."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = (
                len(data), 0o644, 0, 0, 0, "", "")
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@contextmanager
def opened(path: Path) -> Iterator[tuple[Path, list[Problem]]]:
    """The bundle's directory: `path` itself, or an archive unpacked into a temporary one (no links, no paths
    outside it: tarfile's data filter), with a finding when the archive is not the canonical packing of its files."""
    if path.is_dir():
        yield path, []
        return
    with tempfile.TemporaryDirectory(prefix="moe-evidence-") as tmp:
        try:
            with tarfile.TarFile(path) as archive:  # uncompressed, as replay evidence writes it
                archive.extractall(tmp, filter="data")
        except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
            raise BundleError(f"{path}: not a readable evidence archive (an uncompressed tar, as replay evidence "
                              f"writes it): {exc}") from None
        inner = list(Path(tmp).iterdir())
        if len(inner) != 1 or not inner[0].is_dir():
            raise BundleError(f"{path}: an evidence archive holds one folder")
        folder = inner[0]
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        problems = [] if pack(files, folder.name) == path.read_bytes() else [
            Problem(path.name, "its bytes are not the canonical packing of the files it holds: the archive was "
                               "changed or repacked (the files themselves are checked below)")]
        yield folder, problems


@dataclass
class Evidence:
    path: Path
    manifest: dict[str, Any]
    raw_manifest: bytes
    problems: list[Problem] = field(default_factory=list)

    @property
    def scope(self) -> dict[str, Any]:
        return dict(self.manifest["scope"])

    @property
    def chains(self) -> list[dict[str, Any]]:
        return list(self.manifest["chains"])


def read_evidence(path: Path) -> Evidence:
    try:
        raw = (path / MANIFEST).read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}/{MANIFEST}: cannot be read as JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EVIDENCE_FORMAT:
        raise BundleError(f"{path}/{MANIFEST}: not an evidence bundle (format {EVIDENCE_FORMAT} expected)")
    scope, chains, files = manifest.get("scope"), manifest.get("chains"), manifest.get("files")
    if not isinstance(scope, dict) or scope.get("kind") not in ("request", "period"):
        raise BundleError(f"{path}/{MANIFEST}: scope must be a request or a period")
    needed = ("response_id",) if scope["kind"] == "request" else ("tenant_id", "since", "until")
    if not all(isinstance(scope.get(name), str) for name in needed):
        raise BundleError(f"{path}/{MANIFEST}: a {scope['kind']} scope needs {', '.join(needed)}")
    if not isinstance(chains, list) or not chains or not all(
            isinstance(c, dict) and isinstance(c.get("tenant_id"), str) and isinstance(c.get("first_seq"), int)
            and isinstance(c.get("last_seq"), int) for c in chains):
        raise BundleError(f"{path}/{MANIFEST}: chains must list tenant_id, first_seq and last_seq")
    if not isinstance(files, dict):
        raise BundleError(f"{path}/{MANIFEST}: files (name: sha256, bytes) is missing")
    return Evidence(path, manifest, raw)


def file_problems(ev: Evidence, trust: Trust) -> list[Problem]:
    """The manifest's signature, and every file against the manifest's digests (no file more, none less)."""
    problems = []
    key_id = ev.manifest.get("key_id")
    try:
        signature = (ev.path / SIGNATURE).read_text().strip()
    except (OSError, UnicodeDecodeError):
        signature = ""
    if not trust.ring.verifies(manifest_message(ev.raw_manifest), signature, key_id):
        problems.append(Problem(MANIFEST, f"its signature ({SIGNATURE}) does not match with key {key_id}: the "
                                          "manifest was changed, or not signed by a given key"))
    listed: dict[str, Any] = ev.manifest["files"]
    present = {p.relative_to(ev.path).as_posix() for p in ev.path.rglob("*") if p.is_file()} - {MANIFEST, SIGNATURE}
    for name in sorted(present - set(listed)):
        problems.append(Problem(name, "not listed in the manifest: added to the bundle"))
    for name in sorted(set(listed) - present):
        problems.append(Problem(name, "listed in the manifest but missing from the bundle"))
    for name in sorted(set(listed) & present):
        data = (ev.path / name).read_bytes()
        want = listed[name] if isinstance(listed[name], dict) else {}
        if hashlib.sha256(data).hexdigest() != want.get("sha256") or len(data) != want.get("bytes"):
            problems.append(Problem(name, "its SHA-256 is not the manifest's: the file was changed"))
    return problems


def jsonl(ev: Evidence, name: str, required: bool = True) -> list[tuple[int, dict[str, Any]]]:
    path = ev.path / name
    if not path.is_file():
        if required:
            ev.problems.append(Problem(name, "missing from the bundle"))
        return []
    return json_objects(path.read_text(errors="replace"), name, ev.problems)


@dataclass
class EvidenceVerdict:
    problems: list[Problem]
    entries: int
    checkpoints: int  # valid ones
    lineage_events: int
    given_checkpoints: list[Checkpoint] = field(default_factory=list)  # as in the bundle (for --published)
    versions: list[dict[str, Any]] = field(default_factory=list)  # the signed records' versions (checked)


def verify_evidence(ev: Evidence, trust: Trust) -> EvidenceVerdict:
    problems = file_problems(ev, trust)
    entries, checkpoints = _entries(ev), _checkpoints(ev)
    request = ev.scope["kind"] == "request"
    links = []
    for number, item in jsonl(ev, "links.jsonl", required=request):
        try:
            links.append(Link.of(item))
        except ValueError as exc:
            problems.append(Problem(f"links.jsonl line {number}", str(exc)))
    valid_count = 0
    for chain in ev.chains:
        tenant = chain["tenant_id"]
        own = [e for e in entries if e.content.get("tenant_id") == tenant]
        cps = [c for c in checkpoints if c.body.get("tenant_id") == tenant]
        if request:
            valid, found = check_checkpoints(cps, trust, tenant)
            problems += found + retired_signers(own, trust.ring)
            problems += verify_links([lk for lk in links if lk.tenant_id == tenant], own, valid, trust.ring, tenant,
                                     chain["first_seq"], chain["last_seq"])
        else:
            period = {"tenant_id": tenant, "since": ev.scope["since"], "until": ev.scope["until"],
                      "first_seq": chain["first_seq"]}
            verdict = verify_bundle(Bundle(ev.path, period, own, cps), trust)
            problems += verdict.problems
            valid_count += verdict.checkpoints
            continue
        valid_count += len(valid)
    strays = {e.content.get("tenant_id") for e in entries} - {c["tenant_id"] for c in ev.chains}
    problems += [Problem(f"tenant {t}", "entries of a tenant the manifest does not name") for t in map(str, strays)]
    if request:
        problems += request_problems(entries, str(ev.scope.get("response_id")))
    events = lineage_problems(ev, entries)
    signed = versions_rows(entries)
    given = [item for _, item in jsonl(ev, VERSIONS, required=False)] if (ev.path / VERSIONS).is_file() else None
    problems += versions_problems(given, signed)
    return EvidenceVerdict(ev.problems + problems + events[1], len(entries), valid_count, events[0], checkpoints,
                           signed)


def _entries(ev: Evidence) -> list[Entry]:
    out = []
    for number, item in jsonl(ev, "entries.jsonl"):
        content = item.get("content")
        if (isinstance(content, dict) and isinstance(content.get("seq"), int) and isinstance(item.get("hash"), str)
                and isinstance(item.get("signature"), str)):
            out.append(Entry(content, item["hash"], item["signature"]))
        else:
            ev.problems.append(Problem(f"entries.jsonl line {number}", "not an entry (content with a seq, hash, "
                                                                       "signature)"))
    return out


def _checkpoints(ev: Evidence) -> list[Checkpoint]:
    out = []
    for number, item in jsonl(ev, "checkpoints.jsonl"):
        try:
            cp = Checkpoint(item["checkpoint"], item["signature"], item.get("timestamp"))
            _ = (cp.size, cp.root, cp.time, cp.body["tenant_id"])
        except (KeyError, TypeError, ValueError, AttributeError):
            ev.problems.append(Problem(f"checkpoints.jsonl line {number}", "not a checkpoint"))
        else:
            out.append(cp)
    return out


def request_problems(entries: list[Entry], response_id: str) -> list[Problem]:
    """Every entry is the request's; its records are numbered 1, 2, … (signed): a gap is a withheld record."""
    problems = [Problem(e.name, f"belongs to {e.content.get('response_id')!r}, not to the request {response_id}")
                for e in entries if e.content.get("response_id") != response_id]
    numbers = sorted(int(e.content["rseq"]) for e in entries
                     if e.content.get("kind") == "record" and isinstance(e.content.get("rseq"), int))
    if not numbers:
        problems.append(Problem(f"request {response_id}", "the bundle holds none of its records"))
    missing = sorted(set(range(1, (numbers or [0])[-1] + 1)) - set(numbers))
    if missing:
        problems.append(Problem(f"request {response_id}", f"its records {', '.join(map(str, missing))} are not in "
                                                          "the bundle: withheld or deleted"))
    return problems


def lineage_problems(ev: Evidence, entries: list[Entry]) -> tuple[int, list[Problem]]:
    """lineage.jsonl must be exactly the OpenLineage events the signed lineage entries hold, in chain order."""
    signed = []
    for e in sorted(entries, key=lambda x: (str(x.content.get("tenant_id")), x.seq)):
        if e.content.get("kind") == "lineage":
            try:
                signed.append(json.loads(str(e.content.get("body"))))
            except ValueError:
                signed.append(None)
    given = [item for _, item in jsonl(ev, "lineage.jsonl")]
    if given != signed:
        return len(given), [Problem("lineage.jsonl", f"holds {len(given)} events that are not the {len(signed)} "
                                                     "the signed lineage entries hold: changed, added or removed")]
    return len(given), []
