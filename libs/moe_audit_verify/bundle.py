"""An export directory (written by `replay export`) and its verification as a whole:

    manifest.json       format, tenant, period [since, until), first_seq, the key id
    entries.jsonl       one entry per line: {"content": {...}, "hash": ..., "signature": ...}
    checkpoints.jsonl   one checkpoint per line: {"checkpoint": {...}, "signature": ..., "timestamp": ...}
    public-key.pem      codex-lineage's public key (a copy: check its id against the published one)
    keyring.json        every key codex-lineage signed with, each retired one with its retirement time (a copy)
    tsa-chain.pem       the timestamp authority's certificate chain (a copy, likewise)
    tree.json           the RFC 6962 tree at the first checkpoint (compact range) and the consistency proof from the
                        first checkpoint to the last (moe_audit_verify.witnessed)

The entries run from just after a checkpoint made at or before `since` (or from the tenant's first entry)
to a checkpoint made at or after `until`, so the signed, timestamped checkpoints prove that no record of the
period is missing at either end."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moe_audit_verify.format import EXPORT_FORMAT
from moe_audit_verify.segment import Checkpoint, Entry, Problem, Trust, check_checkpoints, parse_time, verify_chain


class BundleError(ValueError):
    """The directory is not an export at all (missing or unreadable manifest)."""


@dataclass
class Bundle:
    path: Path
    manifest: dict[str, Any]
    entries: list[Entry]
    checkpoints: list[Checkpoint]
    problems: list[Problem] = field(default_factory=list)  # lines that are not entries or checkpoints
    tree: dict[str, Any] | None = None  # tree.json: the compact range at the first checkpoint, a consistency proof

    @property
    def tenant(self) -> str:
        return str(self.manifest["tenant_id"])


def read_bundle(path: Path) -> Bundle:
    if not path.is_dir():
        raise BundleError(f"{path}: no such export directory")
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}/manifest.json: cannot be read as JSON ({exc})") from None
    needed = {"format": str, "tenant_id": str, "since": str, "until": str, "first_seq": int}
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise BundleError(f"{path}/manifest.json: not an audit export (format {EXPORT_FORMAT} expected)")
    for name, kind in needed.items():
        if not isinstance(manifest.get(name), kind):
            raise BundleError(f"{path}/manifest.json: {name} is missing or not a {kind.__name__}")
    bundle = Bundle(path, manifest, [], [])
    try:
        bundle.tree = json.loads((path / "tree.json").read_text()) if (path / "tree.json").is_file() else None
    except (OSError, ValueError):
        bundle.problems.append(Problem("tree.json", "cannot be read as JSON"))
    for number, item in _lines(bundle, "entries.jsonl"):
        content = item.get("content")
        if (isinstance(content, dict) and isinstance(content.get("seq"), int) and isinstance(item.get("hash"), str)
                and isinstance(item.get("signature"), str)):
            bundle.entries.append(Entry(content, item["hash"], item["signature"]))
        else:
            bundle.problems.append(Problem(f"entries.jsonl line {number}", "not an entry (content with a seq, "
                                                                           "hash, signature)"))
    for number, item in _lines(bundle, "checkpoints.jsonl"):
        body = item.get("checkpoint")
        try:
            cp = Checkpoint(body, item["signature"], item.get("timestamp"), item.get("note"))  # type: ignore[arg-type]
            _ = (cp.size, cp.root, cp.time, str(cp.signature) + str(cp.timestamp or ""))
        except (KeyError, TypeError, ValueError, AttributeError):
            bundle.problems.append(Problem(f"checkpoints.jsonl line {number}", "not a checkpoint"))
        else:
            bundle.checkpoints.append(cp)
    return bundle


def _lines(bundle: Bundle, name: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = (bundle.path / name).read_text()
    except OSError as exc:
        raise BundleError(f"{bundle.path}/{name}: cannot be read ({exc})") from None
    return json_objects(text, name, bundle.problems, skip_blank=True)


def json_objects(text: str, name: str, problems: list[Problem], *,
                 skip_blank: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of each line of a JSON-lines file; a line that is no JSON object is a problem."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if skip_blank and not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if isinstance(item, dict):
            out.append((number, item))
        else:
            problems.append(Problem(f"{name} line {number}", "not a JSON object"))
    return out


@dataclass
class Verdict:
    problems: list[Problem]
    in_period: int  # entries recorded in [since, until)
    checkpoints: int  # checkpoints whose signature holds


def verify_bundle(bundle: Bundle, trust: Trust) -> Verdict:
    m, tenant = bundle.manifest, bundle.tenant
    problems = list(bundle.problems)
    since, until = parse_time(m["since"]), parse_time(m["until"])
    valid, found = check_checkpoints(bundle.checkpoints, trust, tenant)
    problems += found
    first_seq = m["first_seq"]
    problems += verify_chain(bundle.entries, valid, trust.key, tenant, first_seq, require_anchor=True)
    anchor = next((c for c in valid if c.size == first_seq - 1), None)
    if anchor is not None and first_seq > 1 and anchor.time > since:
        problems.append(Problem(anchor.name, f"the export starts at a checkpoint made after the period began "
                                             f"({m['since']}): records of the period before it are not in it"))
    if not any(c.time >= until for c in valid):
        problems.append(Problem(f"tenant {tenant}", f"no valid checkpoint made at or after the period's end "
                                                    f"({m['until']}): records at its end may be missing"))
    in_period = [e for e in bundle.entries if _recorded_in(e, since, until)]
    if not in_period:
        problems.append(Problem(f"tenant {tenant}", "the export holds no record of the period"))
    return Verdict(problems, len(in_period), len(valid))


def _recorded_in(entry: Entry, since: Any, until: Any) -> bool:
    try:
        return bool(since <= parse_time(str(entry.content.get("recorded_at"))) < until)
    except ValueError:
        return False
