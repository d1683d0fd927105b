"""Verify a contiguous stretch of one tenant's chain: every entry's signature and place, the chain's hashes
against the signed checkpoints, each checkpoint's signature and RFC 3161 timestamp. Findings name the entry
(its seq and what it is) and what was done to it: changed, deleted, inserted, moved or renumbered.

The chain: entry n's content holds its tenant and seq; its hash is sha256(hash(n-1) + content hash); its
signature covers its content hash. A checkpoint signs (tenant, size, root = hash of entry `size`, time)."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moe_audit_verify.format import GENESIS, chain_hash, checkpoint_bytes, content_hash, entry_message, entry_name
from moe_audit_verify.format import unb64 as _unb64
from moe_audit_verify.keys import KeyRing, PublicKey
from moe_audit_verify.timestamps import TsaChain

SHIFTS = (-1, 1, -2, 2, -3, 3, -4, 4)  # how far a renumbered entry is looked for from its stored seq
SWAP_SEARCH = 64  # with at most this many unsigned entries, each is also tried at the others' seqs


@dataclass(frozen=True)
class Entry:
    content: dict[str, Any]
    hash: str
    signature: str

    @property
    def seq(self) -> int:
        return int(self.content["seq"])

    @property
    def name(self) -> str:
        return entry_name(self.content)


@dataclass(frozen=True)
class Checkpoint:
    body: dict[str, Any]  # format, tenant_id, size, root, time, key_id
    signature: str
    timestamp: str | None = None  # base64 of the DER RFC 3161 TimeStampResp
    note: str | None = None  # the C2SP checkpoint note with the witness's cosignature (moe_audit_verify.note)

    @property
    def size(self) -> int:
        return int(self.body["size"])

    @property
    def root(self) -> str:
        return str(self.body["root"])

    @property
    def time(self) -> datetime:
        return parse_time(str(self.body["time"]))

    @property
    def name(self) -> str:
        return f"checkpoint size {self.body.get('size')} at {self.body.get('time')}"


@dataclass(frozen=True)
class Problem:
    record: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"record": self.record, "problem": self.problem}


@dataclass(frozen=True)
class Trust:
    key: PublicKey | KeyRing  # one key, or the keyring (the key in use and the retired ones)
    tsa: TsaChain | None
    max_skew_s: float = 300.0  # how far a timestamp's time may be from its checkpoint's own time

    @property
    def ring(self) -> KeyRing:
        return KeyRing.of(self.key)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_checkpoints(checkpoints: list[Checkpoint], trust: Trust, tenant: str) -> tuple[list[Checkpoint],
                                                                                          list[Problem]]:
    """The checkpoints whose signature holds (ordered by time), and every finding about them."""
    problems: list[Problem] = []
    valid: list[Checkpoint] = []
    for cp in checkpoints:
        if cp.body.get("tenant_id") != tenant:
            problems.append(Problem(cp.name, f"belongs to tenant {cp.body.get('tenant_id')!r}, not {tenant!r}"))
            continue
        key_id, ring = cp.body.get("key_id"), trust.ring
        key = ring.get(key_id)
        if key is None:
            problems.append(Problem(cp.name, f"signed by key {key_id}, not by a given key ({ring.describe()})"))
            continue
        data = checkpoint_bytes(cp.body)
        if not key.verifies(data, cp.signature):
            problems.append(Problem(cp.name, "signature does not match: the checkpoint was changed after "
                                             "codex-lineage signed it, or was never signed by it"))
            continue
        retired = ring.retired_by(key_id, cp.time)
        if retired is not None:
            problems.append(Problem(cp.name, f"signed by key {key_id} after its retirement at "
                                             f"{retired.isoformat()}: a retired key vouches for nothing later"))
            continue
        valid.append(cp)
        problems += _timestamp_problems(cp, data, trust)
    valid.sort(key=lambda c: (c.time, c.size))
    for earlier, later in itertools.pairwise(valid):
        if later.size < earlier.size:
            problems.append(Problem(later.name, f"is smaller than the earlier {earlier.name}: the chain was cut "
                                                "back (records deleted) between them"))
    return valid, problems


def _timestamp_problems(cp: Checkpoint, data: bytes, trust: Trust) -> list[Problem]:
    if not cp.timestamp:
        return [Problem(cp.name, "no RFC 3161 timestamp: not anchored outside the database")]
    if trust.tsa is None:
        return [Problem(cp.name, "its timestamp cannot be checked: no TSA certificate chain given")]
    try:
        stamped = trust.tsa.verify(_unb64(cp.timestamp), data)
    except ValueError as exc:
        return [Problem(cp.name, f"timestamp: {exc}")]
    skew = (stamped - cp.time).total_seconds()
    if abs(skew) > trust.max_skew_s:
        return [Problem(cp.name, f"the timestamp authority dated it {stamped.isoformat()}, {skew:+.0f} s from the "
                                 f"time it claims: it was made or re-signed at another time")]
    return []


def verify_chain(entries: list[Entry], checkpoints: list[Checkpoint], key: PublicKey | KeyRing, tenant: str,
                 first_seq: int, *, require_anchor: bool) -> list[Problem]:
    """`entries`: the stretch from `first_seq` on; `checkpoints`: valid ones (check_checkpoints), including
    the one of size first_seq - 1 that anchors the start (unless first_seq is 1)."""
    entries = sorted(entries, key=lambda e: e.seq)
    problems = [Problem(f"seq {seq}", f"stored {n} times: records were inserted")
                for seq, n in Counter(e.seq for e in entries).items() if n > 1]
    problems += [Problem(e.name, f"belongs to tenant {e.content.get('tenant_id')!r}, not {tenant!r}")
                 for e in entries if e.content.get("tenant_id") != tenant]
    digests = [content_hash(e.content) for e in entries]  # each content hashed once: signatures and chain both use it
    ring = KeyRing.of(key)
    signed = signed_positions(entries, ring, digests)
    problems += position_problems(entries, signed, ring)
    problems += retired_signers(entries, ring) + keyless_after_keyed(entries)
    sizes = [c.size for c in checkpoints if c.size >= first_seq]
    end = max([e.seq for e in entries] + [s for s in signed if s is not None] + sizes + [first_seq - 1])
    present = {s if s is not None else e.seq for e, s in zip(entries, signed, strict=True)}
    for low, high in runs([s for s in range(first_seq, end + 1) if s not in present]):
        problems.append(Problem(f"seq {low}" if low == high else f"seq {low}..{high}",
                                "missing: deleted from the store"))
    anchor = GENESIS if first_seq == 1 else next((c.root for c in checkpoints if c.size == first_seq - 1), None)
    if anchor is None:
        problems.append(Problem(f"seq {first_seq}", f"no valid checkpoint of size {first_seq - 1} anchors the start"))
        return problems
    computed: dict[int, str] = {}
    running = anchor
    for entry, signed_seq, digest in zip(entries, signed, digests, strict=True):
        running = chain_hash(running, digest)
        computed[entry.seq] = running
        if signed_seq == entry.seq and entry.hash != running:
            problems.append(Problem(entry.name, "its stored hash is not the chain's: the hash was changed"))
    last = entries[-1].seq if entries else first_seq - 1
    for cp in checkpoints:
        if cp.size < first_seq:
            continue
        if cp.size > last:
            problems.append(Problem(cp.name, f"the stored chain ends at seq {last}: records up to seq {cp.size} "
                                             "were deleted after it was signed"))
        elif computed.get(cp.size) != cp.root:
            problems.append(Problem(cp.name, f"the records up to seq {cp.size} no longer hash to the root it "
                                             "signed: they were changed, deleted, inserted or reordered since"))
    covered = max(sizes, default=first_seq - 1)
    if require_anchor and last > covered:
        problems.append(Problem(f"seq {covered + 1}..{last}", "not covered by any checkpoint: nothing outside "
                                                              "the database vouches for these records"))
    return problems


def keyless_after_keyed(entries: list[Entry]) -> list[Problem]:
    """Entries that name no signing key after one that does: since key ids are recorded every entry names its key
    (a key-less entry would be verified with any key of the ring and escape the retirement check), so one without is
    a forgery or a tampering, never an old entry."""
    problems, first_keyed = [], None
    for entry in entries:  # in seq order
        if entry.content.get("key_id") is not None:
            first_keyed = first_keyed or entry
        elif first_keyed is not None:
            problems.append(Problem(entry.name, f"names no signing key, after {first_keyed.name} named one: entries "
                                                "without a key id end where key ids begin"))
    return problems


def retired_signers(entries: list[Entry], ring: KeyRing) -> list[Problem]:
    """Entries signed (by their content's key id) with a key retired before they were recorded."""
    problems = []
    for entry in entries:
        try:
            recorded = parse_time(str(entry.content.get("recorded_at")))
        except ValueError:
            continue
        retired = ring.retired_by(entry.content.get("key_id"), recorded)
        if retired is not None:
            problems.append(Problem(entry.name, f"signed by key {entry.content.get('key_id')} after its retirement "
                                                f"at {retired.isoformat()}"))
    return problems


def signed_positions(entries: list[Entry], key: PublicKey | KeyRing,
                     digests: list[str] | None = None) -> list[int | None]:
    """For each entry, the seq its signature was made for (None: its content is not what was signed).
    digests: the entries' content hashes when the caller has them (else computed here)."""
    key = KeyRing.of(key)
    digests = digests if digests is not None else [content_hash(e.content) for e in entries]
    out: list[int | None] = []
    failing: list[int] = []
    for i, (entry, digest) in enumerate(zip(entries, digests, strict=True)):
        ok = key.verifies(entry_message(digest), entry.signature, entry.content.get("key_id"))
        out.append(entry.seq if ok else None)
        if not ok:
            failing.append(i)
    failing = [i for i in failing if not unknown_key(entries[i], key)]  # no place verifies a key not given
    others = {entries[i].seq for i in failing} if len(failing) <= SWAP_SEARCH else set()
    for i in failing:
        entry = entries[i]
        for seq in [entry.seq + d for d in SHIFTS] + sorted(others - {entry.seq}):
            if seq >= 1 and key.verifies(entry_message(content_hash({**entry.content, "seq": seq})),
                                         entry.signature, entry.content.get("key_id")):
                out[i] = seq
                break
    return out


def unknown_key(entry: Entry, ring: KeyRing) -> str | None:
    """The key id an entry names when it is not one of the given keys (an entry naming none is tried with each)."""
    key_id = entry.content.get("key_id")
    return None if key_id is None or ring.get(key_id) is not None else str(key_id)


def position_problems(entries: list[Entry], signed: list[int | None], ring: KeyRing) -> list[Problem]:
    problems: list[Problem] = []
    run: list[tuple[Entry, int]] = []

    def flush() -> None:
        if len(run) > 1:
            first, last = run[0][0], run[-1][0]
            shift = run[0][1] - first.seq
            problems.append(Problem(f"seq {first.seq}..{last.seq} ({first.name} .. {last.name})",
                                    f"renumbered: each was signed as its seq {shift:+d} (a record before them was "
                                    f"{'deleted' if shift > 0 else 'inserted'})"))
        elif run:
            entry, seq = run[0]
            problems.append(Problem(entry.name, f"moved: signed as seq {seq}, stored as seq {entry.seq} (records "
                                                "were reordered, deleted or inserted)"))
        run.clear()

    for entry, seq in zip(entries, signed, strict=True):
        if seq is None:
            flush()
            other = unknown_key(entry, ring)
            problems.append(Problem(entry.name, "signature does not match: changed after codex-lineage signed it, "
                                                "or inserted (never signed by codex-lineage)" if other is None else
                                    f"signed by key {other}, not by a given key ({ring.describe()})"))
        elif seq == entry.seq:
            flush()
        else:
            if run and not (seq - entry.seq == run[-1][1] - run[-1][0].seq and entry.seq == run[-1][0].seq + 1):
                flush()
            run.append((entry, seq))
    flush()
    return problems


def runs(numbers: list[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7] -> [(1, 3), (7, 7)]"""
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out
