"""How every Kafka client of the fleet connects: the one place the security settings (TLS, SASL/SCRAM) become
client arguments. FastStream's KafkaBroker takes `broker_security(settings)`; every aiokafka producer,
consumer and admin client takes `**client_kwargs(settings)` (both are the same settings, turned into
aiokafka's arguments by FastStream's own parser, so the two cannot disagree).

    AIOKafkaConsumer(*topics, **client_kwargs(settings), group_id=None)
    AIOKafkaAdminClient(**client_kwargs(bootstrap="127.0.0.1:9092"))   # settings from the environment
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from moe_core.runtime.settings import FleetSettings

_SASL = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}


def broker_security(settings: FleetSettings) -> BaseSecurity | None:
    """FastStream's security object of these settings (None: plaintext without identity)."""
    protocol = settings.kafka_security_protocol
    tls = protocol in ("SSL", "SASL_SSL")
    context = ssl.create_default_context(cafile=settings.kafka_ca_file or None) if tls else None
    if protocol.startswith("SASL_"):
        sasl = _SASL[settings.kafka_sasl_mechanism]
        return sasl(settings.kafka_username, settings.kafka_password.get_secret_value(), ssl_context=context,
                    use_ssl=tls)
    if tls:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


def bootstrap_servers(bootstrap: str) -> list[str]:
    """MOE_KAFKA_BOOTSTRAP as a list of `host:port`: a cluster is named by several, comma-separated (FastStream takes
    a string as one address, so `a:9092,b:9092` failed every service's start)."""
    return [server.strip() for server in bootstrap.split(",") if server.strip()]


def client_kwargs(settings: FleetSettings | None = None, *, bootstrap: str | None = None) -> dict[str, Any]:
    """aiokafka's connection arguments (bootstrap_servers and security). Without settings they are read from
    the environment (MOE_KAFKA_*), e.g. a test's or an operator tool's, which knows only the bootstrap."""
    settings = settings or FleetSettings()
    return {"bootstrap_servers": bootstrap_servers(bootstrap or settings.kafka_bootstrap),
            **parse_security(broker_security(settings))}


# A group consumer's timing, the same for every consumer of the fleet (aiokafka's names): a member silent for the
# session is replaced; it heartbeats three times per... six times per session; a handler may run for max_poll. The
# fetcher's idle wait: every event its loop waits for (a fetch answered, a record consumed, a seek, an assignment
# lost, a pause lifted, a metadata refresh) wakes it at once, so this only paces an idle consumer's loop, which
# aiokafka's 200 ms woke five times a second per consumer: about half of an idle stage's CPU (issue 52, py-spy).
CONSUMER_TIMING: dict[str, Any] = {"session_timeout_ms": 6_000, "heartbeat_interval_ms": 1_000,
                                   "max_poll_interval_ms": 600_000, "consumer_timeout_ms": 1_000}
LINGER_BYTES = 256 * 1024  # a busy fleet fills a lingering fetch before MOE_KAFKA_LINGER_MS ends


def linger_options(settings: FleetSettings, linger: bool = True) -> dict[str, Any]:
    """aiokafka's fetch arguments: for a consumer no request waits for (linger: Consumes.linger, codex-lineage) the
    broker answers once it holds LINGER_BYTES for it, or after MOE_KAFKA_LINGER_MS; for any other, at its first
    record (a long poll of MOE_KAFKA_FETCH_MAX_WAIT_MS while there is none)."""
    if not (linger and settings.kafka_linger_ms):
        return {"fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms}
    return {"fetch_min_bytes": LINGER_BYTES, "fetch_max_wait_ms": settings.kafka_linger_ms}


def principal(settings: FleetSettings) -> str:
    """Who the broker sees: `User:<name>` with SASL, else ANONYMOUS (for logs)."""
    return f"User:{settings.kafka_username}" if settings.kafka_security_protocol.startswith("SASL_") else "ANONYMOUS"
