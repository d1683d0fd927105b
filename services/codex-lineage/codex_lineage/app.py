"""codex-lineage: every topic, in its own consumer group -> the audit store (one signed hash chain per tenant
holding the records and their OpenLineage run events; Postgres, plus an optional openlineage-python
transport), and signed, RFC 3161-timestamped checkpoints of the chains (stored, published on the checkpoint
topic, appended to a file). Off the request path: no stage waits for it, and a stopped codex-lineage catches
up from its committed offsets."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from faststream import AckPolicy

from codex_lineage.api import router
from codex_lineage.catalog_api import catalog_router
from codex_lineage.compliance_api import compliance_router
from codex_lineage.drift_api import drift_router
from codex_lineage.drift_signals_api import drift_signals_router
from codex_lineage.evidence.writer import Material
from codex_lineage.evidence_api import evidence_router
from codex_lineage.export import close_now
from codex_lineage.fact_lineage_api import fact_lineage_router
from codex_lineage.parts import Parts
from codex_lineage.settings import LineageSettings
from codex_lineage.witness_api import witness_router
from moe_core.runtime.bus import Bus, record_decoder
from moe_core.runtime.kafka_clients import linger_options
from moe_core.runtime.openai_error import install_error_handlers
from moe_core.runtime.service import create_service_app


def create_app(settings: LineageSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    settings = settings or LineageSettings()
    bus = bus or Bus(settings)
    parts = Parts(settings, bus)
    subscriber = bus.broker.subscriber(
        *bus.topics.recorded(), decoder=record_decoder, group_id=settings.group_id(),
        ack_policy=AckPolicy.NACK_ON_ERROR, batch=True, max_records=settings.lineage_batch_records,
        batch_timeout_ms=settings.kafka_fetch_max_wait_ms,
        **linger_options(settings),  # fewer, larger transactions at low load: no request waits for the record
        auto_offset_reset="earliest", session_timeout_ms=6_000, heartbeat_interval_ms=1_000,
        max_poll_interval_ms=600_000)
    subscriber(parts.on_batch)
    app = create_service_app(settings, bus, checks={"postgres": parts.postgres_ready}, on_startup=[parts.open],
                             on_shutdown=[parts.close])
    install_error_handlers(app)  # an ApiError raised anywhere, a 404, a bad parameter: the fleet's one envelope
    for api in routers(parts):
        app.include_router(api)
    app.state.parts = parts
    return app


def routers(parts: Parts) -> list[APIRouter]:
    settings, store, keys = parts.settings, (lambda: parts.store), (lambda: parts.keys)
    return [
        router(store, keys, settings.max_event_bytes, parts.classes.current),
        fact_lineage_router(store, keys),
        witness_router(store, parts.anchoring),
        compliance_router(parts.compliance, parts.sources, keys),
        drift_signals_router(lambda: parts.signals, keys, settings.drift_window_h),
        drift_router(lambda: parts.runs, keys, settings.drift_window_h),
        evidence_router(lambda: parts.store.pool, keys, parts.signer,
                        lambda: Material.from_files(settings.audit_keyring, settings.audit_tsa_chain),
                        lambda tenant: close_now(parts.store, parts.anchoring, tenant),
                        lambda: parts.compliance.evaluate(parts.sources()), settings.evidence_max_days,
                        parts.classes.current),
        catalog_router(parts.catalog_items, keys),
    ]
