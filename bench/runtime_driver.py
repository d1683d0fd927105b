"""bench.runtime_costs's driver: `python -m bench.runtime_driver NAMESPACE TOTAL` sends TOTAL ExpertTasks one at a
time to the namespace's task topic, each once the TaskResult of the one before arrived (its CPU is not measured).
A tenth of them in a sampled trace (the traceparent's flag), as MOE_TRACE_SAMPLE_RATIO's default decides."""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from moe_core.contracts import ExpertTask, Topics, deadline_in, headers
from moe_core.contracts.envelope import TraceContext
from moe_core.runtime.kafka_clients import client_kwargs


def task(i: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    rid = f"{i:08d}" + "0" * 24
    parent = f"00-{i + 1:032x}-{i + 1:016x}-{'01' if i % 10 == 0 else '00'}"
    message = ExpertTask(response_id=rid, tenant_id="bench", deadline_at=deadline_in(600), task_id="t1",
                         category="general", instruction="Answer the question briefly and name your sources. " * 4,
                         question="What does the fleet's runtime cost per message, and where does it go? " * 12,
                         trace=TraceContext(traceparent=parent))
    marks = {headers.RESPONSE_ID: rid, headers.MESSAGE_TYPE: "ExpertTask", headers.SCHEMA_VERSION: "1",
             headers.PRODUCER: "planner", headers.TASK_ID: "t1", "traceparent": parent}
    return message.model_dump_json().encode(), rid.encode(), [(k, v.encode()) for k, v in marks.items()]


async def drive(namespace: str, total: int) -> None:
    topics = Topics.for_namespace(namespace)
    producer = AIOKafkaProducer(**client_kwargs(), acks="all", enable_idempotence=True, linger_ms=0)
    consumer = AIOKafkaConsumer(**client_kwargs(), group_id=None, enable_auto_commit=False, fetch_max_wait_ms=500)
    await producer.start()
    await consumer.start()
    tp = TopicPartition(topics.results, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    try:
        for i in range(total):
            value, key, marks = task(i)
            await producer.send_and_wait(topics.tasks_expert, value, key=key, headers=marks)
            while not any(r.key == key for r in (await consumer.getmany(tp, timeout_ms=60_000)).get(tp, [])):
                pass
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(drive(sys.argv[1], int(sys.argv[2])))
