"""Consumer lag per stage, partition by partition, read at scrape time from the service's own consumers.

Lag = the partition's high watermark (as of the consumer's last fetch) minus the consumer's position
(the next offset it hands to the service). Records fetched but not yet handed over count as lag. Only
consumer-group subscribers are measured: the gateway's group-less reply readers have no backlog to scale
on. KEDA scales on the same quantity (from the broker's committed offsets) in Kubernetes.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from moe_core.runtime.observability.metrics import REGISTRY

log = logging.getLogger(__name__)
LAG_METRIC = "moe_consumer_lag_messages"


def _position(consumer: Any, tp: Any) -> int | None:
    """The consumer's position without awaiting (aiokafka's position() is async because it may wait
    for a reset; an unreset partition has no lag to report yet)."""
    if hasattr(consumer, "position_now"):  # the librdkafka consumer's (moe_core.runtime.rdkafka_consumer)
        position: int | None = consumer.position_now(tp)
        return position
    try:
        state = consumer._subscription.subscription.assignment.state_value(tp)
    except AttributeError:  # not assigned any more (a rebalance in progress)
        return None
    if state is None or not state.has_valid_position:
        return None
    return int(state.position)


def _consumers(subscriber: Any) -> list[Any]:
    """A subscriber's aiokafka consumers: one, or one per worker (FastStream's concurrent subscriber with
    max_workers runs a consumer subgroup, the partitions shared between them)."""
    subgroup = getattr(subscriber, "consumer_subgroup", None)
    if subgroup:
        return list(subgroup)
    consumer = getattr(subscriber, "consumer", None)
    return [consumer] if consumer is not None else []


class ConsumerLagCollector(Collector):
    def __init__(self) -> None:
        self._brokers: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    def track(self, broker: Any, service: str) -> None:
        self._brokers[broker] = service

    def samples(self) -> Iterator[tuple[str, str, str, str, int]]:
        """(service, group, topic, partition, lag) for every assigned partition with a known lag."""
        for broker, service in list(self._brokers.items()):
            for subscriber in list(getattr(broker, "subscribers", [])):
                for consumer in _consumers(subscriber):
                    group = getattr(consumer, "_group_id", None)
                    if not group:
                        continue
                    for tp in list(consumer.assignment()):
                        highwater, position = consumer.highwater(tp), _position(consumer, tp)
                        if highwater is not None and position is not None:
                            yield service, str(group), tp.topic, str(tp.partition), max(int(highwater) - position, 0)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(LAG_METRIC, "Records of a partition not yet handed to the stage (consumer lag)",
                                   labels=["service", "group", "topic", "partition"])
        try:
            for service, group, topic, partition, lag in self.samples():
                family.add_metric([service, group, topic, partition], lag)
        except Exception as exc:  # a scrape must never fail because a consumer is mid-rebalance
            log.debug("consumer lag not readable: %s: %s", type(exc).__name__, exc)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(LAG_METRIC, "Records of a partition not yet handed to the stage (consumer lag)",
                                labels=["service", "group", "topic", "partition"])


CONSUMER_LAG = ConsumerLagCollector()
REGISTRY.register(CONSUMER_LAG)


def track_consumer_lag(broker: Any, service: str) -> None:
    """Report the lag of `broker`'s group subscribers as moe_consumer_lag_messages{service=...}."""
    CONSUMER_LAG.track(broker, service)
