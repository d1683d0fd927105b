"""What to read first when verification fails: one changed byte or a stale keyring makes hundreds of findings
(every later link, every signature), and the FAILED lines alone read like tampering. The verifier prints the
likely cause before them."""

from __future__ import annotations

from collections.abc import Iterable

from moe_audit_verify.keys import KeyRing
from moe_audit_verify.segment import Problem


def unknown_keys(key_ids: Iterable[object], ring: KeyRing) -> list[str]:
    """The key ids the bundle was signed with that the trusted keys do not include."""
    return sorted({k for k in key_ids if isinstance(k, str) and ring.get(k) is None})


def cause(problems: list[Problem], key_ids: Iterable[object], ring: KeyRing) -> str | None:
    """One line: keys the bundle names but the verifier was not given, else the first finding when there are
    more (the later ones often follow from it: a changed entry breaks every link after it); None otherwise."""
    if not problems:
        return None
    unknown = unknown_keys(key_ids, ring)
    if unknown:
        return (f"signed with key {', '.join(unknown)}, which the keys you trust ({ring.describe() or 'none'}) do "
                "not include: an outdated keyring (the key was rotated) rather than a change, if the operator "
                "confirms that key; get codex-lineage's current keyring (docs/audit.md, key rotation) and verify "
                f"again. The {len(problems)} findings below follow from it")
    if len(problems) > 1:
        first = problems[0]
        return (f"first finding {first.record}: {first.problem}; the {len(problems) - 1} after it may follow from "
                "it (a changed entry breaks every later link and checkpoint)")
    return None
