"""One-shot mode: drain the gaps and lint requests waiting in the gap-healer's consumer group, commit,
exit. Meant for a cron job when the daemon is not running (they would share the partitions)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import BaseModel, ValidationError

from gap_healer.app import GapHealer, build, close
from gap_healer.settings import GapHealerSettings
from moe_core.contracts import DeadLetter, LintRequest, OntologyGap, headers
from moe_core.knowledge.graph.lifecycle import prepare_graph
from moe_core.runtime.bus import PermanentError
from moe_core.runtime.kafka_clients import client_kwargs

log = logging.getLogger(__name__)
ASSIGN_TIMEOUT_S = 30.0


@dataclass
class Drained:
    gaps: int = 0
    lints: int = 0
    dead_letters: int = 0


async def run_once(settings: GapHealerSettings, healer: GapHealer | None = None) -> Drained:
    from moe_core.runtime.bus import Bus

    bus = healer.bus if healer else Bus(settings)
    # one record at a time: a question's terms would wait for others that cannot come (gap_healer.batch)
    healer = healer or build(settings.model_copy(update={"gap_batch_wait_s": 0.0}), bus)
    topics = bus.topics
    handlers: dict[str, tuple[type[BaseModel], Callable[[Any], Awaitable[None]]]] = {
        topics.ontology_gaps: (OntologyGap, healer.on_gap),
        topics.linting: (LintRequest, healer.on_lint),
    }
    await bus.ensure_topics()
    await bus.broker.start()
    consumer = AIOKafkaConsumer(*handlers, **client_kwargs(settings), group_id=settings.group_id(),
                                enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=50)
    done = Drained()
    try:
        await prepare_graph(healer.db, seed=settings.graph_seed_ontology)
        await consumer.start()
        end = await _assigned_ends(consumer)
        while [tp for tp, offset in end.items() if await consumer.position(tp) < offset]:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    model, handler = handlers[record.topic]
                    outcome = await _process(bus, settings, record, model, handler)
                    if outcome == "dead":
                        done.dead_letters += 1
                    elif record.topic == topics.ontology_gaps:
                        done.gaps += 1
                    else:
                        done.lints += 1
                    await consumer.commit({tp: record.offset + 1})
    finally:
        await consumer.stop()
        await bus.close()
        await close(healer)
    return done


async def _assigned_ends(consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ASSIGN_TIMEOUT_S
    while not consumer.assignment():
        if loop.time() > deadline:
            raise TimeoutError("no partitions were assigned to the one-shot consumer")
        await consumer.getmany(timeout_ms=100)  # drives the group join
        if consumer.assignment():
            break
    partitions = list(consumer.assignment())
    for tp in partitions:
        if (committed := await consumer.committed(tp)) is not None:
            consumer.seek(tp, committed)
        else:
            await consumer.seek_to_beginning(tp)
    return await consumer.end_offsets(partitions)


async def _process(bus: Any, settings: GapHealerSettings, record: ConsumerRecord, model: type[BaseModel],
                   handler: Callable[[Any], Awaitable[None]]) -> str:
    body = record.value or b""
    try:
        message = model.model_validate_json(body)
    except ValidationError as exc:
        await _dead_letter(bus, settings, record, f"invalid {model.__name__}: {exc}", "validation_error")
        return "dead"
    try:
        await handler(message)
    except (PermanentError, ValueError, KeyError, RuntimeError) as exc:
        await _dead_letter(bus, settings, record, f"{type(exc).__name__}: {exc}", type(exc).__name__)
        return "dead"
    return "ok"


async def _dead_letter(bus: Any, settings: GapHealerSettings, record: ConsumerRecord, reason: str,
                       error_type: str) -> None:
    hdrs = {k: v.decode("utf-8", "replace") for k, v in (record.headers or [])}
    key = record.key.decode("utf-8", "replace") if isinstance(record.key, bytes) else None
    letter = DeadLetter(response_id=hdrs.get(headers.RESPONSE_ID) or key, source_topic=record.topic,
                        partition=record.partition, offset=record.offset, consumer=settings.service_name,
                        reason=reason[:4000], error_type=error_type,
                        payload=(record.value or b"").decode("utf-8", "replace")[:100_000], headers=hdrs)
    log.warning("dead-lettered a message from %s: %s", record.topic, reason[:300])
    value, raw_key = letter.model_dump_json().encode(), letter.response_id.encode() if letter.response_id else None
    marks = {headers.DLQ_REASON: reason[:500], headers.PRODUCER: settings.service_name,
             headers.MESSAGE_TYPE: "DeadLetter"}
    topic = bus.topics.deadletter
    await bus.send_record(topic, raw_key, value, bus.signed(topic, raw_key, value, marks))
