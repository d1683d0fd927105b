"""publish_once.reachable, which an operator's command asks before a change it cannot undo (a key's rotation), asks
the broker itself: with the librdkafka producer (the default) the broker's start connects no client, and where the
topics are not created at start (MOE_KAFKA_CREATE_TOPICS=false) nothing else would have asked."""

from __future__ import annotations

import pytest

from moe_core.runtime.bus import Bus
from moe_core.runtime.publish_once import reachable
from moe_core.runtime.settings import FleetSettings
from tests.support.ports import free_port

pytestmark = pytest.mark.infra


@pytest.mark.parametrize("producer", ["librdkafka", "aiokafka"])
async def test_reachable_asks_the_broker(infra: dict[str, str], producer: str) -> None:
    settings = FleetSettings(service_name="reach", kafka_bootstrap=infra["kafka"],
                             kafka_create_topics=False).model_copy(update={"kafka_producer": producer})
    assert await reachable(settings)
    nobody = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    assert not await reachable(nobody, timeout_s=5)


async def test_a_bus_ping_asks_the_broker(infra: dict[str, str], namespace: str) -> None:
    """A service's readiness (/ready's kafka check) with librdkafka: FastStream's ping asks with its admin client,
    which its broker then does not start (nor does its start connect anything: it starts where nothing listens)."""
    settings = FleetSettings(service_name="ping", kafka_bootstrap=infra["kafka"], topic_namespace=namespace,
                             kafka_create_topics=False).model_copy(update={"kafka_producer": "librdkafka"})
    for bootstrap, answers in ((infra["kafka"], True), (f"127.0.0.1:{free_port()}", False)):
        bus = Bus(settings.model_copy(update={"kafka_bootstrap": bootstrap}))
        await bus.broker.start()
        try:
            assert await bus.ping(3.0) is answers
        finally:
            await bus.close()
