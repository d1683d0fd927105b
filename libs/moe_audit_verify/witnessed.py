"""The witnessed side of an export's checkpoints: each checkpoint's C2SP note (codex-lineage's note signature and
the witness's cosignature, with the auditor's witness key), the RFC 6962 root each one names recomputed from the
export's own entries (starting from the compact range of the tree at the export's first checkpoint, tree.json),
and the consistency proof from the export's first checkpoint to its last (the log only grew in between).

tree.json: {"size": S, "compact_range": [base64, ...], "consistency": {"old": S, "new": N, "proof": [base64, ...]}}"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from moe_audit_verify.merkle import CompactRange, ProofError, entry_leaf, verify_consistency
from moe_audit_verify.note import ED25519, Note, NoteError, NoteKey
from moe_audit_verify.segment import Checkpoint, Entry, Problem, Trust


@dataclass
class Witnessed:
    problems: list[Problem]
    cosigned: int  # checkpoints with a valid note and witness cosignature


def note_problem(cp: Checkpoint, trust: Trust, witness: NoteKey | None, tenant: str) -> str | None:
    """Why the checkpoint's note does not vouch for it (None: it does): codex-lineage's note signature with the key
    the checkpoint names, the same origin, size and Merkle root as the signed JSON checkpoint, the witness's
    cosignature (when a witness key is given)."""
    origin, tree_root = cp.body.get("origin"), cp.body.get("tree_root")
    if not isinstance(origin, str) or not isinstance(tree_root, str) or not origin.endswith(f"/{tenant}"):
        return "no Merkle root or log origin: made before checkpoints were witnessed"
    if not cp.note:
        return "no checkpoint note: not witnessed"
    key = trust.ring.keys.get(str(cp.body.get("key_id")))
    if key is None:
        return f"signed by key {cp.body.get('key_id')}, not by a given key"
    try:
        note = Note.parse(cp.note)
        named = note.checkpoint()
    except NoteError as exc:
        return f"its checkpoint note is malformed: {exc}"
    if not note.signed_by(NoteKey(origin.removesuffix(f"/{tenant}"), ED25519, key.raw)):
        return "its checkpoint note is not signed by codex-lineage's key"
    if named != (origin, cp.size, base64.b64decode(tree_root)):
        return "its checkpoint note names another origin, size or root than the signed checkpoint"
    if witness is not None and note.cosigned_at(witness) is None:
        return f"not cosigned by the witness {witness.name} (the key given)"
    return None


def check_witnessed(entries: list[Entry], checkpoints: list[Checkpoint], tree: dict[str, Any] | None,
                    trust: Trust, witness: NoteKey | None, tenant: str) -> Witnessed:
    problems: list[Problem] = []
    cosigned = []
    for cp in checkpoints:
        why = note_problem(cp, trust, witness, tenant)
        if why is None:
            cosigned.append(cp)
        else:
            problems.append(Problem(cp.name, why))
    if not cosigned:
        return Witnessed(problems, 0)
    if tree is None:
        return Witnessed([*problems, Problem("tree.json", "missing: the checkpoints' Merkle roots cannot be "
                                                          "recomputed from the export")], len(cosigned))
    problems += _roots(entries, cosigned, tree)
    problems += _consistency(cosigned, tree)
    return Witnessed(problems, len(cosigned))


def _roots(entries: list[Entry], cosigned: list[Checkpoint], tree: dict[str, Any]) -> list[Problem]:
    """Every cosigned checkpoint's root, recomputed from the compact range and the export's entries."""
    try:
        compact = CompactRange(int(tree["size"]), [base64.b64decode(h) for h in tree["compact_range"]])
    except (KeyError, TypeError, ValueError) as exc:
        return [Problem("tree.json", f"not a compact range: {exc}")]
    problems = []
    by_size = sorted(cosigned, key=lambda c: c.size)
    ordered = sorted(entries, key=lambda e: int(e.content.get("seq", 0)))
    at = 0
    for cp in by_size:
        if cp.size < compact.size:
            continue
        while compact.size < cp.size and at < len(ordered):
            if int(ordered[at].content.get("seq", 0)) == compact.size + 1:
                compact.append(entry_leaf(ordered[at].hash))
            at += 1
        if compact.size != cp.size or compact.root() != base64.b64decode(str(cp.body["tree_root"])):
            problems.append(Problem(cp.name, "its Merkle root is not the root of the export's entries up to its "
                                             "size: entries were changed, removed or inserted"))
    return problems


def _consistency(cosigned: list[Checkpoint], tree: dict[str, Any]) -> list[Problem]:
    proof = tree.get("consistency")
    if not isinstance(proof, dict):
        return [] if len({c.size for c in cosigned}) < 2 else [Problem("tree.json", "no consistency proof")]
    by_size = {c.size: base64.b64decode(str(c.body["tree_root"])) for c in cosigned}
    old, new = int(proof.get("old", -1)), int(proof.get("new", -1))
    if old == 0 and new in by_size:  # from the log's start: the roots recomputed from the entries say it all
        return []
    if old not in by_size or new not in by_size:
        return [Problem("tree.json", f"the consistency proof {old}..{new} is not between cosigned checkpoints")]
    try:
        verify_consistency(old, new, by_size[old], by_size[new], [base64.b64decode(p) for p in proof["proof"]])
    except (ProofError, KeyError, TypeError, ValueError) as exc:
        return [Problem(f"consistency {old}..{new}", str(exc))]
    return []
