"""What a stage's domain object is built from: settings, bus, and the clients the stage declared it needs,
made one way everywhere (the inference client is always fleet-aware), closed by the runtime."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from moe_core.contracts import Envelope, TaskResult
from moe_core.runtime.bus import Bus
from moe_core.runtime.cancellation import Cancellations, RequestCancelled
from moe_core.runtime.idempotency import Memo
from moe_core.runtime.observability.ledger import cost_of
from moe_core.runtime.replay import take_outputs
from moe_core.runtime.run_clock import run_started
from moe_core.runtime.run_versions import config_digest, versions
from moe_core.runtime.settings import FleetSettings
from moe_core.stage.breaker import Breaker, StoreDown, guarded
from moe_core.stage.replay import recorded_result

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from moe_core.knowledge.graph import GraphDB
    from moe_core.llm.inference import InferenceClient
    from moe_core.stage.spec import Stage

M = TypeVar("M", bound=BaseModel)


def stamped(value: M, service: str = "", config: str = "") -> M:
    """The value with the start of the stage run that made it (`started_at`, lineage) and, given the service and its
    configuration digest, the run's versions (moe_core.runtime.run_versions): stored with it, so a redelivery
    republishes
    the same message, not one that claims a later run (or none of the prompts the first run used), the model
    calls it made (moe_core.runtime.replay) and what the run had cost by then
    (moe_core.runtime.observability.ledger)."""
    if not isinstance(value, Envelope):
        return value
    update: dict[str, Any] = {}
    started = run_started()
    if started is not None and value.started_at is None:
        update["started_at"] = started
    if config and value.versions is None:
        update["versions"] = versions(service, config)
    if config and value.model_outputs is None and (outputs := take_outputs()) is not None:
        update["model_outputs"] = outputs
    if config and value.cost is None and (cost := cost_of(service, value)) is not None:
        update["cost"] = cost  # the overhead ledger of the run that made it (moe_core.runtime.observability.ledger)
    return value.model_copy(update=update) if update else value


class Outcomes(Generic[M]):
    """At-least-once delivery means a handler sees a message twice: the first stored outcome stands."""

    def __init__(self, memo: Memo, model: type[M], cancels: Cancellations | None,
                 settings: FleetSettings | None = None, breakers: dict[str, Breaker] | None = None) -> None:
        self.memo = memo
        self.breakers = breakers or {}
        self.model = model
        self.cancels = cancels
        self.service = settings.service_name if settings is not None else ""
        self.config = config_digest(settings) if settings is not None else ""

    async def once(self, key: str, compute: Callable[[], Awaitable[M]], *, message: Envelope | None = None,
                   cancelled: Callable[[], M] | None = None, expired: Callable[[], M] | None = None,
                   also: Callable[[Any], Callable[[list[Any]], None]] | None = None,
                   unavailable: Callable[[StoreDown], M] | None = None) -> tuple[M, bool]:
        """The outcome of `key`: stored, or made now and stored (fresh=True when this call's outcome is the
        one that stands). With the `message` being handled: past its deadline, `expired()` is the outcome
        (nothing is computed); with the stage's cancellation policy, a Cancel of its request stops the
        computation and `cancelled()` is the outcome (without one, RequestCancelled propagates and nothing
        is stored). A tool task of a replay as recorded is answered from the record, nothing computed
        (moe_core.stage.replay; fresh=False: its side effects, e.g. reported gaps, happened in the original run).
        `also(pipe)`: further reads the computation will need, queued in the same round trip as the stored outcome
        (it returns what takes their replies; e.g. the expert-worker's scores). `unavailable(down)`: the outcome
        while a store of the stage is down, or when the computation meets its outage (moe_core.stage.breaker): the
        task fails at once with the reason, never a redelivery loop."""
        if unavailable is not None and self.breakers:
            compute = functools.partial(guarded, self.breakers, compute, unavailable)
        cancels = self.cancels if message is not None else None
        if cancels is not None and message is not None:  # the outcome and the Cancel mark in one round trip
            stored = await cancels.read_with(message.response_id, self.memo.key(key), also)
        elif also is not None:
            pipe = self.memo.redis.pipeline(transaction=False)
            pipe.get(self.memo.key(key))
            take = also(pipe)
            replies = await pipe.execute()
            stored = replies[0]
            take(replies[1:])
        else:
            stored = await self.memo.get(key)
        if stored:
            return self.model.model_validate_json(stored), False
        recorded = recorded_result(self.service, message) if self.model is TaskResult else None
        if recorded is not None:
            replayed = stamped(recorded, self.service, self.config)
            kept = await self.memo.put_first(key, replayed.model_dump_json())
            return self.model.model_validate_json(kept), False
        if message is not None and expired is not None and message.expired():
            value = expired()
        elif message is not None and cancels is not None:
            try:
                value = await cancels.run(message.response_id, compute(), checked=True)
            except RequestCancelled:
                if cancelled is None:
                    raise
                value = cancelled()
        else:
            value = await compute()
        value = stamped(value, self.service, self.config)
        fresh = value.model_dump_json()
        kept = await self.memo.put_first(key, fresh)
        return (value, True) if kept == fresh else (self.model.model_validate_json(kept), False)


class UndeclaredTopic(Exception):
    """A stage published to a topic its declaration does not list (the message is dead-lettered)."""


class DeclaredBus(Bus):
    """The stage's bus: the same broker, but it publishes only to the topics the stage declared (and the
    dead-letter topic), so the declaration and the AsyncAPI document cannot fall behind the code."""

    def __init__(self, bus: Bus, stage: Stage) -> None:
        super().__init__(bus.settings, bus.broker)
        self.declared = frozenset({getattr(self.topics, t) for t in stage.publishes} | {self.topics.deadletter})
        self.stage_name = stage.name

    async def publish(self, message: Envelope, topic: str) -> None:
        if topic not in self.declared:
            raise UndeclaredTopic(f"stage {self.stage_name} does not declare that it publishes to {topic}")
        await super().publish(message, topic)


@dataclass
class Resources:
    stage: Stage
    settings: Any  # the stage's settings class (a FleetSettings subclass)
    bus: Bus
    redis_client: Redis | None = None
    inference_client: InferenceClient | None = None
    graph_db: GraphDB | None = None
    cancels: Cancellations | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    breakers: dict[str, Breaker] = field(default_factory=dict)  # by store: the stores whose outage fails tasks fast

    @property
    def redis(self) -> Redis:
        if self.redis_client is None:
            raise RuntimeError(f"stage {self.stage.name} did not declare that it needs redis")
        return self.redis_client

    @property
    def inference(self) -> InferenceClient:
        if self.inference_client is None:
            raise RuntimeError(f"stage {self.stage.name} did not declare that it needs inference")
        return self.inference_client

    @property
    def db(self) -> GraphDB:
        if self.graph_db is None:
            raise RuntimeError(f"stage {self.stage.name} did not declare that it needs neo4j")
        return self.graph_db

    def outcomes(self) -> Outcomes[Any]:
        """The stage's idempotency store, from its MemoPolicy."""
        policy = self.stage.memo
        if policy is None:
            raise RuntimeError(f"stage {self.stage.name} declares no memo policy")
        prefix = policy.prefix.format(namespace=self.settings.topic_namespace)
        return Outcomes(Memo(self.redis, prefix, int(getattr(self.settings, policy.ttl))), policy.model, self.cancels,
                        self.settings, self.breakers)

    def memo(self, prefix: str, ttl_s: int) -> Memo:
        """A further remembered value (e.g. a model's classification) in the stage's Redis."""
        return Memo(self.redis, prefix, ttl_s)


def make_resources(stage: Stage, settings: FleetSettings, bus: Bus | None, redis: Redis | None,
                   inference: InferenceClient | None, db: GraphDB | None, extra: dict[str, Any]) -> Resources:
    """Build what `stage.needs` lists (unless a test handed it in)."""
    from moe_core.runtime.stores import redis_client

    needs = set(stage.needs)
    res = Resources(stage=stage, settings=settings, bus=DeclaredBus(bus or Bus(settings), stage), extra=extra)
    if "redis" in needs:
        res.redis_client = redis or redis_client(settings.redis_url, settings.redis_ca_file)
    if "inference" in needs:
        from moe_core.llm.inference import InferenceClient

        res.inference_client = inference or InferenceClient.from_settings(settings, res.redis_client,
                                                                          budgets=stage.request_budget)
    if "neo4j" in needs:
        from moe_core.knowledge.graph import GraphDB
        from moe_core.knowledge.graph.driver import GraphUnavailable

        res.graph_db = db or GraphDB.from_settings(settings)  # type: ignore[arg-type]
        res.breakers["neo4j"] = Breaker(settings.service_name, "neo4j", res.graph_db.probe, (GraphUnavailable,))
    if stage.cancel is not None:
        res.cancels = Cancellations(res.redis, settings.topic_namespace)
    return res


async def close_resources(res: Resources) -> None:
    for breaker in res.breakers.values():
        await breaker.close()
    if res.inference_client is not None:
        await res.inference_client.aclose()
    if res.graph_db is not None:
        await res.graph_db.close()
    if res.redis_client is not None:
        await res.redis_client.aclose()
