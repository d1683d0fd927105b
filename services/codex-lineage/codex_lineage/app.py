"""codex-lineage: every topic, in its own consumer group -> the audit store (one signed hash chain per tenant
holding the records and their OpenLineage run events; Postgres, plus an optional openlineage-python
transport), and signed, RFC 3161-timestamped checkpoints of the chains (stored, published on the checkpoint
topic, appended to a file). Off the request path: no stage waits for it, and a stopped codex-lineage catches
up from its committed offsets."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
from fastapi import FastAPI
from faststream import AckPolicy

from codex_lineage import facets
from codex_lineage.anchoring import anchoring_for, checkpoint_loop, final_checkpoint
from codex_lineage.api import router
from codex_lineage.catalog.documents import document_sets
from codex_lineage.catalog.documents import entry as document_set_entry
from codex_lineage.catalog.entries import Names, postgres_namespace
from codex_lineage.catalog.entries import entries as catalog_entries
from codex_lineage.catalog.entries import load as load_catalog
from codex_lineage.catalog_api import catalog_router
from codex_lineage.classes import ClassesFile
from codex_lineage.compliance.engine import Compliance
from codex_lineage.compliance.rules import resolve
from codex_lineage.compliance.sources import Sources
from codex_lineage.compliance_api import compliance_router
from codex_lineage.drift.feedback_signals import Signals
from codex_lineage.drift.runs import DriftSettings, Runs
from codex_lineage.drift.signals import SignalSettings
from codex_lineage.drift_api import drift_router
from codex_lineage.drift_signals_api import drift_signals_router
from codex_lineage.evidence.writer import Material
from codex_lineage.evidence_api import evidence_router
from codex_lineage.export import close_now
from codex_lineage.fact_lineage_api import fact_lineage_router
from codex_lineage.health_loop import health_loop
from codex_lineage.lineage import Datasets, Lineage
from codex_lineage.migrate import migrate
from codex_lineage.recorder import Recorder, extra_client
from codex_lineage.settings import LineageSettings
from codex_lineage.witness_api import witness_router
from moe_core.audit import keyring
from moe_core.audit.checkpoints import tenants
from moe_core.audit.signer import Signer, SigningKeyError
from moe_core.audit.store import AuditStore
from moe_core.runtime.bus import TRANSIENT_ERRORS, Bus, record_decoder
from moe_core.runtime.kafka_clients import linger_options
from moe_core.runtime.openai_error import install_error_handlers
from moe_core.runtime.service import create_service_app

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


def create_app(settings: LineageSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    settings = settings or LineageSettings()
    bus = bus or Bus(settings)
    holder: dict[str, Any] = {}
    ready = asyncio.Event()
    compliance = Compliance(resolve(settings.compliance_rules_dir))  # a broken rule file: refused here, file:line
    classes = ClassesFile(resolve(settings.data_classes_file))  # a broken data-class file: refused here
    drift_cfg = DriftSettings(settings.drift_threshold, settings.drift_min_declared)
    signal_cfg = SignalSettings(settings.drift_baseline_h, settings.drift_min_ratings, settings.drift_false_hit_rate,
                                settings.drift_hit_rate_drop, settings.drift_min_answers, settings.drift_score_drop,
                                settings.drift_score_stale_h)
    lineage = lineage_for(settings, bus)
    client = extra_client(settings.lineage_transport)
    signer = Signer.from_file(settings.audit_signing_key)  # refuses to start without its key
    if settings.audit_keyring and (retired := keyring.retired(Path(settings.audit_keyring), signer.public)):
        raise SigningKeyError(f"the audit signing key {signer.key_id} was retired at {retired.isoformat()} "
                              f"({settings.audit_keyring}): it signs nothing any more")
    anchoring = anchoring_for(settings, bus, signer)

    async def on_batch(msg: Any) -> None:  # the batch's message from record_decoder: no Context, no thread hop
        await ready.wait()  # the store opens after the broker starts (create_service_app's order)
        raws = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        try:
            await holder["recorder"].record_batch(list(raws))
        except TRANSIENT_ERRORS:
            log.exception("transient failure, the batch will be redelivered")
            await asyncio.sleep(1.0)
            raise
        except Exception:  # one bad record: store the others one by one, dead-letter it with the reason
            log.exception("could not record a batch; recording its messages one by one")
            for raw in raws:
                await record_one(raw)

    async def record_one(raw: Any) -> None:
        try:
            await holder["recorder"].record(raw)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # never loop on a record that cannot be stored
            log.exception("could not record a message")
            if getattr(raw, "topic", "") != bus.topics.deadletter:
                await bus.dead_letter(_Single(raw), f"{type(exc).__name__}: {exc}",  # type: ignore[arg-type]
                                      type(exc).__name__)

    subscriber = bus.broker.subscriber(
        *bus.topics.recorded(), decoder=record_decoder, group_id=settings.group_id(),
        ack_policy=AckPolicy.NACK_ON_ERROR, batch=True, max_records=settings.lineage_batch_records,
        batch_timeout_ms=settings.kafka_fetch_max_wait_ms,
        **linger_options(settings),  # fewer, larger transactions at low load: no request waits for the record
        auto_offset_reset="earliest", session_timeout_ms=6_000, heartbeat_interval_ms=1_000,
        max_poll_interval_ms=600_000)
    subscriber(on_batch)

    async def open_store() -> None:
        if settings.audit_migrate_on_start:  # a single-role set-up; otherwise python -m codex_lineage.migrate
            await migrate(settings)
        store = await AuditStore.connect(settings.audit_writer_dsn or settings.postgres_dsn, settings.audit_schema,
                                         migrate=False, signer=signer)
        if not await store.exists():
            await store.close()
            raise RuntimeError(f"the audit store {settings.audit_schema!r} does not exist: run python -m "
                               "codex_lineage.migrate as its migrator role first (fleetctl does)")
        holder["store"] = store
        holder["keys"] = await asyncpg.create_pool(settings.postgres_dsn, min_size=1, max_size=2)
        holder["recorder"] = Recorder(bus.topics, store, lineage, client)
        holder["checkpoints"] = asyncio.create_task(checkpoint_loop(settings, store, anchoring))
        holder["runs"] = Runs(store, drift_cfg)
        holder["signals"] = Signals(store, signal_cfg)
        holder["health"] = asyncio.create_task(health_loop(settings, compliance, sources, holder["runs"],
                                                           holder["signals"]))
        ready.set()

    async def close_store() -> None:
        for task in ("checkpoints", "health"):
            if task in holder:
                holder.pop(task).cancel()
        if "store" in holder:  # what it wrote since the last checkpoint: anchored before its memory of it goes
            await final_checkpoint(settings, holder["store"], anchoring)
        if client is not None:
            client.close(5.0)
        if "store" in holder:
            await holder.pop("store").close()
        if "keys" in holder:
            await holder.pop("keys").close()

    def sources() -> Sources:
        return Sources(settings, bus.topics, holder["store"], holder["keys"],
                       lambda hours: holder["runs"].summary(hours), classes.current)

    async def postgres_ready() -> None:
        await holder["store"].pool.fetchval("SELECT 1")

    app = create_service_app(settings, bus, checks={"postgres": postgres_ready}, on_startup=[open_store],
                             on_shutdown=[close_store])
    install_error_handlers(app)  # an ApiError raised anywhere, a 404, a bad parameter: the fleet's one envelope
    app.include_router(router(lambda: holder["store"], lambda: holder["keys"], settings.max_event_bytes,
                              classes.current))
    app.include_router(fact_lineage_router(lambda: holder["store"], lambda: holder["keys"]))
    app.include_router(witness_router(lambda: holder["store"], anchoring))
    app.include_router(compliance_router(compliance, sources, lambda: holder["keys"]))
    app.include_router(drift_signals_router(lambda: holder["signals"], lambda: holder["keys"],
                                            settings.drift_window_h))
    app.include_router(drift_router(lambda: holder["runs"], lambda: holder["keys"], settings.drift_window_h))
    app.include_router(evidence_router(
        lambda: holder["store"].pool, lambda: holder["keys"], signer,
        lambda: Material.from_files(settings.audit_keyring, settings.audit_tsa_chain),
        lambda tenant: close_now(holder["store"], anchoring, tenant), lambda: compliance.evaluate(sources()),
        settings.evidence_max_days, classes.current))
    catalog = load_catalog(resolve(settings.catalog_file))  # missing or not one: refused at start
    names = Names(bus.topics, datasets(settings), postgres_namespace(settings.audit_writer_dsn or
                                                                     settings.postgres_dsn),
                  settings.audit_schema, settings.lineage_namespace)

    async def catalog_items() -> list[dict[str, Any]]:
        policy = classes.current()
        known = await tenants(holder["store"])
        items = catalog_entries(catalog, names, known)
        items += [document_set_entry(s, names.datasets.chroma) for s in await document_sets(holder["store"].pool,
                                                                                             known)]
        return [{**e, "classification": policy.of_entry(e["kind"], e["name"], e["facets"].get("tenant"))}
                for e in items]

    app.include_router(catalog_router(catalog_items, lambda: holder["keys"]))
    app.state.holder = holder
    app.state.compliance = compliance
    app.state.classes = classes
    return app
