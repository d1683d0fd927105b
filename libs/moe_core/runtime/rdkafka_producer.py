"""The Bus's producer on librdkafka (confluent-kafka), MOE_KAFKA_PRODUCER=librdkafka: the same guarantees as the
broker's aiokafka producer (acks=all, idempotence, no linger, its key partitioner, the fleet's TLS/SASL settings),
about a third of its CPU per record (bench.producer_costs). librdkafka batches, sends and retries in threads of its
own; a poll thread here takes its delivery reports and settles each record's future on the event loop.

A failed delivery raises aiokafka's exception of the same Kafka error code (librdkafka's positive codes are the
protocol's), so the Bus and moe_core.runtime.redelivery treat it as they treat aiokafka's: an authorization refusal
(TopicAuthorizationFailedError) is refused(), a record too large (MessageSizeTooLargeError) is dead-lettered at once,
anything else (a broker unreachable for request_timeout: KafkaTimeoutError) is transient and redelivered.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import confluent_kafka
from aiokafka import errors as aiokafka_errors

from moe_core.runtime.kafka_clients import bootstrap_servers
from moe_core.runtime.settings import FleetSettings

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_MS = 30_000  # make_broker's request_timeout_ms: a record not acknowledged by then fails (transient)
MAX_REQUEST_BYTES = 1_048_576  # aiokafka's max_request_size: a larger record is refused before it is sent


def rdkafka_connection(settings: FleetSettings) -> dict[str, Any]:
    """librdkafka's connection settings of every client of the fleet: the bootstrap, the client id, TLS and SASL
    (kafka_clients.broker_security's, by name), its log lines through the fleet's logging."""
    conf: dict[str, Any] = {
        "bootstrap.servers": ",".join(bootstrap_servers(settings.kafka_bootstrap)),
        "client.id": settings.service_name,
        "socket.nagle.disable": True,  # as asyncio's sockets: Nagle held each acknowledged record back 2-4 ms
        "security.protocol": settings.kafka_security_protocol,
        "logger": log,  # librdkafka's log lines through the fleet's logging (from the poll thread), not stderr
    }
    if settings.kafka_security_protocol.startswith("SASL_"):
        conf.update({"sasl.mechanism": settings.kafka_sasl_mechanism, "sasl.username": settings.kafka_username,
                     "sasl.password": settings.kafka_password.get_secret_value()})
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        # the wheel's OpenSSL knows no CA paths of its own: the machine's store, as ssl.create_default_context
        conf["ssl.ca.location"] = settings.kafka_ca_file or "probe"
    return conf


def rdkafka_config(settings: FleetSettings, timeout_ms: int = REQUEST_TIMEOUT_MS) -> dict[str, Any]:
    """librdkafka's configuration of the fleet's producer settings."""
    return {
        **rdkafka_connection(settings),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 0,
        # a key's partition as aiokafka and the Java client put it (murmur2): the readers of a request's records
        # (moe_core.runtime.topic_reads, codex-lineage's verify) read only that partition; librdkafka's own default
        # (consistent_random, CRC32) put 5 keys in 6 elsewhere
        "partitioner": "murmur2_random",
        "message.max.bytes": MAX_REQUEST_BYTES,
        "request.timeout.ms": timeout_ms,
        "message.timeout.ms": timeout_ms,
    }


def kafka_error(err: confluent_kafka.KafkaError) -> Exception:
    """aiokafka's exception for librdkafka's error: the one the Bus and the redelivery already sort."""
    if err.code() == confluent_kafka.KafkaError._MSG_TIMED_OUT:
        return aiokafka_errors.KafkaTimeoutError(err.str())
    cls = aiokafka_errors.for_code(err.code()) if err.code() > 0 else aiokafka_errors.KafkaError
    return cls(err.str())


class RdKafkaProducer:
    """One librdkafka producer of a service; `send` waits for the broker's acknowledgement of its record.

    A fatal error (an idempotent producer whose sequence the broker can no longer continue, a fenced epoch; raised by
    poll(), or err.fatal()) leaves librdkafka's producer refusing every record for good ("Local: Fatal error"): a
    record it refuses fails as transient (redelivered; the record that caused it fails with its own error), and the
    next one goes to a new producer. The old one's last delivery reports are served on the poll thread, then it is
    dropped."""

    def __init__(self, settings: FleetSettings, timeout_ms: int = REQUEST_TIMEOUT_MS,
                 overrides: dict[str, Any] | None = None) -> None:
        self._config = {**rdkafka_config(settings, timeout_ms), **(overrides or {})}
        self._timeout_s = timeout_ms / 1000
        self._producer = confluent_kafka.Producer(self._config)
        self._lock = threading.Lock()  # one rebuild of a fatal producer, whichever thread saw it first
        self._loop = asyncio.get_running_loop()
        self._running = True
        self._poller = threading.Thread(target=self._poll, name=f"rdkafka-poll-{settings.service_name}", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while self._running and not self._loop.is_closed():  # a Bus its process never closed: ends with its loop
            producer = self._producer
            try:
                producer.poll(1.0)  # blocks (GIL released) until a delivery report comes, or 1 s passes
            except confluent_kafka.KafkaException as exc:  # the producer's fatal error is raised here
                self._rebuilt(producer, exc.args[0])
            if producer is not self._producer:  # replaced after a fatal error: its last reports (failed) served
                self._drain(producer)

    def _drain(self, producer: Any) -> None:
        """A replaced producer's last delivery reports served: none of its senders waits for ever."""
        for _ in range(2):
            try:
                producer.flush(self._timeout_s)
                return
            except confluent_kafka.KafkaException:  # its fatal error raised once more: flushed again
                continue

    def _rebuilt(self, fatal: Any, err: confluent_kafka.KafkaError) -> Exception:
        """A new producer for the next record if `fatal` (the one that failed) is still the current one; the error
        to raise, always transient: a new producer may well deliver the record."""
        with self._lock:
            if fatal is self._producer:
                log.error("the librdkafka producer failed for good (%s): a new one takes the next record", err.str())
                self._producer = confluent_kafka.Producer(self._config)
        return aiokafka_errors.KafkaError(f"fatal: {err.str()}")

    async def send(self, topic: str, value: bytes, key: bytes | None,
                   headers: list[tuple[str, str | bytes | None]]) -> None:
        future: asyncio.Future[Exception | None] = self._loop.create_future()
        producer = self._producer

        def delivered(err: confluent_kafka.KafkaError | None, _msg: Any) -> None:  # on the poll thread
            failed = None if err is None else self._rebuilt(producer, err) if fatal(err) else kafka_error(err)
            self._loop.call_soon_threadsafe(_settle, future, failed)

        try:
            producer.produce(topic, value, key, on_delivery=delivered, headers=headers)
        except confluent_kafka.KafkaException as exc:  # refused before sending (its size, an unknown topic, fatal)
            err = exc.args[0]
            raise (self._rebuilt(producer, err) if fatal(err) else kafka_error(err)) from None
        except BufferError as exc:  # librdkafka's queue is full: the broker is not keeping up or gone
            raise aiokafka_errors.KafkaError(str(exc)) from None
        failed = await future
        if failed is not None:
            raise failed

    async def answers(self, topic: str, timeout_s: float) -> bool:
        """Whether the broker answers a metadata request for `topic` within timeout_s."""
        try:
            await asyncio.to_thread(self._producer.list_topics, topic, timeout_s)
        except confluent_kafka.KafkaException:
            return False
        return True

    async def close(self, timeout_s: float = 10.0) -> None:
        """What is still queued is sent (up to timeout_s), then the poll thread ends."""
        left = await asyncio.to_thread(self._producer.flush, timeout_s)
        if left:
            log.warning("%d records not acknowledged when the producer closed", left)
        self._running = False
        await asyncio.to_thread(self._poller.join)


def fatal(err: confluent_kafka.KafkaError) -> bool:
    """The producer's fatal error itself, or a record refused by a producer in that state (_FATAL)."""
    return bool(err.fatal()) or err.code() == confluent_kafka.KafkaError._FATAL


def _settle(future: asyncio.Future[Exception | None], failed: Exception | None) -> None:
    if not future.done():  # else its sender was cancelled
        future.set_result(failed)
