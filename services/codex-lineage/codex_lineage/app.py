"""codex-lineage: every topic, in its own consumer group -> the audit store (one signed hash chain per tenant
holding the records and their OpenLineage run events; Postgres, plus an optional openlineage-python
transport), and signed, RFC 3161-timestamped checkpoints of the chains (stored, published on the checkpoint
topic, appended to a file). Off the request path: no stage waits for it, and a stopped codex-lineage catches
up from its committed offsets."""

from __future__ import annotations

from fastapi import FastAPI
from faststream import AckPolicy

from codex_lineage import (
    api,
    catalog_api,
    compliance_api,
    drift_api,
    drift_signals_api,
    evidence_api,
    fact_lineage_api,
    witness_api,
)
from codex_lineage.parts import Parts
from codex_lineage.settings import LineageSettings
from moe_core.runtime.bus import Bus, record_decoder
from moe_core.runtime.kafka_clients import CONSUMER_TIMING, linger_options
from moe_core.runtime.openai_error import install_error_handlers
from moe_core.runtime.service import create_service_app

ROUTES = (api, fact_lineage_api, witness_api, compliance_api, drift_signals_api, drift_api, evidence_api, catalog_api)


def create_app(settings: LineageSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    settings = settings or LineageSettings()
    bus = bus or Bus(settings)
    parts = Parts(settings, bus)
    subscriber = bus.broker.subscriber(
        *bus.topics.recorded(), decoder=record_decoder, group_id=settings.group_id(),
        ack_policy=AckPolicy.NACK_ON_ERROR, batch=True, max_records=settings.lineage_batch_records,
        # its loop's wait for a batch when its buffer is empty: the linger, as its fetches (the idle long poll's
        # 2 s would only lengthen its stop)
        batch_timeout_ms=settings.kafka_linger_ms or settings.kafka_fetch_max_wait_ms,
        **linger_options(settings),  # fewer, larger transactions at low load: no request waits for the record
        # what the consumer buffers when it falls behind (issue 52: aiokafka's defaults let it hold up to ~63 MB)
        fetch_max_bytes=settings.lineage_fetch_max_bytes,
        max_partition_fetch_bytes=settings.lineage_partition_fetch_bytes,
        auto_offset_reset="earliest", **CONSUMER_TIMING)
    subscriber(parts.on_batch)
    app = create_service_app(settings, bus, checks={"postgres": parts.postgres_ready}, on_startup=[parts.open],
                             on_shutdown=[parts.close])
    install_error_handlers(app)  # an ApiError raised anywhere, a 404, a bad parameter: the fleet's one envelope
    for module in ROUTES:  # each handler is given the parts and its caller (codex_lineage.deps)
        app.include_router(module.api)
    app.state.parts = parts
    return app
