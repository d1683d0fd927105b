"""A stage declared once: what it consumes and publishes, what it needs, how it stays idempotent and how
it is cancelled. The runtime (moe_core.stage_runtime) builds the app, the subscribers, /ready, /metrics
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
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from moe_core.contracts import Topics
from moe_core.settings import FleetSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from moe_core.stage_resources import Resources

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
    other; only the records of one task keep their order (moe_core.key_ordered)."""

    topic: str
    model: type[BaseModel] | None
    handler: str
    group: bool = True
    when: Callable[[Any], bool] | None = None
    description: str = ""
    from_start: bool = False
    per_task: bool = False  # one request's records are independent tasks: run at once, in order per task only

    def __post_init__(self) -> None:
        if self.per_task and not self.group:
            raise ValueError(f"{self.topic}: per_task orders a group's records (moe_core.key_ordered)")
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
class Stage:
    name: str
    settings: type[FleetSettings]
    build: Callable[[Resources], Any]
    consumes: tuple[Consumes, ...]
    publishes: tuple[str, ...]
    summary: str
    needs: tuple[Need, ...] = ("redis",)
    memo: MemoPolicy | None = None
    cancel: CancelPolicy | None = None
    heartbeat: bool = False  # this stage's processes beat the inference fleet's health
    # its model calls are the request's: held from its token budget (moe_core.token_budget); False for work
    # done after the answer (learning), which is not the client's spend and must not be refused for it
    request_budget: bool = True
    state: str = field(default="")  # app.state attribute holding the domain object (default: the name)

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

    def create_app(self, settings: FleetSettings | None = None, **overrides: Any) -> FastAPI:
        """The stage's ASGI app. Overrides (tests): bus, redis, inference, db, manage_broker, and any
        keyword the stage's build reads from `resources.extra`."""
        from moe_core.stage_runtime import build_app

        return build_app(self, settings or self.settings(), **overrides)
