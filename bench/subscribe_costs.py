"""CPU of one message through Bus.subscribe (the gateway's replies, every stage's Cancel) on FastStream's in-memory
broker, and how many calls fast_depends ran in a worker thread:

  python -m bench.subscribe_costs

Before: Bus.subscribe's handler took the record as FastStream's Context("message") (KafkaMessage), which
fast_depends resolves with a sync call in a worker thread, one thread hop per record. Run the tree before with its
libs first on PYTHONPATH to compare.
"""

import asyncio
import time

from faststream.kafka import TestKafkaBroker

from moe_core.contracts import Cancel, deadline_in
from tests.support.thread_hops import cancel_subscription, thread_hops

N = 1000


async def main() -> None:
    bus, got = cancel_subscription("subscribe-costs")
    with thread_hops() as hops:
        async with TestKafkaBroker(bus.broker):
            msg = Cancel(response_id="a" * 32, tenant_id="t", deadline_at=deadline_in(60), reason="x")
            for _ in range(50):  # warm
                await bus.publish(msg, bus.topics.cancel)
            started = time.process_time()
            for _ in range(N):
                await bus.publish(msg, bus.topics.cancel)
            cpu = time.process_time() - started
    print(f"handled {len(got)}; calls run in a worker thread {len(hops)}; "
          f"{cpu / N * 1000:.3f} ms of CPU per publish and handling (in-memory broker)")


if __name__ == "__main__":
    asyncio.run(main())
