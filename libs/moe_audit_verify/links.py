"""A stretch of one tenant's chain given as links (seq, content hash, signature, key id) rather than whole entries:
what an evidence bundle of one request carries for the other requests' entries between the checkpoints around
it. Their contents stay out of the bundle, yet each link's signature, its place and the chain's hashes up to
every signed checkpoint can be checked; the request's own entries (given whole) must be exactly the links at
their seqs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from moe_audit_verify.format import GENESIS, chain_hash, content_hash, entry_message
from moe_audit_verify.keys import KeyRing
from moe_audit_verify.segment import Checkpoint, Entry, Problem, runs


@dataclass(frozen=True)
class Link:
    tenant_id: str
    seq: int
    content_hash: str
    signature: str
    key_id: str | None

    @classmethod
    def of(cls, item: dict[str, Any]) -> Link:
        """From a links.jsonl line; ValueError when it is not one."""
        values = (item.get("tenant_id"), item.get("seq"), item.get("content_hash"), item.get("signature"))
        key = item.get("key_id")
        if not (isinstance(values[0], str) and isinstance(values[1], int) and isinstance(values[2], str)
                and isinstance(values[3], str) and (key is None or isinstance(key, str))):
            raise ValueError("not a link (tenant_id, seq, content_hash, signature, key_id)")
        return cls(values[0], values[1], values[2], values[3], key)

    @classmethod
    def of_entry(cls, entry: Entry) -> dict[str, Any]:
        """The link of a whole entry, as written to links.jsonl."""
        key = entry.content.get("key_id")
        return {"tenant_id": entry.content.get("tenant_id"), "seq": entry.seq,
                "content_hash": content_hash(entry.content), "signature": entry.signature, "key_id": key}


def verify_links(links: list[Link], entries: list[Entry], checkpoints: list[Checkpoint], ring: KeyRing,
                 tenant: str, first_seq: int, last_seq: int) -> list[Problem]:
    """`links`: the tenant's seqs first_seq..last_seq; `checkpoints`: the valid ones (check_checkpoints), one of size
    first_seq - 1 anchoring the start (unless first_seq is 1) and one of size last_seq closing it; `entries`: the
    whole entries among them."""
    problems = [Problem(f"{tenant} seq {seq}", f"given {n} times as a link: entries were inserted")
                for seq, n in Counter(link.seq for link in links).items() if n > 1]
    by_seq = {link.seq: link for link in links if link.tenant_id == tenant}
    problems += [Problem(f"{link.tenant_id} seq {link.seq}", f"a link of another tenant in {tenant}'s stretch")
                 for link in links if link.tenant_id != tenant]
    problems += [Problem(f"{tenant} seq {seq}", f"outside the stretch {first_seq}..{last_seq} the manifest names")
                 for seq in sorted(by_seq) if not first_seq <= seq <= last_seq]
    for low, high in runs([s for s in range(first_seq, last_seq + 1) if s not in by_seq]):
        problems.append(Problem(f"{tenant} seq {low}" if low == high else f"{tenant} seq {low}..{high}",
                                "missing from the chain's stretch: deleted"))
    for seq in sorted(by_seq):
        link = by_seq[seq]
        if not ring.verifies(entry_message(link.content_hash), link.signature, link.key_id):
            problems.append(Problem(f"{tenant} seq {seq}", "the link's signature does not match its content hash: "
                                                           "changed, or never signed by codex-lineage"))
    anchor = GENESIS if first_seq == 1 else next((c.root for c in checkpoints if c.size == first_seq - 1), None)
    if anchor is None:
        return [*problems, Problem(f"{tenant} seq {first_seq}",
                                   f"no valid checkpoint of size {first_seq - 1} anchors the start")]
    computed, running = {}, anchor
    for seq in range(first_seq, last_seq + 1):
        if seq not in by_seq:
            break
        running = chain_hash(running, by_seq[seq].content_hash)
        computed[seq] = running
    for cp in checkpoints:
        if first_seq <= cp.size <= last_seq and computed.get(cp.size) != cp.root:
            problems.append(Problem(cp.name, f"the links up to seq {cp.size} do not hash to the root it signed: "
                                             "entries were changed, deleted, inserted or reordered"))
    if not any(c.size == last_seq for c in checkpoints):
        problems.append(Problem(f"{tenant} seq {last_seq}", "no valid checkpoint closes the stretch: nothing outside "
                                                            "the database vouches for its end"))
    for entry in entries:
        problems += _entry_problems(entry, by_seq.get(entry.seq), computed.get(entry.seq), ring)
    return problems


def _entry_problems(entry: Entry, link: Link | None, chained: str | None, ring: KeyRing) -> list[Problem]:
    if link is None:
        return [Problem(entry.name, "not in the chain's stretch (no link at its seq)")]
    problems = []
    key = entry.content.get("key_id")
    if not ring.verifies(entry_message(content_hash(entry.content)), entry.signature, key):
        problems.append(Problem(entry.name, "signature does not match: changed after codex-lineage signed it, "
                                            "or never signed by it"))
    if content_hash(entry.content) != link.content_hash or key != link.key_id:
        problems.append(Problem(entry.name, "is not the entry the chain holds at its seq (its content hash differs "
                                            "from the link's)"))
    if chained is not None and entry.hash != chained:
        problems.append(Problem(entry.name, "its stored hash is not the chain's: the hash was changed"))
    return problems
