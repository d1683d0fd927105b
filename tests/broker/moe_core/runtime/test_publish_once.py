"""publish_once.reachable, which an operator's command asks before a change it cannot undo (a key's rotation), asks
the broker itself: with the librdkafka producer (the default) the broker's start connects no client, and where the
topics are not created at start (MOE_KAFKA_CREATE_TOPICS=false) nothing else would have asked."""

from __future__ import annotations

import pytest

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
