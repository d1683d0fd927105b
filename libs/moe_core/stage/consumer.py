"""A stage's subscribers and publishers on FastStream's own API: one KafkaRouter per stage whose
middleware keeps the bus's guarantees, the payload parsed by a decoder into the declared model (so the
AsyncAPI document carries every message's schema).

- a running service's group subscriptions share one consumer (one for those whose fetch lingers): one member of
  the group heartbeating, long-polling and committing for all its topics instead of one per topic (issue 52);
- a group subscription handles up to MOE_CONSUMER_IN_FLIGHT records at once, in order per key
  (moe_core.runtime.key_ordered), each through the middlewares, the decoder and the handler directly, without
  FastStream's per-message machinery (moe_core.stage.direct: ~100-200 µs of CPU less per record on the real
  broker, bench.runtime_costs);
- group consumers acknowledge after the handler returned (AckPolicy.NACK_ON_ERROR); the acknowledgement
  notes the record's offset and the notes are committed together at most every
  MOE_KAFKA_COMMIT_INTERVAL_MS, on rebalance and on shutdown (moe_core.runtime.offset_commits);
- a payload that is not a valid message, or a handler failing for a non-transient reason: dead-letter
  topic with the reason, then committed;
- a transient failure (broker, Redis, network): re-raised after an exponential backoff, so the record is
  redelivered, until its attempts run out (then dead-lettered); a message the broker refuses for its size
  is dead-lettered at once (moe_core.runtime.redelivery);
- tracing comes from the broker's middleware (outside this one); the metrics are one `moe_stage_seconds`
  observation per message, by outcome (ok, retried, dead_lettered, failed), made here (FastStream's Prometheus
  middleware is not installed: moe_core.runtime.bus.make_broker), as is the response_id on every log line; a failure is
  put on the trace here (the consumer span, or a span of its own in a trace not sampled:
  moe_core.runtime.observability.errors).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from faststream import AckPolicy
from faststream._internal.middlewares import BaseMiddleware
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, ValidationError

from moe_core import contracts
from moe_core.contracts import Envelope, Topics, headers
from moe_core.contracts.topics import TOPIC_MESSAGES
from moe_core.runtime.bus import TRANSIENT_ERRORS, Bus, message_key
from moe_core.runtime.kafka_clients import CONSUMER_TIMING, linger_options
from moe_core.runtime.key_ordered import KeyOrdered
from moe_core.runtime.observability import bind_response_id, current_trace_context
from moe_core.runtime.observability.errors import record_failure
from moe_core.runtime.observability.metrics import PRODUCER_REFUSED, STAGE_SECONDS
from moe_core.runtime.offset_commits import OffsetCommits
from moe_core.runtime.producer_signing import ProducerRefused, ProducerVerifier
from moe_core.runtime.replay import run_scope
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.direct import direct_handling
from moe_core.stage.spec import EVERY_TOPIC

if TYPE_CHECKING:
    from faststream.message import StreamMessage

    from moe_core.stage.declaration import ServiceDeclaration
    from moe_core.stage.spec import Consumes, Stage

log = logging.getLogger(__name__)
Handler = Callable[[Any], Awaitable[None]]
Skip = Callable[[Any], Awaitable[bool]]


class InvalidPayload(Exception):
    """The record is not a valid message of the topic's model."""

    error_type = "validation_error"


class Skipped(Exception):
    """The record carries a header its subscription skips (Consumes.skip_marked): acknowledged, never handled."""


class Unproven(InvalidPayload):
    """No declared producer of the topic signed the record (Consumes.signed): a finding, never acted on."""

    error_type = "producer_signature"


def _dead_letters(bus: Bus | None, commits: OffsetCommits) -> type[BaseMiddleware]:
    service = bus.settings.service_name if bus is not None else "-"

    class StageMiddleware(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
            raw = msg.raw_message
            commits.defer(msg)  # its ack (outside this middleware) notes the offset
            topic = getattr(raw, "topic", "?")
            rid = (msg.headers or {}).get(headers.RESPONSE_ID) or message_key(raw) or "-"
            started = time.perf_counter()
            outcome = "failed"  # the message's one observation (moe_stage_seconds), by how its handling ended
            with bind_response_id(str(rid)):
                try:
                    result = await call_next(msg)
                    if bus is not None:
                        bus.redelivery.done(msg)
                    outcome = "ok"
                    return result
                except Skipped:  # acknowledged unparsed (Consumes.skip_marked)
                    outcome = "skipped"
                    return None
                except InvalidPayload as exc:
                    record_failure(topic, str(rid), exc)
                    if bus is not None:
                        await bus.dead_letter(msg, str(exc), exc.error_type)  # type: ignore[arg-type]
                        outcome = "dead_lettered"
                    return None
                except TRANSIENT_ERRORS as exc:  # backoff and redelivery, or dead-lettered (redelivery.py)
                    log.exception("transient failure")
                    record_failure(topic, str(rid), exc)
                    if bus is None or topic == bus.topics.deadletter:  # never a dead letter of a dead letter
                        await asyncio.sleep(1.0)
                        outcome = "retried"
                        raise
                    if await bus.redelivery.redeliver(msg, exc, bus.dead_letter):
                        outcome = "retried"
                        raise
                    outcome = "dead_lettered"
                    return None
                except Exception as exc:
                    log.exception("handler failed")
                    record_failure(topic, str(rid), exc)
                    if bus is None:
                        raise
                    if topic == bus.topics.deadletter:  # never a dead letter of a dead letter (no loop)
                        return None
                    await bus.dead_letter(msg, f"{type(exc).__name__}: {exc}", type(exc).__name__)  # type: ignore[arg-type]
                    outcome = "dead_lettered"
                    return None
                finally:
                    STAGE_SECONDS.labels(service, topic, outcome).observe(time.perf_counter() - started)

    return StageMiddleware


def _decoder(model: type[BaseModel], producers: ProducerVerifier | None = None,
             service: str = "-", skip: tuple[str, ...] = ()) -> Callable[..., Awaitable[BaseModel]]:
    async def decode(msg: StreamMessage[Any], original: Any = None) -> BaseModel:
        if skip and marked(msg, skip):  # FastStream's own handling; the runtime's drops it earlier (stage.direct)
            raise Skipped
        body = msg.body if isinstance(msg.body, bytes) else str(msg.body).encode()
        if producers is not None:
            _prove(producers, msg.raw_message, service)
        try:
            parsed = model.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidPayload(f"invalid {model.__name__}: {exc}") from None
        if isinstance(parsed, Envelope) and parsed.trace.traceparent is None:
            parsed.trace = current_trace_context()  # the consumer span, continuing the header's trace
        return parsed

    return decode


def marked(msg: StreamMessage[Any], names: tuple[str, ...]) -> bool:
    """Whether the record carries one of the headers its subscription skips (Consumes.skip_marked)."""
    return any(name in msg.headers for name in names)


def _skipper(consumes: Consumes, commits: OffsetCommits, topic: str, service: str) -> Skip | None:
    """What the runtime's direct handling (moe_core.stage.direct) asks of each record before its middlewares and its
    parse: whether the subscription skips it; if so it is acknowledged (its offset noted) and counted here."""
    names = consumes.skip_marked
    if not names:
        return None
    seconds = STAGE_SECONDS.labels(service, topic, "skipped")

    async def skip(msg: StreamMessage[Any]) -> bool:
        if not marked(msg, names):
            return False
        started = time.perf_counter()
        commits.defer(msg)
        await msg.ack()
        seconds.observe(time.perf_counter() - started)
        return True

    return skip


def _prove(producers: ProducerVerifier, raw: Any, service: str) -> None:
    """The record's producer signature checked (Unproven: dead-lettered with the reason, counted)."""
    hdrs = {k: v for k, v in (getattr(raw, "headers", None) or [])}
    topic = getattr(raw, "topic", "?")
    try:
        producers.check(topic, getattr(raw, "key", None), getattr(raw, "value", None), hdrs)
    except ProducerRefused as exc:
        PRODUCER_REFUSED.labels(service, topic, exc.reason).inc()
        log.error("REFUSED a message of %s: %s", topic, exc)
        raise Unproven(f"producer signature refused: {exc}") from None


def _typed(consumes: Consumes, handler: Handler, service: str) -> Handler:
    """A handler whose signature names the model: FastStream's AsyncAPI takes the payload schema from it. Each
    call is a stage run whose model calls are recorded, or answered from the record in a replay as recorded
    (moe_core.runtime.replay)."""

    async def handle(message: Any) -> None:
        with run_scope(service, message):
            await handler(message)

    handle.__annotations__ = {"message": consumes.model or KafkaMessage, "return": None}
    handle.__name__ = handle.__qualname__ = consumes.handler.strip("<>")
    return handle


def subscriber_options(settings: FleetSettings, consumes: Consumes,
                       commits: OffsetCommits | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        **linger_options(settings, consumes.linger),
        **CONSUMER_TIMING,
    }
    if consumes.group:
        kwargs.update(group_id=settings.group_id(), ack_policy=AckPolicy.NACK_ON_ERROR,
                      auto_offset_reset="earliest")
        if commits is not None:
            kwargs["listener"] = commits.listener()  # flush the noted offsets of revoked partitions
        if settings.consumer_in_flight == 1 and settings.consumer_workers > 1 and consumes.topic != EVERY_TOPIC:
            kwargs["max_workers"] = settings.consumer_workers  # FastStream's: one topic only
    else:
        kwargs.update(ack_policy=AckPolicy.ACK_FIRST, auto_offset_reset="earliest" if consumes.from_start else "latest")
    return kwargs


def subscriber_title(stage: Stage | ServiceDeclaration, consumes: Consumes) -> str:
    """The subscription's AsyncAPI channel: `<stage>:<topic>`, plus `:<handler>` where the stage reads one topic
    two ways (e.g. group-less and in its group)."""
    twice = sum(c.topic == consumes.topic for c in stage.all_consumed()) > 1
    return f"{stage.name}:{consumes.topic}" + (f":{consumes.handler}" if twice else "")


def stage_router(stage: Stage | ServiceDeclaration, settings: FleetSettings, bus: Bus | None,
                 handlers: dict[str, Handler] | None,
                 commits: OffsetCommits | None = None) -> tuple[KafkaRouter, dict[str, Any]]:
    """The stage's router: a subscriber per (enabled) consumption, a publisher per declared topic (for the
    document; the stage publishes through its Bus). handlers=None: no-op handlers (the AsyncAPI document
    of a stage that is not running). `commits`: the offset notes of its group consumers (a test's, to
    count them; by default one per router). Returns the router and its subscribers by handler name."""
    topics = Topics.for_namespace(settings.topic_namespace)
    commits = commits or OffsetCommits(settings.kafka_commit_interval_ms)
    router = KafkaRouter(middlewares=(_dead_letters(bus, commits),))
    subscribers: dict[str, Any] = {}
    for shared in _consumers(stage, settings, handlers):
        first, names = shared[0], [_names(topics, c) for c in shared]
        decoders = [_decoder(c.model, _checked(bus, c), settings.service_name, c.skip_marked)
                    if c.model is not None else None for c in shared]
        alone = len(shared) == 1
        subscriber = router.subscriber(
            *(name for own in names for name in own), decoder=decoders[0] if alone else None,
            title=subscriber_title(stage, first) if alone else f"{stage.name}:{'+'.join(c.topic for c in shared)}",
            description=first.description or None, **subscriber_options(settings, first, commits))
        direct: dict[str, Handler] = {}  # by topic: the record handling KeyOrdered calls
        for consumes, own, decode in zip(shared, names, decoders, strict=True):
            typed = _typed(consumes, handlers[consumes.handler] if handlers is not None else _noop,
                           settings.service_name)
            if alone:
                subscriber(typed)
            else:  # FastStream's own handling (its test broker) picks the handler by the record's topic
                subscriber(typed, decoder=decode, filter=_of_topic(own[0]))
            handling = direct_handling(subscriber, decode, typed, _skipper(
                consumes, commits, own[0], settings.service_name)) if decode is not None else None
            if handling is not None:
                direct.update(dict.fromkeys(own, handling))
            subscribers[consumes.handler] = subscriber
        if first.group and settings.consumer_in_flight > 1:  # many records in flight, in order per key
            per_task = [n for c, own in zip(shared, names, strict=True) if c.per_task for n in own]
            KeyOrdered(subscriber, commits, settings.consumer_in_flight, per_task=per_task,
                       handle=_by_topic(direct) if direct else None)
    for topic in stage.publishes:
        model = getattr(contracts, TOPIC_MESSAGES[topic])
        router.publisher(getattr(topics, topic), schema=model, title=f"{stage.name}:{topic}:publish")
    return router, subscribers


def _consumers(stage: Stage | ServiceDeclaration, settings: FleetSettings,
               handlers: dict[str, Handler] | None) -> list[list[Consumes]]:
    """The enabled subscriptions by the consumer that reads them. A running service's group subscriptions with a
    model share one consumer, one for those whose fetch lingers and one for the rest (issue 52): each consumer of
    a group heartbeats every second, long-polls its own fetch and commits its own offsets, so the planner's five
    made five of each where one does (the broker's request log, bench.kafka_costs_log). Each topic keeps its
    handler, decoder, dead letters and in-flight places; FastStream's concurrent subscriber (MOE_CONSUMER_IN_FLIGHT
    1 with workers) reads one topic only, and the AsyncAPI document (no handlers) keeps a channel per subscription."""
    enabled = [c for c in stage.all_consumed() if handlers is None or c.handler in handlers]
    if handlers is None or settings.consumer_in_flight == 1:
        return [[c] for c in enabled]
    shared: dict[bool, list[Consumes]] = {}
    alone: list[list[Consumes]] = []
    for consumes in enabled:
        together = shared.setdefault(consumes.linger, [])
        if (consumes.group and consumes.model is not None and consumes.topic != EVERY_TOPIC
                and all(c.topic != consumes.topic for c in together)):
            together.append(consumes)
        else:
            alone.append([consumes])
    return [group for group in shared.values() if group] + alone


def _names(topics: Topics, consumes: Consumes) -> list[str]:
    return topics.all() if consumes.topic == EVERY_TOPIC else [getattr(topics, consumes.topic)]


def _of_topic(name: str) -> Callable[[Any], bool]:
    def of_topic(msg: Any) -> bool:
        return bool(getattr(msg.raw_message, "topic", None) == name)

    return of_topic


def _by_topic(handling: dict[str, Handler]) -> Handler:
    """KeyOrdered's record handling for a consumer of several topics: the record's topic's."""
    if len(set(map(id, handling.values()))) == 1:
        return next(iter(handling.values()))

    async def handle(raw: Any) -> None:
        await handling[raw.topic](raw)

    return handle


def _checked(bus: Bus | None, consumes: Consumes) -> ProducerVerifier | None:
    """The producers' keys a `signed` subscription checks (none configured: not checked; the service warned)."""
    if not consumes.signed or bus is None:
        return None
    if bus.producers is None:
        log.warning("%s is read unchecked: MOE_PRODUCER_KEYS is not set, so who produced its messages is not proven",
                    consumes.topic)
    return bus.producers


async def _noop(message: Any) -> None:
    return None
