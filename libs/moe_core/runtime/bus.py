"""The Kafka bus on FastStream: durable producers, at-least-once consumers, dead letters.

Producers: acks=all, idempotence, no linger. Consumers: offsets are committed only after the handler
returned, i.e. after the next event was published; a payload that fails validation, or a handler that
fails for a non-transient reason, goes to the dead-letter topic with the reason and is committed.
Transient failures (broker, Redis, network) are retried by redelivery with exponential backoff, a cap
and an attempt limit, then dead-lettered; a message the broker refuses for its size is dead-lettered at
once (moe_core.runtime.redelivery).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.producer import AioKafkaFastProducerImpl
from faststream.kafka.publisher.state import RealProducer
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from pydantic import BaseModel, ValidationError

from moe_core.contracts import DeadLetter, Envelope, Topics, headers
from moe_core.contracts.topics import COMPACTED
from moe_core.runtime.kafka_clients import (
    CONSUMER_TIMING,
    bootstrap_servers,
    broker_security,
    client_kwargs,
    principal,
)
from moe_core.runtime.observability import bind_response_id, configure_tracing, current_trace_context
from moe_core.runtime.observability.errors import record_failure
from moe_core.runtime.observability.kafka_tracing import bus_tracer, kafka_tracing, producer_span
from moe_core.runtime.observability.lag import track_consumer_lag
from moe_core.runtime.observability.ledger import cost_of
from moe_core.runtime.observability.metrics import (
    KAFKA_REFUSED,
    MESSAGES_DEAD_LETTERED,
    MESSAGES_PUBLISHED,
    PRODUCER_REFUSED,
    STAGE_SECONDS,
)
from moe_core.runtime.producer_signing import ProducerRefused, ProducerSigner, ProducerVerifier
from moe_core.runtime.redelivery import Redelivery
from moe_core.runtime.replay import take_outputs
from moe_core.runtime.retention import retention_days, retention_ms
from moe_core.runtime.run_clock import RunClockMiddleware, run_started
from moe_core.runtime.run_versions import config_digest, versions
from moe_core.runtime.settings import FleetSettings

if TYPE_CHECKING:  # imported where it is chosen: confluent_kafka costs ~90 ms at every service's start
    from moe_core.runtime.rdkafka_producer import RdKafkaProducer

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[M], Awaitable[None]]

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, OSError, asyncio.TimeoutError)
AUTHORIZATION_ERRORS: tuple[type[BaseException], ...] = ()
try:  # Redis and Kafka outages are transient: let the message be redelivered.
    from aiokafka.errors import (
        ClusterAuthorizationFailedError,
        GroupAuthorizationFailedError,
        KafkaError,
        TopicAuthorizationFailedError,
    )
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    TRANSIENT_ERRORS += (KafkaError, RedisConnectionError, RedisTimeoutError)
    AUTHORIZATION_ERRORS = (TopicAuthorizationFailedError, GroupAuthorizationFailedError,
                            ClusterAuthorizationFailedError)
except ImportError:  # pragma: no cover
    pass


class PermanentError(Exception):
    """A handler's way to say: this message can never be processed; dead-letter it."""


class BrokerRefused(PermanentError):
    """The broker refused the service's principal (its ACLs do not name the topic): retrying cannot help."""


def refused(settings: FleetSettings, topic: str, operation: str, exc: BaseException) -> BrokerRefused:
    """Count and log a refusal of the broker; the error to raise instead of the client's (not transient)."""
    who = principal(settings)
    KAFKA_REFUSED.labels(settings.service_name, topic, operation).inc()
    log.error("the Kafka broker refused %s to %s %s (%s): its ACLs, generated from the declaration, do not "
              "allow it", who, operation, topic, type(exc).__name__)
    return BrokerRefused(f"the broker refused {who} to {operation} {topic}: {type(exc).__name__}")


class _TopicsExist(logging.Filter):
    """FastStream warns at every subscriber's start that it does not create topics: the fleet's bootstrap does
    (moe_core.runtime.bus.ensure_fleet_topics)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Auto create topics is disabled")


# FastStream's records in the fleet's format (moe_core.runtime.observability.logging; its own logger writes colour codes
# to stdout): its warnings and errors, not its INFO lines per consumer assignment and subscriber task.
BROKER_LOG = logging.getLogger("moe_core.broker")
BROKER_LOG.setLevel(logging.WARNING)
BROKER_LOG.addFilter(_TopicsExist())


def make_broker(settings: FleetSettings) -> KafkaBroker:
    """The service's broker. Its middlewares are only what every message needs: the run clock and the spans.
    Metrics are the runtime's own, one observation per consumed message (`moe_stage_seconds`, by outcome, in
    the consumer) and one increment per published one (`moe_messages_published_total`, in the Bus):
    FastStream's Prometheus middleware made several per message on top (~35 µs a hop; issue 29)."""
    tracer_provider = configure_tracing(settings.service_name, settings.otel_exporter_endpoint,
                                        settings.trace_sample_ratio)
    broker = KafkaBroker(
        bootstrap_servers(settings.kafka_bootstrap),
        client_id=settings.service_name,
        security=broker_security(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
        request_timeout_ms=30_000,
        allow_auto_create_topics=False,
        # FastStream's own aiokafka producer (and its admin client, for topics it does not create here) not started
        # where the Bus publishes with librdkafka: it connected to every broker and idled
        consumer_only=settings.kafka_producer == "librdkafka",
        graceful_timeout=settings.shutdown_grace_s,  # then moe_core.runtime.service cancels what still runs
        log_level=logging.DEBUG,
        logger=BROKER_LOG,
        middlewares=(
            RunClockMiddleware,  # started_at of what a stage run publishes (lineage)
            kafka_tracing(tracer_provider),  # spans per message, sampled (moe_core.runtime.observability.kafka_tracing)
        ),
    )
    if settings.kafka_consumer == "librdkafka":  # its subscribers' consumers (moe_core.runtime.rdkafka_consumer)
        _consume_with_librdkafka(broker, settings)
    track_consumer_lag(broker, settings.service_name)
    return broker


def _consume_with_librdkafka(broker: KafkaBroker, settings: FleetSettings) -> None:
    """The broker's subscribers build librdkafka consumers: FastStream sets its builder (aiokafka's) when it
    connects, so it is replaced right after."""
    from moe_core.runtime.rdkafka_consumer import consumer_builder

    config = broker.config.broker_config
    connect = config.connect

    async def connected(**kwargs: Any) -> None:
        await connect(**kwargs)
        config.builder = consumer_builder(settings)

    config.connect = connected  # type: ignore[method-assign]
    config.builder = consumer_builder(settings)


class Bus:
    """One service's connection to the fleet's topics."""

    def __init__(self, settings: FleetSettings, broker: KafkaBroker | None = None) -> None:
        self.settings = settings
        self.topics = Topics.for_namespace(settings.topic_namespace)
        self.broker = broker or make_broker(settings)
        self.tracer = bus_tracer(configure_tracing(settings.service_name, settings.otel_exporter_endpoint,
                                                   settings.trace_sample_ratio))
        self.redelivery = Redelivery(settings.retry_base_s, settings.retry_cap_s, settings.retry_max_attempts)
        self.config_digest = config_digest(settings)
        # one signature per publish with the service's own key; the producers' keys for the consumers that check
        self.signer = (ProducerSigner.from_file(settings.producer_signing_key, settings.service_name)
                       if settings.producer_signing_key else None)
        self.producers = (ProducerVerifier.from_file(settings.producer_keys, self.topics)
                          if settings.producer_keys else None)
        self._rd: RdKafkaProducer | None = None

    def signed(self, topic: str, key: bytes | None, value: bytes, marks: dict[str, str]) -> dict[str, str]:
        """`marks` with the service's producer signature over the message (unchanged without a signing key)."""
        if self.signer is None:
            return marks
        return {**marks, **self.signer.headers(topic, key, value, marks.get(headers.MESSAGE_TYPE, ""))}

    async def publish(self, message: Envelope, topic: str) -> None:
        """Publish an envelope keyed by response_id and wait for the broker's acknowledgement. A live event
        (progress, answer delta) of a request whose client does not stream is not published: nobody reads it
        (the final Answer carries the content and the reasoning). Every other message is stamped with the versions
        of the stage run that made it (configuration and prompt template digests, moe_core.runtime.run_versions), unless
        it carries them already (a stored outcome republished), and with the run's model calls not yet on an
        earlier message (moe_core.runtime.replay)."""
        live_event = getattr(message, "live_event", False)
        if live_event and not message.live:
            return
        update: dict[str, Any] = {}  # one copy of the message, however many stamps it gets
        if message.trace.traceparent is None:
            update["trace"] = current_trace_context()
        if message.started_at is None and (started := run_started()) is not None:
            update["started_at"] = started
        if message.versions is None and not live_event:
            update["versions"] = versions(self.settings.service_name, self.config_digest)
        if message.model_outputs is None and not live_event:
            update["model_outputs"] = take_outputs()
        if message.cost is None and not live_event:  # the overhead ledger (moe_core.runtime.observability.ledger)
            update["cost"] = cost_of(self.settings.service_name, message)
        if update:
            message = message.model_copy(update=update)
        with _trace_of(message):
            await self._send(message, topic)

    async def publish_all(self, messages: list[tuple[Envelope, str]]) -> None:
        """Publish independent messages side by side: one wait for the broker instead of one per message
        (their consumers must not depend on the order across topics)."""
        await asyncio.gather(*(self.publish(message, topic) for message, topic in messages))

    async def _send(self, message: Envelope, topic: str) -> None:
        try:
            await self._publish_raw(message, topic)
        except AUTHORIZATION_ERRORS as exc:
            raise refused(self.settings, topic, "write", exc) from None

    async def _publish_raw(self, message: Envelope, topic: str) -> None:
        marks = {
            headers.RESPONSE_ID: message.response_id,
            headers.MESSAGE_TYPE: type(message).__name__,
            headers.SCHEMA_VERSION: str(message.schema_version),
            headers.PRODUCER: self.settings.service_name,
            **message.header_marks(),
        }
        task_id = getattr(message, "task_id", None)
        if isinstance(task_id, str):  # a task or its result: ordered per task where its consumer says so
            marks[headers.TASK_ID] = task_id
        value, key = message.model_dump_json().encode(), message.response_id.encode()
        await self.send_record(topic, key, value, self.signed(topic, key, value, marks))
        MESSAGES_PUBLISHED.labels(self.settings.service_name, topic).inc()

    async def send_record(self, topic: str, key: bytes | None, value: bytes, marks: dict[str, str]) -> None:
        """One record to the broker, waiting for its acknowledgement (acks=all, the broker's idempotent producer),
        in a PRODUCER span whose context goes in the headers. Handed to the librdkafka producer (the default) or to
        the broker's aiokafka producer itself (MOE_KAFKA_PRODUCER=aiokafka): FastStream's publish made a command, a
        correlation id and two middlewares per record on top (~25 µs of CPU, bench.runtime_costs) and added two
        headers nothing reads (correlation_id, an empty content-type).
        FastStream's own path on its in-memory test broker (whose producer is not aiokafka's)."""
        librdkafka = self.settings.kafka_producer == "librdkafka"
        producer = self.broker.config.producer
        state = getattr(producer, "_producer", None)
        if not isinstance(producer, AioKafkaFastProducerImpl) or not (librdkafka or isinstance(state, RealProducer)):
            await self.broker.publish(value, topic=topic, key=key, headers=marks)  # or its error: not started
            return
        with producer_span(self.tracer, topic, key, marks):
            records: list[tuple[str, str | bytes | None]] = [(name, text.encode()) for name, text in marks.items()]
            if librdkafka:
                await self._rdkafka().send(topic, value, key, records)
                return
            assert isinstance(state, RealProducer)  # for mypy: checked above
            sent = await state.producer.send(topic, value=value, key=key, headers=records)
            await sent

    def _rdkafka(self) -> RdKafkaProducer:
        """The librdkafka producer (MOE_KAFKA_PRODUCER=librdkafka), made at the first record and closed (flushed) by
        `close`."""
        if self._rd is None:
            from moe_core.runtime.rdkafka_producer import RdKafkaProducer

            self._rd = RdKafkaProducer(self.settings)
        return self._rd

    async def ping(self, timeout_s: float) -> bool:
        """Whether the broker answers (a service's readiness): FastStream's ping asks with its admin client, which
        its broker does not start where the Bus publishes with librdkafka; then the librdkafka producer asks for
        the dead-letter topic's metadata (a topic every service may write)."""
        if self.settings.kafka_producer != "librdkafka" or not isinstance(self.broker.config.producer,
                                                                          AioKafkaFastProducerImpl):
            return await self.broker.ping(timeout=timeout_s)
        return await self._rdkafka().answers(self.topics.deadletter, timeout_s)

    async def close(self) -> None:
        """The bus's Kafka clients stopped: the librdkafka producer's records in flight acknowledged first (flushed),
        then the broker (its consumers and FastStream's own producer). What a process calls at its end instead of
        `broker.stop()`, which knows nothing of the librdkafka producer."""
        rd, self._rd = self._rd, None
        try:
            if rd is not None:
                await rd.close()
        finally:
            await self.broker.stop()

    async def publish_keyed(self, message: BaseModel, topic: str, key: str) -> None:
        """Publish a message that belongs to no request (the latest state of `key` on a compacted topic, such as
        a semantic-cache entry), keyed by `key`, and wait for the broker's acknowledgement."""
        try:
            value, raw_key = message.model_dump_json().encode(), key.encode()
            marks = {headers.MESSAGE_TYPE: type(message).__name__, headers.PRODUCER: self.settings.service_name}
            signed = self.signed(topic, raw_key, value, marks)
            await self.send_record(topic, raw_key, value, signed)
        except AUTHORIZATION_ERRORS as exc:
            raise refused(self.settings, topic, "write", exc) from None
        MESSAGES_PUBLISHED.labels(self.settings.service_name, topic).inc()

    async def dead_letter(self, msg: KafkaMessage, reason: str, error_type: str) -> None:
        body = msg.body if isinstance(msg.body, bytes) else str(msg.body).encode()
        hdrs = {k: v for k, v in (msg.headers or {}).items() if isinstance(v, str)}
        await self._dead_letter(msg.raw_message, body, hdrs, reason, error_type)

    async def _dead_letter(self, raw: Any, body: bytes, hdrs: dict[str, str], reason: str, error_type: str) -> None:
        rid = hdrs.get(headers.RESPONSE_ID) or message_key(raw)
        letter = DeadLetter(
            response_id=rid,
            source_topic=getattr(raw, "topic", "?"),
            partition=getattr(raw, "partition", None),
            offset=getattr(raw, "offset", None),
            consumer=self.settings.service_name,
            reason=reason[:4000],
            error_type=error_type,
            payload=body.decode("utf-8", errors="replace")[:100_000],
            headers=hdrs,
        )
        MESSAGES_DEAD_LETTERED.labels(self.settings.service_name, letter.source_topic, error_type).inc()
        log.warning("dead-lettered a message from %s: %s", letter.source_topic, reason[:300])
        try:
            value, key = letter.model_dump_json().encode(), rid.encode() if rid else None
            marks = {headers.DLQ_REASON: reason[:500], headers.PRODUCER: self.settings.service_name,
                     headers.MESSAGE_TYPE: "DeadLetter"}
            await self.send_record(self.topics.deadletter, key, value,
                                   self.signed(self.topics.deadletter, key, value, marks))
        except AUTHORIZATION_ERRORS as exc:
            raise refused(self.settings, self.topics.deadletter, "write", exc) from None
        MESSAGES_PUBLISHED.labels(self.settings.service_name, self.topics.deadletter).inc()

    def subscribe(
        self,
        topic: str,
        model: type[M],
        handler: Handler[M],
        *,
        group: bool = True,
        offset_reset: Literal["earliest", "latest"] = "earliest",
        workers: int | None = None,
        wanted: Callable[[str], bool] | None = None,
        signed: bool = False,
    ) -> Any:
        """Consume `topic` as `model` messages.

        group=True: the service's consumer group shares the partitions (each message handled once).
        group=False: this process reads every partition without committing (e.g. gateway replies).
        wanted: a filter on the record key (the response_id); other records are dropped unparsed, before
        FastStream's handling.
        signed: acted on only when a declared producer of the topic signed it (MOE_PRODUCER_KEYS); anything else is
        dead-lettered with the reason (producer_signature) and counted, never handled.
        """
        service = self.settings.service_name

        async def on_message(msg: Any) -> None:  # the record itself (record_decoder), not FastStream's Context
            if wanted is not None:
                key = message_key(msg.raw_message)
                if key is not None and not wanted(key):
                    return
            started = time.perf_counter()
            outcome = "failed"  # the message's one observation (moe_stage_seconds), by how its handling ended
            try:
                if signed and self.producers is not None and not await self._proven(msg, topic):
                    outcome = "dead_lettered"
                    return
                outcome, again = await self._handle(msg, topic, model, handler)
                if again is not None:
                    raise again  # FastStream nacks: the record is redelivered (redelivery.py)
            finally:
                STAGE_SECONDS.labels(service, topic, outcome).observe(time.perf_counter() - started)

        kwargs = self._consumer_options(group, offset_reset, workers)
        # the handler gets the record from a decoder, not from FastStream's Context("message") (KafkaMessage):
        # fast_depends resolves a Context parameter with a sync call in a worker thread, a thread hop per record
        subscriber = self.broker.subscriber(topic, decoder=record_decoder, **kwargs)
        subscriber(on_message)
        if wanted is not None and hasattr(subscriber, "consume_one"):
            _drop_unwanted(subscriber, wanted)
        return subscriber

    async def _proven(self, msg: Any, topic: str) -> bool:
        """Whether a declared producer of the topic signed the record; if not, it is dead-lettered and counted."""
        return await self.proven_record(msg.raw_message, topic)

    async def proven_record(self, raw: Any, topic: str) -> bool:
        """The same check for a record read by a consumer of the caller's own (a Kafka ConsumerRecord: the edge's
        read-back of a resumed stream); True when no producers' list is configured."""
        if self.producers is None:
            return True
        hdrs = list(getattr(raw, "headers", None) or [])
        try:
            self.producers.check(topic, getattr(raw, "key", None), getattr(raw, "value", None), dict(hdrs))
        except ProducerRefused as exc:
            PRODUCER_REFUSED.labels(self.settings.service_name, topic, exc.reason).inc()
            log.error("REFUSED a message of %s: %s", topic, exc)
            text = {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in hdrs}
            await self._dead_letter(raw, getattr(raw, "value", None) or b"", {k: v for k, v in text.items()
                                                                            if isinstance(v, str)},
                                    f"producer signature refused: {exc}", "producer_signature")
            return False
        return True

    async def _handle(self, msg: Any, topic: str, model: type[M],
                      handler: Handler[M]) -> tuple[str, BaseException | None]:
        """One record parsed and handled: its outcome ("ok", "retried" or "dead_lettered") and, when retried, the
        error to raise again so the record is redelivered."""
        body = msg.body if isinstance(msg.body, bytes) else str(msg.body).encode()
        try:
            parsed = model.model_validate_json(body)
        except ValidationError as exc:
            await self.dead_letter(msg, f"invalid {model.__name__}: {exc}", "validation_error")
            return "dead_lettered", None
        if isinstance(parsed, Envelope) and parsed.trace.traceparent is None:
            parsed.trace = current_trace_context()  # the consumer span, continuing the header's trace
        rid = getattr(parsed, "response_id", "-")
        with bind_response_id(rid):
            try:
                await handler(parsed)
                self.redelivery.done(msg)
                return "ok", None
            except TRANSIENT_ERRORS as exc:  # backoff and redelivery, or dead-lettered (redelivery.py)
                log.exception("transient failure")
                record_failure(topic, rid, exc)
                if await self.redelivery.redeliver(msg, exc, self.dead_letter):
                    return "retried", exc
                return "dead_lettered", None
            except Exception as exc:
                log.exception("handler failed")
                record_failure(topic, rid, exc)
                await self.dead_letter(msg, f"{type(exc).__name__}: {exc}", type(exc).__name__)
                return "dead_lettered", None

    def _consumer_options(self, group: bool, offset_reset: str, workers: int | None) -> dict[str, Any]:
        n_workers = (workers or self.settings.consumer_workers) if group else 1
        kwargs: dict[str, Any] = {
            "auto_offset_reset": offset_reset,
            "fetch_max_wait_ms": self.settings.kafka_fetch_max_wait_ms,
            **CONSUMER_TIMING,
        }
        if group:
            kwargs.update(group_id=self.settings.group_id(), ack_policy=AckPolicy.NACK_ON_ERROR)
            if n_workers > 1:
                kwargs["max_workers"] = n_workers
        else:
            kwargs.update(ack_policy=AckPolicy.ACK_FIRST)
        return kwargs

    async def ensure_topics(self) -> None:
        """Create the fleet's topics if they do not exist (explicitly, never by auto-create); nothing when
        MOE_KAFKA_CREATE_TOPICS is off (an admin principal does it where the broker has ACLs)."""
        if self.settings.kafka_create_topics:
            await ensure_fleet_topics(self.settings)


async def ensure_fleet_topics(settings: FleetSettings) -> None:
    """The topics of the settings' namespace, with their retention (as the settings' principal)."""
    topics = Topics.for_namespace(settings.topic_namespace)
    days = retention_days(settings.topic_retention_days)
    configs = {getattr(topics, kind): {"retention.ms": retention_ms(n),
                                       **({"cleanup.policy": "compact,delete"} if kind in COMPACTED else {})}
               for kind, n in days.items()}
    await ensure_topics(settings.kafka_bootstrap, topics.all(), settings.topic_partitions, configs, settings=settings,
                        replication=settings.topic_replication_factor)


async def wait_positioned(subscriber: Any, timeout_s: float = 20.0) -> None:
    """Wait until a started, group-less subscriber has its partitions and a position in each, so no
    message published after this returns can be missed (offset reset `latest` is otherwise lazy)."""
    consumer = getattr(subscriber, "consumer", None)
    if consumer is None:  # the in-memory test broker has no real consumer
        return
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not consumer.assignment():
        if loop.time() > end:
            raise TimeoutError("the subscriber got no partitions")
        await asyncio.sleep(0.05)
    for partition in consumer.assignment():
        await consumer.position(partition)


async def wait_caught_up(subscriber: Any, timeout_s: float = 300.0) -> None:
    """Wait until a started, group-less subscriber reading from the earliest offset has read what its partitions
    held when this was called (a state rebuilt from a compacted topic); TimeoutError after timeout_s (the
    process does not start half-built: its supervisor starts it again)."""
    consumer = getattr(subscriber, "consumer", None)
    if consumer is None:  # the in-memory test broker delivers as it publishes
        return
    await wait_positioned(subscriber, timeout_s)
    ends = await consumer.end_offsets(list(consumer.assignment()))
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    for partition, last in ends.items():
        while await consumer.position(partition) < last:
            if loop.time() > end:
                raise TimeoutError(f"{partition.topic}: not read up to its end within {timeout_s:.0f} s")
            await asyncio.sleep(0.02)
    await asyncio.sleep(0)  # the handler of the last record fetched runs before the stage starts


async def ensure_topics(bootstrap: str, names: list[str], partitions: int,
                        configs: dict[str, dict[str, str]] | None = None, *,
                        settings: FleetSettings | None = None, replication: int = 1) -> None:
    """Create missing topics with their configs (retention); existing topics whose configs differ are updated.
    The client connects as `settings` say (default: the environment's MOE_KAFKA_*)."""
    configs = configs or {}
    admin = AIOKafkaAdminClient(**client_kwargs(settings, bootstrap=bootstrap), client_id="moe-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, replication, topic_configs=configs.get(n, {})) for n in names
               if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except Exception as exc:  # a concurrent creator won the race
                if "TopicAlreadyExists" not in type(exc).__name__ + str(exc):
                    raise
        await _update_configs(admin, [n for n in names if configs.get(n)], configs)  # also lost races
    finally:
        await admin.close()


async def _update_configs(admin: AIOKafkaAdminClient, names: list[str], configs: dict[str, dict[str, str]]) -> None:
    if not names:
        return
    current: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names]):
        for resource in response.resources:
            current[resource[3]] = {entry[0]: entry[1] for entry in resource[4]}
    changed = [ConfigResource(ConfigResourceType.TOPIC, n, configs[n]) for n in names
               if any(current.get(n, {}).get(k) != v for k, v in configs[n].items())]
    if changed:
        log.info("updating the configs (retention) of %d topics", len(changed))
        await admin.alter_configs(changed)


@contextmanager
def _trace_of(message: Envelope) -> Iterator[None]:
    """Outside any span (e.g. the merger's deadline sweeper), publish within the message's own trace."""
    if trace.get_current_span().get_span_context().is_valid or not message.trace.traceparent:
        yield
        return
    carrier = {"traceparent": message.trace.traceparent, "tracestate": message.trace.tracestate or ""}
    token = otel_context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


async def record_decoder(msg: Any, original: Any = None) -> Any:
    """Bus.subscribe's decoder: the record (its body, raw record and headers) is what the handler gets."""
    return msg


def _drop_unwanted(subscriber: Any, wanted: Callable[[str], bool]) -> None:
    """Records whose key is not wanted are dropped where the consumer loop hands them over, before FastStream's
    handling (its parser, middlewares, trace span and metrics): every gateway replica reads every reply of the
    fleet and wants only its own requests'. (on_message checks again for brokers that call it directly.)"""
    consume_one = subscriber.consume_one

    async def consume_wanted(raw: Any) -> None:
        key = message_key(raw)
        if key is None or wanted(key):
            await consume_one(raw)

    subscriber.consume_one = consume_wanted


def message_key(raw: Any) -> str | None:
    """A Kafka message's key as text (None: it has none)."""
    key = getattr(raw, "key", None)
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="replace")
    return key if isinstance(key, str) else None
