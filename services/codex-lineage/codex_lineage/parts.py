"""What codex-lineage is made of: the files and keys it refuses to start without (read when the app is built),
and its stores and loops (opened in the lifespan, closed at shutdown). codex_lineage.app wires them to the broker
and the routes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg

from codex_lineage import facets
from codex_lineage.anchoring import anchoring_for, checkpoint_loop, final_checkpoint
from codex_lineage.catalog.documents import document_sets
from codex_lineage.catalog.documents import entry as document_set_entry
from codex_lineage.catalog.entries import Names, postgres_namespace
from codex_lineage.catalog.entries import entries as catalog_entries
from codex_lineage.catalog.entries import load as load_catalog
from codex_lineage.compliance.engine import Compliance
from codex_lineage.compliance.rules import resolve
from codex_lineage.compliance.sources import Sources
from codex_lineage.drift.feedback_signals import Signals
from codex_lineage.drift.runs import DriftSettings, Runs
from codex_lineage.drift.signals import SignalSettings
from codex_lineage.health_loop import health_loop
from codex_lineage.holding import HeldBatches, Hold
from codex_lineage.lineage import Datasets, Lineage
from codex_lineage.memory_trace import trace_loop
from codex_lineage.migrate import migrate
from codex_lineage.recorder import Recorder, extra_client
from codex_lineage.settings import LineageSettings
from moe_core.audit import keyring
from moe_core.audit.checkpoints import tenants
from moe_core.audit.signer import Signer, SigningKeyError
from moe_core.audit.store import AuditStore
from moe_core.policy.classes import ClassFile
from moe_core.runtime.bus import Bus
from moe_core.runtime.producer_signing import ProducerRefused

log = logging.getLogger(__name__)


class _Single:
    """One record of a batch, shaped like the KafkaMessage Bus.dead_letter reads."""

    def __init__(self, raw: Any) -> None:
        self.raw_message = raw
        self.body = raw.value or b""
        self.headers = {k: v.decode("utf-8", "replace") for k, v in (raw.headers or [])}


def datasets(settings: LineageSettings) -> Datasets:
    def hostport(url: str, default_port: int) -> str:
        parsed = urlparse(url if "://" in url else f"x://{url}")
        return f"{parsed.hostname}:{parsed.port or default_port}"

    return Datasets(kafka=f"kafka://{settings.kafka_bootstrap.split(',')[0]}",
                    graph=f"neo4j://{hostport(settings.neo4j_url, 7687)}",
                    chroma=f"chroma://{hostport(settings.chroma_url, 8000)}")


def lineage_for(settings: LineageSettings, bus: Bus) -> Lineage:
    facets.SCHEMA_BASE[0] = settings.lineage_facet_base
    return Lineage(bus.topics, settings.lineage_namespace, datasets(settings))


def signer_for(settings: LineageSettings) -> Signer:
    """codex-lineage's signing key: it refuses to start without it, or with a key its keyring says was retired."""
    signer = Signer.from_file(settings.audit_signing_key, settings.audit_remembered_signatures)
    if settings.audit_keyring and (retired := keyring.retired(Path(settings.audit_keyring), signer.public)):
        raise SigningKeyError(f"the audit signing key {signer.key_id} was retired at {retired.isoformat()} "
                              f"({settings.audit_keyring}): it signs nothing any more")
    return signer


class Parts:
    def __init__(self, settings: LineageSettings, bus: Bus) -> None:
        self.settings, self.bus = settings, bus
        self.ready = asyncio.Event()  # the store opens after the broker starts (create_service_app's order)
        self.compliance = Compliance(resolve(settings.compliance_rules_dir))  # a broken rule file: refused here
        self.classes = ClassFile(resolve(settings.data_classes_file))  # a broken data-class file: refused here
        self.lineage = lineage_for(settings, bus)
        self.client = extra_client(settings.lineage_transport)
        self.signer = signer_for(settings)
        if bus.producers is None:
            log.warning("MOE_PRODUCER_KEYS is not set: who produced a message is NOT checked; every record names the "
                        "producer its sender claims (docs/audit.md#who-produced-it-proven)")
        self.anchoring = anchoring_for(settings, bus, self.signer)
        self.catalog = load_catalog(resolve(settings.catalog_file))  # missing or not one: refused at start
        self.names = Names(bus.topics, datasets(settings),
                           postgres_namespace(settings.audit_writer_dsn or settings.postgres_dsn),
                           settings.audit_schema, settings.lineage_namespace)
        self._store: AuditStore | None = None
        self._keys: asyncpg.Pool | None = None
        self._runs: Runs | None = None
        self._signals: Signals | None = None
        self.recorder: Recorder | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.batches: HeldBatches | None = None

    @property
    def store(self) -> AuditStore:
        assert self._store is not None, "the audit store opens in the lifespan"
        return self._store

    @property
    def keys(self) -> asyncpg.Pool:
        """A pool on the fleet's role, which reads the key check's views (the audit store's own role cannot)."""
        assert self._keys is not None, "the key pool opens in the lifespan"
        return self._keys

    @property
    def runs(self) -> Runs:
        assert self._runs is not None
        return self._runs

    @property
    def signals(self) -> Signals:
        assert self._signals is not None
        return self._signals

    async def open(self) -> None:
        s = self.settings
        if s.audit_migrate_on_start:  # a single-role set-up; otherwise python -m codex_lineage.migrate
            await migrate(s)
        store = await AuditStore.connect(s.audit_writer_dsn or s.postgres_dsn, s.audit_schema, migrate=False,
                                         signer=self.signer)
        if not await store.exists():
            await store.close()
            raise RuntimeError(f"the audit store {s.audit_schema!r} does not exist: run python -m "
                               "codex_lineage.migrate as its migrator role first (fleetctl does)")
        self._store = store
        self._keys = await asyncpg.create_pool(s.postgres_dsn, min_size=1, max_size=2)
        self.recorder = Recorder(self.bus.topics, store, self.lineage, self.client, self.bus.producers,
                                 self._refused)
        self.batches = HeldBatches(self.recorder.record_batch, self.recorder.record, store.pool, self._unrecordable,
                                   Hold(s.lineage_hold_max_s))
        self._runs = Runs(store, DriftSettings(s.drift_threshold, s.drift_min_declared))
        self._signals = Signals(store, SignalSettings(
            s.drift_baseline_h, s.drift_min_ratings, s.drift_false_hit_rate, s.drift_hit_rate_drop,
            s.drift_min_answers, s.drift_score_drop, s.drift_score_stale_h))
        self.tasks = [asyncio.create_task(checkpoint_loop(s, store, self.anchoring)),
                      asyncio.create_task(health_loop(s, self.compliance, self.sources, self.runs, self.signals))]
        if s.lineage_tracemalloc_s > 0:  # a leak hunt (codex_lineage.memory_trace): off by default
            self.tasks.append(asyncio.create_task(trace_loop(s.lineage_tracemalloc_s, s.lineage_tracemalloc_top,
                                                             s.lineage_tracemalloc_frames)))
        self.ready.set()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.tasks = []
        if self._store is not None:  # what it wrote since the last checkpoint: anchored before its memory goes
            await final_checkpoint(self.settings, self._store, self.anchoring)
        if self.client is not None:
            self.client.close(5.0)
        if self._store is not None:
            await self._store.close()
            self._store = None
        if self._keys is not None:
            await self._keys.close()
            self._keys = None

    async def postgres_ready(self) -> None:
        await self.store.pool.fetchval("SELECT 1")

    def sources(self) -> Sources:
        return Sources(self.settings, self.bus.topics, self.store, self.keys, lambda hours: self.runs.summary(hours),
                       self.classes.current)

    async def catalog_items(self) -> list[dict[str, Any]]:
        policy = self.classes.current()
        known = await tenants(self.store)
        items = catalog_entries(self.catalog, self.names, known)
        items += [document_set_entry(s, self.names.datasets.chroma)
                  for s in await document_sets(self.store.pool, known)]
        return [{**e, "classification": policy.of_entry(e["kind"], e["name"], e["facets"].get("tenant"))}
                for e in items]

    async def on_batch(self, msg: Any) -> None:
        """A batch of records (its message from record_decoder: no Context, no thread hop), stored together; one
        bad record: the others stored one by one, it dead-lettered with the reason. While the store is down the
        batch is held: nothing is committed (codex_lineage.holding)."""
        await self.ready.wait()
        assert self.batches is not None
        await self.batches.store(list(msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)))

    async def _refused(self, raw: Any, exc: ProducerRefused) -> None:
        """A record no declared producer of its topic signed: a finding, dead-lettered with the reason (the dead
        letter, signed by codex-lineage, is what the record keeps of it)."""
        await self.bus.dead_letter(_Single(raw), f"producer signature refused: {exc}",  # type: ignore[arg-type]
                                   "producer_signature")

    async def _unrecordable(self, raw: Any, exc: Exception) -> None:
        """A record the store refused: dead-lettered with the reason (a dead letter itself is not sent again)."""
        if getattr(raw, "topic", "") != self.bus.topics.deadletter:
            await self.bus.dead_letter(_Single(raw), f"{type(exc).__name__}: {exc}",  # type: ignore[arg-type]
                                       type(exc).__name__)
