"""Each test talks to the real local component started by deploy/local/fleetctl.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from tests.support.store_auth import neo4j_auth

pytestmark = pytest.mark.infra


async def test_kafka_produce_consume(infra: dict[str, str]) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from moe_core.runtime.kafka_clients import client_kwargs

    topic = f"test-infra-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap=infra["kafka"]))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]), linger_ms=0)
        await producer.start()
        try:
            meta = await producer.send_and_wait(topic, b"hello fleet", key=b"k1")
            assert meta.topic == topic
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, **client_kwargs(bootstrap=infra["kafka"]), group_id=f"g-{topic}",
                                    auto_offset_reset="earliest", fetch_max_wait_ms=50)
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
        assert (msg.key, msg.value) == (b"k1", b"hello fleet")
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_redis_set_get(infra: dict[str, str]) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(infra["redis"])
    key = f"test:infra:{uuid.uuid4().hex}"
    try:
        assert await client.set(key, "value", ex=60)
        assert await client.get(key) == b"value"
    finally:
        await client.delete(key)
        await client.aclose()


async def test_postgres_roundtrip(infra: dict[str, str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(infra["postgres"])
    try:
        await conn.execute("CREATE TEMP TABLE t_infra (id int PRIMARY KEY, body text)")
        await conn.execute("INSERT INTO t_infra VALUES ($1, $2)", 1, "hello")
        assert await conn.fetchval("SELECT body FROM t_infra WHERE id = $1", 1) == "hello"
        assert await conn.fetchval("SELECT current_user") == "moe"
    finally:
        await conn.close()


async def test_neo4j_create_match(infra: dict[str, str]) -> None:
    from neo4j import AsyncGraphDatabase

    marker = uuid.uuid4().hex
    user, password = neo4j_auth()
    driver = AsyncGraphDatabase.driver(infra["neo4j"], auth=(user, password) if user else None)
    try:
        await driver.execute_query("CREATE (:InfraTest {marker: $marker, name: $name})",
                                   marker=marker, name="node")
        records, _, _ = await driver.execute_query(
            "MATCH (n:InfraTest {marker: $marker}) RETURN n.name AS name", marker=marker)
        assert [r["name"] for r in records] == ["node"]
    finally:
        await driver.execute_query("MATCH (n:InfraTest {marker: $marker}) DELETE n", marker=marker)
        await driver.close()


def test_chroma_collection(infra: dict[str, str]) -> None:
    import chromadb
    from chromadb.config import Settings

    host, port = infra["chroma"].removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port), settings=Settings(anonymized_telemetry=False))
    name = f"test_infra_{uuid.uuid4().hex[:8]}"
    col = client.create_collection(name, embedding_function=None)
    try:
        vectors: list[Sequence[float]] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
        query: list[Sequence[float]] = [[0.9, 0.1, 0.0]]
        col.add(ids=["d1", "d2"], documents=["about kafka", "about neo4j"], embeddings=vectors)
        res = col.query(query_embeddings=query, n_results=1)
        assert res["ids"] == [["d1"]]
        assert res["documents"] == [["about kafka"]]
    finally:
        client.delete_collection(name)


async def test_llm_chat_completion(infra: dict[str, str]) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=infra["llm"], timeout=60) as client:
        models = (await client.get("/models")).json()
        assert infra["llm-model"] in [m["id"] for m in models["data"]]
        resp = await client.post("/chat/completions", json={
            "model": infra["llm-model"], "max_tokens": 24,
            "messages": [{"role": "user", "content": "Name one colour."}]})
        resp.raise_for_status()
        body = resp.json()
    assert body["choices"][0]["message"]["content"].strip()
    assert body["usage"]["completion_tokens"] > 0
    assert body["usage"]["prompt_tokens"] > 0
