"""Usage leaves the edge as events: the edge's metering publishes each settled request's charge on the `usage`
topic (the real broker) and the control plane, a real process, writes it to Postgres once per response id
(control_plane.usage.recorder). Settlers racing, and the same charge delivered again, leave one row; a message
that is not a charge goes to the dead-letter topic with the reason, and the consumer goes on. A charge counts only
with the signature of a declared producer of `usage` (the edge, the control plane's sweeper: issue 47): a forged
one is dead-lettered with the reason, counted, and never written."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from gateway.accounts import Accounts
from gateway.settings import GatewaySettings
from moe_core.access.keystore import ApiKey
from moe_core.access.limits import Limits
from moe_core.contracts import Answer, ChatMessage, ChatRequest, Topics, Usage, UsageCharged, deadline_in, headers
from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.stage.producers import key_file, signer
from tests.support.fleet import ServiceProcess, producer_env, producer_keys
from tests.support.lone_service import lone_service
from tests.support.topic_reader import keyed_records

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def control_plane(infra: dict[str, str]) -> Iterator[ServiceProcess]:
    """The control plane with its producer key and the producers' list (it counts only a declared producer's
    charge)."""
    keys = producer_env(producer_keys(), "control-plane")
    with lone_service("control-plane", infra, "usage", 180, **keys) as service:
        yield service


def _keys(control_plane: ServiceProcess) -> Path:
    return Path(control_plane.env["MOE_PRODUCER_KEYS"]).parent


@pytest.fixture
async def edge(control_plane: ServiceProcess, redis: Redis) -> AsyncIterator[tuple[Accounts, Accounts, Bus]]:
    """Two edge replicas' accounts (their meterings publish through one real Bus, signing as the gateway) on the
    control plane's namespace."""
    settings = GatewaySettings(topic_namespace=control_plane.env["MOE_TOPIC_NAMESPACE"],
                               kafka_bootstrap=control_plane.env["MOE_KAFKA_BOOTSTRAP"], resume_grace_s=0,
                               settle_orphan_after_s=0, producer_keys=control_plane.env["MOE_PRODUCER_KEYS"],
                               producer_signing_key=str(key_file(_keys(control_plane), "gateway")))
    bus = Bus(settings)
    await bus.broker.start()
    try:
        yield (Accounts(settings, redis, _no_keys, bus), Accounts(settings, redis, _no_keys, bus), bus)
    finally:
        await bus.close()


def _no_keys() -> Any:
    raise AssertionError("settling reads no key store")


@pytest.fixture
async def pool(infra: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(infra["postgres-control-plane"], min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def _rows(pool: asyncpg.Pool, key_id: str, want: int, timeout_s: float = 45) -> list[dict[str, Any]]:
    """The key's rows in usage_requests, once there are `want` of them (or the time is up)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        rows = [dict(r) for r in await pool.fetch("SELECT * FROM usage_requests WHERE key_id = $1", key_id)]
        if len(rows) >= want or loop.time() > end:
            return rows
        await asyncio.sleep(0.2)


async def _consumed(control_plane: ServiceProcess, timeout_s: float = 45) -> None:
    """Until the control plane's consumer group has committed every record of the usage topic."""
    namespace = control_plane.env["MOE_TOPIC_NAMESPACE"]
    topic = Topics.for_namespace(namespace).usage
    kwargs = client_kwargs(bootstrap=control_plane.env["MOE_KAFKA_BOOTSTRAP"])
    consumer = AIOKafkaConsumer(**kwargs)
    admin = AIOKafkaAdminClient(**kwargs)
    await consumer.start()
    await admin.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer.topics()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while True:
            committed = await admin.list_consumer_group_offsets(f"control-plane.{namespace}")
            if all(tp in committed and committed[tp].offset >= n for tp, n in ends.items() if n > 0):
                return
            assert loop.time() < end, f"the control plane did not consume the usage topic: {committed} < {ends}"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
        await consumer.stop()


def _key() -> ApiKey:
    return ApiKey(id=f"k{uuid.uuid4().hex[:10]}", name="k", role="user", tenant_ids=("t-usage",),
                  limits=Limits(tokens_per_month=10**9))


def _request() -> ChatRequest:
    return ChatRequest(response_id=uuid.uuid4().hex, tenant_id="t-usage", deadline_at=deadline_in(30),
                       mode="moe-orchestrator", messages=[ChatMessage(role="user", content="What is 2+2?")])


async def test_a_charge_settled_at_the_edge_becomes_one_row_written_by_the_control_plane(
        edge: tuple[Accounts, Accounts, Bus], control_plane: ServiceProcess, pool: asyncpg.Pool) -> None:
    owner, other, bus = edge
    key, request = _key(), _request()
    await owner.metering.reserve(key, request, "moe-orchestrator")
    answer = Answer(**request.child_fields(), mode=request.mode, content="4",
                    usage=Usage(prompt_tokens=12, completion_tokens=3))
    # the owner's subscriber and a replica that resumed the stream race: one of them publishes the charge
    await asyncio.gather(owner.metering.settle(answer), other.metering.settle(answer, adopted=True))
    rows = await _rows(pool, key.id, 1)
    assert [(r["response_id"], r["prompt_tokens"], r["completion_tokens"], r["outcome"]) for r in rows] == \
        [(request.response_id, 12, 3, "answered")]
    assert rows[0]["settled_by"] in ("owner", "adopter")

    # the same charge again (a sweeper repeating a settler that died after publishing): nothing changes
    again = UsageCharged(response_id=request.response_id, tenant_id="t-usage", deadline_at=request.deadline_at,
                         key_id=key.id, mode=request.mode, model="moe-orchestrator", prompt_tokens=99,
                         completion_tokens=99, outcome="answered", settled_by="sweeper")
    await bus.publish(again, bus.topics.usage)
    await _consumed(control_plane)
    assert await _rows(pool, key.id, 1) == rows
    daily = await pool.fetch("SELECT requests, prompt_tokens, completion_tokens FROM usage_daily WHERE key_id = $1",
                             key.id)
    assert [tuple(r) for r in daily] == [(1, 12, 3)]


async def test_a_message_that_is_not_a_charge_is_dead_lettered_with_the_reason_and_the_next_is_written(
        edge: tuple[Accounts, Accounts, Bus], control_plane: ServiceProcess, pool: asyncpg.Pool,
        infra: dict[str, str]) -> None:
    _, _, bus = edge
    topics = bus.topics
    rid = f"bad{uuid.uuid4().hex[:8]}"
    bad = json.dumps({"response_id": rid, "key_id": "k"}).encode()  # signed by the gateway, but not a charge
    await _send(infra, topics.usage, [(bad, rid, _signed(control_plane, "gateway", "gateway", topics.usage, bad, rid))])
    key = _key()
    good = UsageCharged(response_id=rid, tenant_id="t-usage", deadline_at=deadline_in(30), key_id=key.id,
                        mode="moe-orchestrator", model="gpt-4o", prompt_tokens=5, completion_tokens=2,
                        cost_micros=40, outcome="abandoned", settled_by="sweeper")
    await bus.publish(good, topics.usage)  # the same key, after the bad one: the consumer went on
    rows = await _rows(pool, key.id, 1)
    assert [(r["model"], r["prompt_tokens"], r["cost_micros"], r["outcome"], r["settled_by"]) for r in rows] == \
        [("gpt-4o", 5, 40, "abandoned", "sweeper")]

    letters = await keyed_records(infra["kafka"], topics.deadletter, [rid], 1)
    assert len(letters) == 1
    letter = letters[0]
    assert (letter["source_topic"], letter["consumer"], letter["error_type"]) == (
        topics.usage, "control-plane", "validation_error")
    assert letter["reason"].startswith("invalid UsageCharged") and "tenant_id" in letter["reason"]


def _signed(control_plane: ServiceProcess, key_of: str, name: str, topic: str, value: bytes,
            rid: str) -> dict[str, str]:
    """The headers of a UsageCharged signed with `key_of`'s producer key under the name `name`."""
    own = signer(_keys(control_plane), key_of)
    own.name = name
    return {headers.MESSAGE_TYPE: "UsageCharged", headers.PRODUCER: name,
            **own.headers(topic, rid.encode(), value, "UsageCharged")}


async def _send(infra: dict[str, str], topic: str, records: list[tuple[bytes, str, dict[str, str]]]) -> None:
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=infra["kafka"]))
    await producer.start()
    try:
        for value, rid, hdrs in records:
            await producer.send_and_wait(topic, value, key=rid.encode(),
                                         headers=[(k, v.encode()) for k, v in hdrs.items()])
    finally:
        await producer.stop()


def _refused(control_plane: ServiceProcess) -> dict[str, float]:
    """The control plane's refusals on the usage topic by reason (its /metrics)."""
    text = httpx.get(f"{control_plane.url}/metrics", timeout=30).text
    out: dict[str, float] = {}
    for labels, value in re.findall(r"moe_producer_signature_refused_total\{([^}]*)\} (\S+)", text):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if found["topic"].endswith(".usage.v1"):
            out[found["reason"]] = out.get(found["reason"], 0.0) + float(value)
    return out


async def test_a_forged_charge_is_refused_dead_lettered_and_never_counted(
        edge: tuple[Accounts, Accounts, Bus], control_plane: ServiceProcess, pool: asyncpg.Pool,
        infra: dict[str, str]) -> None:
    """Charges for one key that no declared producer of `usage` signed: the gateway's name in the header and no
    signature; the planner's valid signature (the planner publishes no usage); the planner's key under the gateway's
    name; the gateway's genuine signature over other bytes (the tokens changed after signing). None is written; the
    genuine charge after them is."""
    _, _, bus = edge
    topics, key = bus.topics, _key()
    before = _refused(control_plane)

    def charge(rid: str, tokens: int) -> bytes:
        return UsageCharged(response_id=rid, tenant_id="t-usage", deadline_at=deadline_in(30), key_id=key.id,
                            mode="moe-orchestrator", model="moe-orchestrator", prompt_tokens=tokens,
                            completion_tokens=tokens, outcome="answered",
                            settled_by="owner").model_dump_json().encode()

    rids = {case: f"forged-{case}-{uuid.uuid4().hex[:8]}" for case in ("header", "planner", "borrowed", "changed")}
    values = {case: charge(rid, 10**6) for case, rid in rids.items()}
    genuine_changed = _signed(control_plane, "gateway", "gateway", topics.usage,
                              charge(rids["changed"], 1), rids["changed"])  # signed over 1 token, sent with 10**6
    await _send(infra, topics.usage, [
        (values["header"], rids["header"], {headers.MESSAGE_TYPE: "UsageCharged", headers.PRODUCER: "gateway"}),
        (values["planner"], rids["planner"],
         _signed(control_plane, "planner", "planner", topics.usage, values["planner"], rids["planner"])),
        (values["borrowed"], rids["borrowed"],
         _signed(control_plane, "planner", "gateway", topics.usage, values["borrowed"], rids["borrowed"])),
        (values["changed"], rids["changed"], genuine_changed),
    ])
    genuine = UsageCharged(response_id=f"genuine-{uuid.uuid4().hex[:8]}", tenant_id="t-usage",
                           deadline_at=deadline_in(30), key_id=key.id, mode="moe-orchestrator",
                           model="moe-orchestrator", prompt_tokens=6, completion_tokens=2, outcome="answered",
                           settled_by="owner")
    await bus.publish(genuine, topics.usage)  # the same key, after the forgeries
    await _consumed(control_plane)

    rows = await _rows(pool, key.id, 1)
    assert [(r["response_id"], r["prompt_tokens"], r["completion_tokens"]) for r in rows] == \
        [(genuine.response_id, 6, 2)]
    daily = await pool.fetch("SELECT requests, prompt_tokens, completion_tokens FROM usage_daily WHERE key_id = $1",
                             key.id)
    assert [tuple(r) for r in daily] == [(1, 6, 2)]

    letters = {d["response_id"]: d for d in await keyed_records(infra["kafka"], topics.deadletter, list(rids.values()),
                                                                 len(rids))}
    reasons = {"header": "unsigned: no producer signature (x-moe-signer/x-moe-sig); it claims producer gateway",
               "planner": "signed as planner, which is not a declared producer of",
               "borrowed": "the signature is not gateway's over this message",
               "changed": "the signature is not gateway's over this message"}
    for case, why in reasons.items():
        letter = letters[rids[case]]
        assert (letter["consumer"], letter["error_type"]) == ("control-plane", "producer_signature"), letter
        assert letter["reason"].startswith(f"producer signature refused: {why}"), (case, letter["reason"])
    after = _refused(control_plane)
    assert after.get("unsigned", 0) - before.get("unsigned", 0) == 1, (before, after)
    assert after.get("not_a_producer", 0) - before.get("not_a_producer", 0) == 1, (before, after)
    assert after.get("bad_signature", 0) - before.get("bad_signature", 0) == 2, (before, after)
