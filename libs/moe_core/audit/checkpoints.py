"""Checkpoints: a signed tree head of a tenant's chain (tenant, size, root, time, key id), timestamped by an
RFC 3161 authority, stored, and handed to the outlets outside the database (the Kafka topic, the append-only
file). codex-lineage makes one per tenant whenever its chain grew, and at least every max age."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from moe_audit_verify.format import CHECKPOINT_FORMAT, b64, checkpoint_bytes
from moe_audit_verify.keys import KeyRing
from moe_audit_verify.note import ED25519, NoteKey, checkpoint_text, signature_line
from moe_audit_verify.segment import Checkpoint
from moe_core.audit.cutover import cut_times, default_origin
from moe_core.audit.entries import checkpoint_of_row, checkpoint_record
from moe_core.audit.records import iso
from moe_core.audit.signer import Signer
from moe_core.audit.stretch import Verified, verify_since
from moe_core.audit.tree import Tree, TreeBroken, TreeKeeper, proof, tree_of
from moe_core.audit.tsa import TsaClient
from moe_core.audit.witness import WitnessClient, WitnessRefused, WitnessUnavailable

Outlet = Callable[[dict[str, Any]], Awaitable[None]]
UNWITNESSED = "not witnessed"  # checkpoint_all's reason for a tenant the witness could not be asked about


@dataclass
class Anchoring:
    signer: Signer
    tsa: TsaClient | None
    outlets: list[Outlet] = field(default_factory=list)
    # the newest checkpoint of each tenant this codex-lineage published outside the database (the append-only file,
    # read at start and kept current): the database must still hold it, or the chain was cut back since
    published: dict[str, dict[str, Any]] = field(default_factory=dict)
    ring: KeyRing | None = None  # the keyring (MOE_AUDIT_KEYRING): the retired keys the check trusts too
    refused: dict[str, Refusal] = field(default_factory=dict)  # the tenants whose chain is refused (checkpoint_all)
    witness: WitnessClient | None = None  # the witness that cosigns each checkpoint (MOE_AUDIT_WITNESS_URL)
    log_name: str = "moe-fleet/audit"  # the note key's name; a tenant's log origin is "<log_name>/<tenant>"
    origins: dict[str, str] = field(default_factory=dict)  # a cut-over tenant's new log (moe_core.audit.cutover)
    # each tenant's tree as a compact range, extended by the leaves since the last checkpoint (moe_core.audit.tree)
    trees: TreeKeeper = field(default_factory=TreeKeeper)
    # each tenant's stretch since its last checkpoint found whole, not verified again while its rows are unchanged
    # when a checkpoint could not be made (moe_core.audit.stretch)
    verified: dict[str, Verified] = field(default_factory=dict)

    def origin(self, tenant: str) -> str:
        return self.origins.get(tenant) or default_origin(self.log_name, tenant)

    @property
    def note_key(self) -> NoteKey:
        return NoteKey(self.log_name, ED25519, self.signer.public.raw)

    def note_key_of(self, tenant: str) -> NoteKey:
        """The note key of the tenant's log: named `log_name`, or after a cut-over the new log's name (its origin
        without the tenant)."""
        return NoteKey(self.origin(tenant).removesuffix(f"/{tenant}"), ED25519, self.signer.public.raw)

    def note(self, text: bytes, tenant: str | None = None) -> str:
        """`text` as a signed note of codex-lineage's key (the same Ed25519 key, named `log_name`, or the tenant's
        log's name)."""
        key = self.note_key_of(tenant) if tenant is not None else self.note_key
        return text.decode() + "\n" + signature_line(key.name, key, self.signer.sign_raw(text))


class ChainBroken(RuntimeError):
    """The stored chain no longer extends the last checkpoint: codex-lineage refuses to sign it."""


class CheckpointNotStored(ChainBroken):
    """A checkpoint was signed and published, but the database did not keep it."""


async def tenants(store: Any) -> list[str]:
    """Every tenant with a chain (a loose index scan over the log's primary key: one probe per tenant)."""
    rows = await store.pool.fetch(
        "WITH RECURSIVE t AS (SELECT min(tenant_id) AS id FROM audit_log UNION ALL SELECT (SELECT min(tenant_id) "
        "FROM audit_log WHERE tenant_id > t.id) FROM t WHERE t.id IS NOT NULL) SELECT id FROM t WHERE id IS NOT NULL")
    return [r["id"] for r in rows]


async def checkpoint(store: Any, tenant: str, anchoring: Anchoring,
                     max_age: timedelta | None = None) -> Checkpoint | None:
    """A new checkpoint of the tenant's chain head, unless the last one already has this size and is younger
    than `max_age` (None: any age). The head and the time are read under the tenant's chain lock, so every
    entry recorded before the checkpoint's time is inside it. Before signing, the entries since the last
    checkpoint are checked (signatures, hashes, that they extend it), and so is the head this process itself
    wrote: a chain changed or cut in the database is never signed over (ChainBroken). The checkpoint is cosigned by
    the witness (when one is configured; WitnessRefused: the log is not consistent with what it cosigned),
    stored, then handed to the outlets: a store that did not keep it is an error (CheckpointNotStored), after it
    was published."""
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"moe-audit-tenant\x1f{tenant}")
        now: datetime = await conn.fetchval("SELECT clock_timestamp()")
        head = await conn.fetchrow("SELECT seq, hash FROM audit_log WHERE tenant_id=$1 ORDER BY seq DESC LIMIT 1",
                                   tenant)
        last = await conn.fetchrow("SELECT size, root, time, body, tree_range FROM audit_checkpoints "
                                   "WHERE tenant_id=$1 ORDER BY time DESC LIMIT 1", tenant)
        if tenant in getattr(store, "cut", {}):
            raise ChainBroken(f"tenant {tenant}: {store.cut[tenant]}")
        if head is None:
            _check_vanished(tenant, anchoring)
        written = getattr(store, "written", {}).get(tenant)
        if head is None:
            _check_written_size(tenant, head, written)
            return None
        cut = written is not None and head["seq"] < written[0]
        if not cut and last is not None and last["size"] == head["seq"] and (
                max_age is None or now - last["time"] < max_age):
            return None
        try:
            await _check_published(conn, tenant, head, last, anchoring.published.get(tenant))
        except ChainBroken as exc:
            raise rolled_back(tenant, last, anchoring, exc) from None
        await _check_extension(conn, tenant, last, head["seq"], anchoring)  # the finer findings first
        _check_written_size(tenant, head, written)
        await _check_written(conn, tenant, written)
        try:
            tree = await tree_of(conn, tenant, head["seq"], last, anchoring.trees)
        except TreeBroken as exc:
            raise rolled_back(tenant, last, anchoring, ChainBroken(f"tenant {tenant}: {exc}")) from None
    try:
        return await _sign_and_publish(store, tenant, anchoring, now, head, tree)
    except ChainBroken as exc:
        raise rolled_back(tenant, last, anchoring, exc) from None


def rolled_back(tenant: str, last: Any, anchoring: Anchoring, exc: ChainBroken) -> ChainBroken:
    """A refusal that names the stretch rolled back when the record outside the database (the published checkpoint,
    the witness's size) reaches beyond the database's own newest checkpoint: the database was put back to an
    earlier point (a restore, say), and what was witnessed since is not in it. Never re-signed: reported."""
    published = anchoring.published.get(tenant)
    witnessed = max(int(published["size"]) if published else 0,
                    anchoring.witness.sizes.get(anchoring.origin(tenant), 0) if anchoring.witness else 0)
    kept = int(last["size"]) if last is not None else 0
    if witnessed <= kept or isinstance(exc, CheckpointNotStored):
        return exc
    return ChainBroken(f"ROLLED BACK: seq {kept + 1}..{witnessed} of tenant {tenant} were witnessed (size "
                       f"{witnessed}) but the database's chain is checkpointed only up to size {kept}: the database "
                       f"was put back to an earlier point (a restore?) and that stretch is not re-signed — {exc}")


async def _sign_and_publish(store: Any, tenant: str, anchoring: Anchoring, now: datetime, head: Any,
                            tree: Tree) -> Checkpoint:
    origin = anchoring.origin(tenant)
    grown = tree.grown()
    tree_root = grown.root()
    note = anchoring.note(checkpoint_text(origin, head["seq"], tree_root), tenant)
    if anchoring.witness is not None:
        try:
            note = await anchoring.witness.cosign(origin, note, grown.size,
                                                  lambda old: _proof(store, tenant, tree, old),
                                                  lambda: _head_now(store, tenant))
        except WitnessRefused as exc:
            raise ChainBroken(f"tenant {tenant}: {exc}") from None
    body = {"format": CHECKPOINT_FORMAT, "tenant_id": tenant, "size": head["seq"], "root": head["hash"],
            "time": iso(now), "key_id": anchoring.signer.key_id, "origin": origin, "tree_root": b64(tree_root)}
    data = checkpoint_bytes(body)
    signature = anchoring.signer.sign(data)
    stamp = await anchoring.tsa.stamp(data) if anchoring.tsa is not None else None
    made = Checkpoint(body, signature, stamp, note)
    # stored before it is published: a codex-lineage stopped between the two (killed, its machine lost) leaves a
    # stored checkpoint the outlets lack, which the next one supersedes, never a published one the database lacks
    # (at restart that reads as a checkpoint deleted from the database: refused for good). An INSERT whose outcome
    # is unknown (the connection lost as Postgres stopped) raises here, nothing published: the next interval finds
    # it stored, or makes it again
    kept = await store.pool.fetchval(
        "INSERT INTO audit_checkpoints (tenant_id, size, root, time, key_id, body, signature, timestamp, note, "
        "tree_range) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING tenant_id",
        tenant, head["seq"], head["hash"], now, body["key_id"], data.decode(), signature, stamp, note, grown.encoded())
    record, failed = checkpoint_record(made), list[Exception]()
    for outlet in anchoring.outlets:  # published even when not kept: a store that drops it cannot hide it
        try:
            await outlet(record)
        except Exception as exc:  # the topic unreachable: the file still takes it (and the reverse)
            failed.append(exc)
    anchoring.published[tenant] = body
    if kept is None:
        raise CheckpointNotStored(f"tenant {tenant}: the checkpoint of {iso(now)} (size {head['seq']}) was published "
                                  "but the database did not store it (a trigger or rule suppressed the insert)")
    anchoring.trees.ranges[tenant] = grown
    if failed:
        raise failed[0]
    return made


async def _proof(store: Any, tenant: str, tree: Tree, old: int) -> list[bytes]:
    try:
        return await proof(store.pool, tenant, tree, old)
    except TreeBroken as exc:
        raise ChainBroken(f"tenant {tenant}: {exc}") from None


async def _head_now(store: Any, tenant: str) -> int:
    return int(await store.pool.fetchval("SELECT coalesce(max(seq), 0) FROM audit_log WHERE tenant_id=$1", tenant))


def _check_written_size(tenant: str, head: Any, written: tuple[int, str] | None) -> None:
    """The chain still reaches the head this process committed: entries deleted before any checkpoint covered them
    (the tail cut under codex-lineage's lock) are found here, even where nothing was written since."""
    if written is not None and (head is None or head["seq"] < written[0]):
        raise ChainBroken(f"tenant {tenant}: codex-lineage wrote entries up to seq {written[0]}, the stored chain ends "
                          f"at {head['seq'] if head is not None else 'nothing'}: entries were deleted from the "
                          "database")


async def _check_written(conn: Any, tenant: str, written: tuple[int, str] | None) -> None:
    """The entry this process committed last is still the one at its seq (not deleted and another written there)."""
    if written is None:
        return
    seq, digest = written
    stored = await conn.fetchval("SELECT hash FROM audit_log WHERE tenant_id=$1 AND seq=$2", tenant, seq)
    if stored != digest:
        raise ChainBroken(f"tenant {tenant}: the entry codex-lineage wrote as seq {seq} is no longer there (another "
                          "entry holds its seq): entries were deleted and others written in their place")


def _check_vanished(tenant: str, anchoring: Anchoring) -> None:
    seen = anchoring.published.get(tenant)
    witnessed = anchoring.witness.sizes.get(anchoring.origin(tenant)) if anchoring.witness is not None else None
    if seen is not None or witnessed:
        raise ChainBroken(f"tenant {tenant}: its chain is gone from the database, but checkpoint "
                          f"{'of ' + str(seen['time']) if seen else ''} (size "
                          f"{seen['size'] if seen else witnessed}) was published and witnessed: the tenant's record "
                          "was erased")


async def _check_published(conn: Any, tenant: str, head: Any, last: Any, published: dict[str, Any] | None) -> None:
    """The chain still holds what was published: the entry at the published size with the published root, and
    the published checkpoint itself (a database whose newest entries were deleted together with their
    checkpoints would otherwise be signed anew from the cut, its sequence numbers used again)."""
    if published is None:
        return
    size, root, time = int(published["size"]), str(published["root"]), str(published["time"])
    cut = f"tenant {tenant}: the published checkpoint of {time} (size {size})"
    if head["seq"] < size:
        raise ChainBroken(f"{cut} is beyond the stored chain's head ({head['seq']}): entries were deleted")
    stored = await conn.fetchval("SELECT hash FROM audit_log WHERE tenant_id=$1 AND seq=$2", tenant, size)
    if stored != root:
        raise ChainBroken(f"{cut}: the stored entry {size} no longer has the root it published: the chain was "
                          "changed in the database")
    if last is None or last["time"] < datetime.fromisoformat(time):
        raise ChainBroken(f"{cut} is no longer in the database (its newest is "
                          f"{iso(last['time']) if last is not None else 'none'}): checkpoints were deleted")


def published_heads(path: str) -> dict[str, dict[str, Any]]:
    """The newest published checkpoint of each tenant in the append-only file (none: an empty map); for a tenant
    cut over to a new log (moe_core.audit.cutover), only one published after its newest cut-over."""
    heads: dict[str, dict[str, Any]] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return heads
    for line in lines:
        try:
            body = json.loads(line)["checkpoint"]
            tenant, time = str(body["tenant_id"]), str(body["time"])
            when = datetime.fromisoformat(time)
        except (ValueError, KeyError, TypeError):
            continue  # not a checkpoint: the verifier reports such lines
        if tenant not in heads or datetime.fromisoformat(str(heads[tenant]["time"])) < when:
            heads[tenant] = body
    for tenant, cut in cut_times(path).items():
        if tenant in heads and datetime.fromisoformat(str(heads[tenant]["time"])) <= cut:
            del heads[tenant]
    return heads


async def _check_extension(conn: Any, tenant: str, last: Any, head: int, anchoring: Anchoring) -> None:
    first = last["size"] + 1 if last is not None else 1
    if last is not None and last["size"] > 0:
        stored = await conn.fetchval("SELECT hash FROM audit_log WHERE tenant_id=$1 AND seq=$2", tenant, last["size"])
        if stored != last["root"]:
            raise ChainBroken(f"tenant {tenant}: the entry of the last checkpoint (seq {last['size']}) no longer has "
                              "the hash it signed: the chain was changed in the database")
    # every content hash and link recomputed from the stored rows, read in bounded chunks (moe_core.audit.stretch);
    # an entry signature this process made and saw committed needs no Ed25519 verification (Signer.verifier), any
    # other is verified with the key or the keyring's
    trusted = anchoring.signer.verifier(anchoring.ring)
    problems = await verify_since(conn, tenant, first, head, last["root"] if last is not None else None, trusted,
                                  kept=anchoring.verified)
    if problems:
        raise ChainBroken(f"tenant {tenant}: the chain since the last checkpoint does not verify: "
                          + "; ".join(f"{p.record}: {p.problem}" for p in problems[:5]))


@dataclass
class Refusal:
    """A tenant's chain refused (ChainBroken): why, since when, and when its chain is checked again."""

    reason: str
    since: datetime
    wait_s: float
    due: float  # time.monotonic() of the next check


async def checkpoint_all(store: Any, anchoring: Anchoring, max_age: timedelta,
                         retry_s: float = 0.0) -> tuple[list[Checkpoint], list[str]]:
    """A checkpoint of every tenant that needs one, and why a tenant's chain was refused (ChainBroken).

    A refused chain stays refused, and is reported at every call, until a check finds it whole again. That check
    reads and verifies every entry since the tenant's last checkpoint, a stretch that grows while the refusal
    stands: it is made again after `retry_s`, then after twice as long each time, up to `max_age`, so a chain
    changed in the database does not cost codex-lineage more at every interval until it falls behind the fleet."""
    made: list[Checkpoint] = []
    broken: list[str] = []
    known = set(await tenants(store)) | set(anchoring.published) | set(getattr(store, "written", {}))
    for tenant in sorted(known):
        refusal = anchoring.refused.get(tenant)
        if refusal is not None and time.monotonic() < refusal.due:
            broken.append(f"{refusal.reason} (refused since {iso(refusal.since)}; checked again within "
                          f"{refusal.wait_s:.0f} s)")
            continue
        try:
            cp = await checkpoint(store, tenant, anchoring, max_age)
        except WitnessUnavailable as exc:  # not the chain's fault: asked again at the next interval
            broken.append(f"tenant {tenant}: {UNWITNESSED}: {exc}")
            continue
        except ChainBroken as exc:
            wait = min(2 * refusal.wait_s if refusal is not None else retry_s, max_age.total_seconds())
            since = refusal.since if refusal is not None else datetime.now(UTC)
            anchoring.refused[tenant] = Refusal(str(exc), since, wait, time.monotonic() + wait)
            broken.append(str(exc))
            continue
        anchoring.refused.pop(tenant, None)
        if cp is not None:
            made.append(cp)
    return made, broken


def file_outlet(path: str) -> Outlet:
    """Append each checkpoint as one JSON line (O_APPEND, fsync'd) to a file kept outside the database."""
    target = Path(path)

    async def append(record: dict[str, Any]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    return append


async def stored(store: Any, tenant: str | None = None, limit: int = 50) -> list[Checkpoint]:
    """The latest checkpoints (of one tenant, or of all), newest first."""
    rows = await store.pool.fetch("SELECT * FROM audit_checkpoints WHERE $1::text IS NULL OR tenant_id=$1 "
                                  "ORDER BY time DESC LIMIT $2", tenant, limit)
    return [checkpoint_of_row(r) for r in rows]
