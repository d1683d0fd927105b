"""A real gateway and a control plane beside it for the OpenAPI fuzz run (own topic namespace, Neo4j for
/graph), an admin key, and a stand-in for the fleet behind it on the real broker that answers every request
at once (the fuzz run is about the edges, not the pipeline)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from fleetlib import api as fleetlib_api

from moe_core.contracts import Answer, ChatRequest
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings
from tests.support.fleet import ServiceProcess
from tests.support.keys import new_key
from tests.support.lone_service import lone_control_plane, lone_gateway


@pytest.fixture(scope="package")
def fuzz_gateway(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    fleetlib_api.ensure_up(["neo4j", "chroma"])  # /graph/*; tenant documents (/v1/memory/documents)
    ends = fleetlib_api.endpoints()
    with lone_gateway(infra, "fz", MOE_REQUEST_TIMEOUT_S="20", MOE_LOG_LEVEL="WARNING",
                      MOE_NEO4J_URL=ends["neo4j"], MOE_NEO4J_USER=ends.get("neo4j-user", ""),
                      MOE_NEO4J_PASSWORD=ends.get("neo4j-password", ""), MOE_CHROMA_URL=ends["chroma"]) as gateway:
        with _answering(infra["kafka"], gateway.env["MOE_TOPIC_NAMESPACE"]):
            yield gateway


@pytest.fixture(scope="package")
def fuzz_control_plane(fuzz_gateway: ServiceProcess) -> Iterator[ServiceProcess]:
    """The control plane beside the fuzzed gateway (admin, documents, graph, knowledge, usage, audit)."""
    with lone_control_plane(fuzz_gateway) as control_plane:
        yield control_plane


@pytest.fixture(scope="package")
def fuzz_key(infra: dict[str, str]) -> str:
    return new_key(infra["postgres"], "fuzz-admin", "admin", ["tenant-fuzz"])


class _answering:
    """Answers every ChatRequest on the namespace's requests topic, from a thread with its own loop (the
    schemathesis tests are synchronous)."""

    def __init__(self, bootstrap: str, namespace: str) -> None:
        self.settings = FleetSettings(kafka_bootstrap=bootstrap, topic_namespace=namespace,
                                      service_name="fuzz-fleet", consumer_workers=1)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> _answering:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.bus.close(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _start(self) -> None:
        self.bus = bus = Bus(self.settings)

        async def answer(request: ChatRequest) -> None:
            await bus.publish(Answer(response_id=request.response_id, tenant_id=request.tenant_id,
                                     deadline_at=request.deadline_at, mode=request.mode, content="fuzzed"),
                              bus.topics.answers)

        bus.subscribe(bus.topics.requests, ChatRequest, answer)
        await bus.broker.start()
