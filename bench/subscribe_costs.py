"""CPU of one message through Bus.subscribe (the gateway's replies, every stage's Cancel) on FastStream's in-memory
broker, and how many calls fast_depends ran in a worker thread:

  python -m bench.subscribe_costs

Before: Bus.subscribe's handler took the record as FastStream's Context("message") (KafkaMessage), which
fast_depends resolves with a sync call in a worker thread, one thread hop per record. Run the tree before with its
libs first on PYTHONPATH to compare.
"""

import asyncio
import time
from typing import Any

import fast_depends.utils as fu
from faststream.kafka import TestKafkaBroker

from moe_core.bus import Bus
from moe_core.contracts import Cancel, deadline_in
from moe_core.settings import FleetSettings

N = 1000


async def main() -> None:
    hops = 0
    original: Any = fu.run_in_threadpool

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return await original(*args, **kwargs)

    setattr(fu, "run_in_threadpool", counting)  # noqa: B010 - counted, then put back
    try:
        bus = Bus(FleetSettings(topic_namespace="subscribe-costs"))
        got: list[Cancel] = []

        async def handle(cancel: Cancel) -> None:
            got.append(cancel)

        bus.subscribe(bus.topics.cancel, Cancel, handle, group=False)
        async with TestKafkaBroker(bus.broker):
            msg = Cancel(response_id="a" * 32, tenant_id="t", deadline_at=deadline_in(60), reason="x")
            for _ in range(50):  # warm
                await bus.publish(msg, bus.topics.cancel)
            started = time.process_time()
            for _ in range(N):
                await bus.publish(msg, bus.topics.cancel)
            cpu = time.process_time() - started
    finally:
        setattr(fu, "run_in_threadpool", original)  # noqa: B010
    print(f"handled {len(got)}; calls run in a worker thread {hops}; "
          f"{cpu / N * 1000:.3f} ms of CPU per publish and handling (in-memory broker)")


if __name__ == "__main__":
    asyncio.run(main())
