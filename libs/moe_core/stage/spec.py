"""A stage declared once: what it consumes and publishes, what it needs, how it stays idempotent and how
it is cancelled. The runtime (moe_core.stage.runtime) builds the app, the subscribers, /ready, /metrics
and /asyncapi from the declaration; a service folder keeps only its domain logic.

    STAGE = Stage(
        name="critic", settings=CriticSettings, build=Critic, summary="drafts -> reviewed answers",
        consumes=(Consumes("drafts", Draft, "handle"),), publishes=("answers", "ingest", "progress"),
        needs=("redis", "inference"), cancel=CancelPolicy(),
        memo=MemoPolicy("critic:answer", Answer, ttl="answer_ttl_s"),
    )

`build(resources)` makes the stage's domain object; its methods named in `consumes` are the handlers.
Optional methods of that object, called by the runtime when present: `start()` (after the broker),
`close()` (before the resources are closed), `background()` (coroutine functions run as tasks until
shutdown), `checks()` (extra /ready checks), `mount(app)` (extra routes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from moe_core.contracts import Topics
from moe_core.runtime.settings import FleetSettings

Need = Literal["redis", "inference", "neo4j"]
TOPIC_FIELDS = frozenset(Topics.__dataclass_fields__)
EVERY_TOPIC = "*"  # a consumer of every topic of the namespace (e.g. an audit or lineage recorder)


@dataclass(frozen=True)
class Consumes:
    """One subscription. group=False: every process reads every partition, nothing is committed (a
    broadcast such as `cancel`), from the latest offset; with from_start=True from the earliest instead (a
    state every process rebuilds from a compacted topic: the runtime lets the stage start only once the
    subscription has read what the topic held). `when` decides from the domain object whether
    the subscription is made at all (e.g. the planner reads answers only with its semantic cache on).
    topic=EVERY_TOPIC reads every topic; model=None hands the handler FastStream's raw KafkaMessage
    (nothing is parsed, so nothing is dead-lettered for its shape). per_task=True: the topic's records of one
    request are independent tasks (a plan's experts, tools, searches), handled at once rather than one after the
    other; only the records of one task keep their order (moe_core.runtime.key_ordered). linger=True: no request waits
    for the
    records (usage, a cache's write-behind, learning): the broker may hold the fetch to gather several
    (moe_core.runtime.kafka_clients.linger_options). models=False: the handler calls no model, so the fleet
    configuration is not read before it (moe_core.stage.runtime._live). skip_marked: header names
    (moe_core.contracts.headers) whose records this subscription does not want (the planner's cache write-behind: a
    cache hit's Answer, marked by its producer, Envelope.header_marks): such a record is acknowledged unparsed, never
    handled and never dead-lettered; the topic's other readers (the record, replay) get it as ever. The marks are not
    signed: skipping must be the safe side (a record not cached, not learned), never a decision to act."""

    topic: str
    model: type[BaseModel] | None
    handler: str
    group: bool = True
    when: Callable[[Any], bool] | None = None
    description: str = ""
    from_start: bool = False
    per_task: bool = False  # one request's records are independent tasks: run at once, in order per task only
    linger: bool = False  # no request waits for these records: fetched several at a time (MOE_KAFKA_LINGER_MS)
    # acted on only when a declared producer of the topic signed it (MOE_PRODUCER_KEYS,
    # moe_core.runtime.producer_signing): anything else is dead-lettered as a finding (error type producer_signature)
    signed: bool = False
    # the handler may call a model: the runtime reads the fleet configuration in force before it (a Redis GET,
    # moe_core.llm.inference.live); False for a handler that calls none (a cache's bookkeeping): no round trip
    models: bool = True
    skip_marked: tuple[str, ...] = ()  # records carrying any of these headers are acknowledged unparsed, unhandled

    def __post_init__(self) -> None:
        if self.per_task and not self.group:
            raise ValueError(f"{self.topic}: per_task orders a group's records (moe_core.runtime.key_ordered)")
        if self.from_start and self.group:
            raise ValueError(f"{self.topic}: from_start is for group-less subscriptions (a group resumes its offsets)")
        if self.topic not in TOPIC_FIELDS and self.topic != EVERY_TOPIC:
            raise ValueError(f"unknown topic {self.topic!r}; known: {sorted(TOPIC_FIELDS)}")


@dataclass(frozen=True)
class MemoPolicy:
    """Idempotency: the first outcome stored under a key (Redis, first writer wins) is what every later
    attempt republishes. `ttl` names the settings field holding the time to live in seconds; a prefix
    with `{namespace}` is namespaced."""

    prefix: str
    model: type[BaseModel]
    ttl: str


@dataclass(frozen=True)
class CancelPolicy:
    """The stage follows the `cancel` topic: every process sees every Cancel (no group, latest offset),
    marks the request and stops its calls in flight. `handler`: a method of the domain object called
    after the mark (e.g. the merger closes the request at once)."""

    handler: str | None = None


@dataclass(frozen=True)
class Notes:
    """What a service's declaration tells the docs beyond its topics and stores (docs/architecture.md's state and
    redelivery tables, generated by `make schemas`): the state it keeps, how it dedupes and what a redelivered
    message does. Left empty, the tables say what its memo policy implies."""

    keeps: str = ""
    dedupe: str = ""
    redelivery: str = ""


@dataclass(frozen=True)
class Stage:
    name: str
    settings: type[FleetSettings]
    build: Callable[[Any], Any]  # (resources: moe_core.stage.resources.Resources) -> the domain object
    consumes: tuple[Consumes, ...]
    publishes: tuple[str, ...]
    summary: str
    needs: tuple[Need, ...] = ("redis",)
    memo: MemoPolicy | None = None
    cancel: CancelPolicy | None = None
    heartbeat: bool = False  # this stage's processes beat the inference fleet's health
    # its model calls are the request's: held from its token budget (moe_core.llm.token_budget); False for work
    # done after the answer (learning), which is not the client's spend and must not be refused for it
    request_budget: bool = True
    state: str = field(default="")  # app.state attribute holding the domain object (default: the name)
    notes: Notes = Notes()  # for the docs: its state and its redelivery (docs/architecture.md)

    def __post_init__(self) -> None:
        unknown = [t for t in self.publishes if t not in TOPIC_FIELDS]
        if unknown:
            raise ValueError(f"stage {self.name}: unknown published topics {unknown}")
        if (self.memo is not None or self.cancel is not None) and "redis" not in self.needs:
            raise ValueError(f"stage {self.name}: memo and cancellation keep their state in Redis")

    @property
    def state_name(self) -> str:
        return self.state or self.name.replace("-", "_")

    def all_consumed(self) -> list[Consumes]:
        """The declared subscriptions plus the cancel feed."""
        from moe_core.contracts import Cancel

        extra = [Consumes("cancel", Cancel, "<cancel>", group=False, description="cancellation feed")]
        return [*self.consumes, *(extra if self.cancel is not None else [])]
