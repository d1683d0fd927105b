"""A cluster named by several brokers (MOE_KAFKA_BOOTSTRAP="a:9092,b:9092"): every client gets each address, the
services' FastStream broker as well as the aiokafka clients (a string was taken as one address by FastStream)."""

from __future__ import annotations

import pytest

from moe_core.runtime.bus import make_broker
from moe_core.runtime.kafka_clients import bootstrap_servers, client_kwargs
from moe_core.runtime.rdkafka_consumer import RdKafkaConsumer
from moe_core.runtime.settings import FleetSettings

pytestmark = pytest.mark.unit
CLUSTER = "127.0.0.1:9092, 127.0.0.1:9192,127.0.0.1:9292"
NODES = ["127.0.0.1:9092", "127.0.0.1:9192", "127.0.0.1:9292"]


def test_each_broker_of_a_cluster_is_an_address() -> None:
    assert bootstrap_servers(CLUSTER) == NODES
    assert bootstrap_servers("kafka:9092") == ["kafka:9092"]
    assert client_kwargs(FleetSettings(kafka_bootstrap=CLUSTER))["bootstrap_servers"] == NODES


def test_the_services_broker_connects_to_every_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default consumer's (librdkafka's) and the fallback's (aiokafka's, FastStream's builder) alike."""
    monkeypatch.delenv("MOE_KAFKA_CONSUMER", raising=False)
    broker = make_broker(FleetSettings(kafka_bootstrap=CLUSTER, service_name="gateway"))
    consumer = broker.config.broker_config.builder(group_id="gateway")
    assert isinstance(consumer, RdKafkaConsumer)
    assert consumer._config["bootstrap.servers"].split(",") == NODES
    fallback = make_broker(FleetSettings(kafka_bootstrap=CLUSTER, service_name="gateway", kafka_consumer="aiokafka"))
    assert fallback.config.broker_config.builder.keywords["bootstrap_servers"] == NODES  # type: ignore[attr-defined]
