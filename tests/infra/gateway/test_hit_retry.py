"""The limits script tried once more when its reply does not come (gateway.metering, moe_core.access.edge_hit), on
real Redis through a TCP relay whose connections can go silent without a FIN or a reset, as a pooled connection
does when something between it and Redis dies: the gateway's own Redis client (moe_core.runtime.stores), with a
shorter read timeout than its 5 s so the test waits less. A hit on such a connection is still answered (it was a
503 limits_unavailable once the profiles' GET, whose error was passed over, no longer went first), and a script
that ran but whose reply was lost is counted once: its second run returns the first one's outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from gateway.metering import Metering
from gateway.settings import GatewaySettings
from moe_core.access.edge_hit import Hit, RecordHead
from moe_core.access.keystore import ApiKey
from moe_core.access.limits import Limiter, Limits
from moe_core.access.settlement import Hold
from moe_core.contracts import ChatMessage, ChatRequest, ModelUse, UsageCharged, deadline_in
from moe_core.llm.answer_records import AnswerRecords
from moe_core.llm.exact_cache import ExactAnswers, ExactEntry, answer_of, cache_scope
from moe_core.llm.inference.live import LiveOverrides
from moe_core.runtime.stores import redis_client

pytestmark = pytest.mark.infra
TENANT = "t-hit-retry"
QUESTION = "Who painted the Mona Lisa?"
READ_TIMEOUT_S = 2.0


class Relay:
    """Relays TCP connections to Redis. `silence` stops relaying on the connections open so far (both ways, or only
    Redis's replies) without closing them; connections opened later pass."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.gates: list[tuple[asyncio.Event, asyncio.Event]] = []  # (requests, replies) of each connection
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def silence(self, replies_only: bool = False) -> None:
        for requests, replies in self.gates:
            replies.clear()
            if not replies_only:
                requests.clear()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        gates = (asyncio.Event(), asyncio.Event())
        for gate in gates:
            gate.set()
        self.gates.append(gates)
        try:
            await asyncio.gather(_pipe(reader, up_writer, gates[0]), _pipe(up_reader, writer, gates[1]))
        except (OSError, asyncio.CancelledError):  # a side closed, or the relay (close): the connection ends
            pass
        finally:
            writer.close()
            up_writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, open_: asyncio.Event) -> None:
    while data := await source.read(65536):
        await open_.wait()  # silenced: held for ever, nothing closed
        sink.write(data)
        await sink.drain()


@pytest.fixture
async def relayed(infra: dict[str, str]) -> AsyncIterator[tuple[Relay, Redis]]:
    """The relay and the gateway's Redis client through it."""
    url = urlsplit(infra["redis"])
    relay = Relay(url.hostname or "127.0.0.1", url.port or 6379)
    port = await relay.start()
    auth = url.netloc.rpartition("@")[0]
    client = redis_client(url._replace(netloc=f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}").geturl())
    client.connection_pool.connection_kwargs["socket_timeout"] = READ_TIMEOUT_S
    try:
        yield relay, client
    finally:
        await client.aclose()
        await relay.close()


def _request() -> ChatRequest:
    return ChatRequest(response_id=uuid.uuid4().hex, tenant_id=TENANT, deadline_at=deadline_in(30),
                       mode="moe-orchestrator", messages=[ChatMessage(role="user", content=QUESTION)])


class Usage:
    """The usage events the gateway hands on (the `usage` topic's events, as the control plane counts them)."""

    def __init__(self) -> None:
        self.events: list[UsageCharged] = []

    async def publish(self, event: UsageCharged) -> None:
        self.events.append(event)


async def _ask(metering: Metering, key: ApiKey, exact: ExactAnswers | None,
               records: AnswerRecords) -> tuple[ChatRequest, Hit | None]:
    """One metered request as gateway.chat reserves it: the profiles' check, limits, an exact repeat's answer."""
    request = _request()
    lookup = exact.lookup(request) if exact is not None else None
    live = LiveOverrides(metering.limiter.redis, metering.settings.topic_namespace)
    record = None
    if lookup is not None:
        record = RecordHead(*records.hit_head(request.response_id, request.tenant_id, lookup[1]), records.ttl_s)
    found = await metering.reserve(key, request, "moe-orchestrator", lookup[0] if lookup else None, record=record,
                                   overlay=(live.key, live.digest()))
    assert found is None or isinstance(found, Hit)
    return request, found


async def _setup(redis: Redis, namespace: str, cached: bool) -> tuple[Metering, ExactAnswers | None,
                                                                      AnswerRecords, Usage]:
    usage = Usage()
    metering = Metering(GatewaySettings(topic_namespace=namespace), Limiter(redis, namespace), usage.publish)
    exact = ExactAnswers(redis, namespace, ttl_s=60) if cached else None
    if exact is not None:
        await exact.put(cache_scope(_request()) or "", ExactEntry(
            cache_key="entry-1", question=QUESTION, answer="Leonardo da Vinci.",
            models_used=[ModelUse(model="m", category="general")]))
    return metering, exact, AnswerRecords(redis, namespace, 3600), usage


def _key() -> ApiKey:
    return ApiKey(id=f"k{uuid.uuid4().hex[:10]}", name="k", role="user", tenant_ids=(TENANT,),
                  limits=Limits(requests_per_minute=10, tokens_per_day=10**8))


async def _counted(metering: Metering, request: ChatRequest, key: ApiKey) -> tuple[Hold, dict[str, set[int]]]:
    """The request's hold and what its key's counters hold, by kind (the windows it was counted in: a request of
    its own key, so a minute's end between two requests changes nothing)."""
    hold = (await metering.settlements.holds([request.response_id]))[request.response_id]
    mine = [(name, kind) for name, kind, _ in hold.counters if f":key:{key.id}:" in name]
    values = await metering.limiter.redis.mget([name for name, _ in mine])
    counted: dict[str, set[int]] = {}
    for (_, kind), value in zip(mine, values, strict=True):
        counted.setdefault(kind, set()).add(int(value or 0))
    return hold, counted


async def test_a_hit_on_a_pooled_connection_dead_without_a_reset_is_answered(
        relayed: tuple[Relay, Redis], namespace: str) -> None:
    relay, client = relayed
    metering, exact, records, usage = await _setup(client, namespace, cached=True)
    await _ask(metering, _key(), exact, records)  # the pool's connection, used once (the script loaded)
    relay.silence()  # it is dead: nothing reaches Redis on it, nothing comes back, no reset
    key = _key()
    request, hit = await _ask(metering, key, exact, records)
    assert hit is not None  # not a 503 limits_unavailable
    answer = answer_of(request, hit.entry, QUESTION)
    assert answer is not None and answer.content == "Leonardo da Vinci."
    record = await records.get(request.response_id)
    assert record is not None and record.cache_key == "entry-1"
    assert (await _counted(metering, request, key))[1] == {"requests": {1}, "tokens": {0}}
    await usage.publish(metering.hit_usage(request.response_id, hit.hold))  # with the Answer
    assert await metering.settle_hit(request.response_id, hit.hold)
    assert [(e.response_id, e.outcome) for e in usage.events] == [(request.response_id, "answered")]


@pytest.mark.parametrize("cached", [True, False], ids=["hit", "miss"])
async def test_a_script_whose_reply_was_lost_is_counted_once(
        relayed: tuple[Relay, Redis], namespace: str, cached: bool) -> None:
    relay, client = relayed
    metering, exact, records, usage = await _setup(client, namespace, cached)
    await _ask(metering, _key(), exact, records)  # the pool's connection, used once (the script loaded)
    relay.silence(replies_only=True)  # the next script runs in Redis; its reply never comes back
    key = _key()
    request, hit = await _ask(metering, key, exact, records)
    hold, counted = await _counted(metering, request, key)
    if cached:  # the hit, once: not a second request counted (the second run returned the first one's outcome)
        assert hit is not None and answer_of(request, hit.entry, QUESTION) is not None
        assert hold.tokens == 0 and counted == {"requests": {1}, "tokens": {0}}
        assert await records.get(request.response_id) is not None
    else:  # reserved once: not the grant twice
        assert hit is None and hold.tokens > 0 and counted == {"requests": {1}, "tokens": {hold.tokens}}
        assert await metering.budgets.left(request.response_id) == hold.tokens
    assert usage.events == []
