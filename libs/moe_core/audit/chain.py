"""Tamper evidence: a request's stored records form a hash chain (each record's hash covers its content and
the previous record's hash), and every tenant's records of one day form a second chain whose last hash is
the day's root. Changing a record breaks its hash; deleting one leaves a gap in both sequences."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(prev_hash: str, content: dict[str, Any]) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical(content)}".encode()).hexdigest()


def fold_root(prev_root: str, record_hash_: str) -> str:
    return hashlib.sha256(f"{prev_root}\n{record_hash_}".encode()).hexdigest()


@dataclass(frozen=True)
class Problem:
    """One finding of a verification: which record, what is wrong."""

    record: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"record": self.record, "problem": self.problem}


def verify_request(rows: list[dict[str, Any]]) -> list[Problem]:
    """rows: a request's records ordered by seq, each with seq, prev_hash, hash, name and content."""
    problems: list[Problem] = []
    prev, expected_seq = GENESIS, 1
    for row in rows:
        if row["seq"] != expected_seq:
            missing = ", ".join(str(s) for s in range(expected_seq, row["seq"]))
            problems.append(Problem(f"seq {missing} (before {row['name']})", "missing: deleted from the store"))
        elif row["prev_hash"] != prev:
            problems.append(Problem(row["name"], "chain broken: the previous record was changed or replaced"))
        if record_hash(row["prev_hash"], row["content"]) != row["hash"]:
            problems.append(Problem(row["name"], "modified: its content no longer matches its hash"))
        prev, expected_seq = row["hash"], row["seq"] + 1
    return problems


def verify_day(rows: list[dict[str, Any]], stored_root: str | None, stored_count: int | None,
               label: str) -> list[Problem]:
    """rows: a tenant's records of one day ordered by day_seq (day_seq, hash, name)."""
    problems: list[Problem] = []
    root, expected = GENESIS, 1
    for row in rows:
        if row["day_seq"] != expected:
            problems.append(Problem(f"{label} day_seq {expected}..{row['day_seq'] - 1} (before {row['name']})",
                                    "missing: deleted from the store"))
        root, expected = fold_root(root, row["hash"]), row["day_seq"] + 1
    if stored_count is not None and expected - 1 < stored_count:
        problems.append(Problem(f"{label} day_seq {expected}..{stored_count}", "missing: deleted from the store"))
    if stored_root is None:
        problems.append(Problem(label, "no stored root for this day"))
    elif root != stored_root:
        problems.append(Problem(label, "day root differs: a record of this day was changed, added or deleted"))
    return problems
