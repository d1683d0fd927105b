"""A service outside the pipeline runtime (its own app: the edge, the control plane, codex-lineage) declared
with the same parts as a Stage (moe_core.stage.spec): the topics it consumes and publishes and the stores it
needs. The registry (moe_core.stage.registry) reads both kinds the same way: docs/asyncapi.json lists these
services' channels, the docs' service table their topics and stores, and the apps take their subscriptions
from the declaration (a subscription that is not declared cannot be made).

    SERVICE = ServiceDeclaration(
        name="gateway", settings=GatewaySettings, summary="the protocols in, answers out",
        consumes=(Consumes("answers", Answer, "answer", group=False), ...),
        publishes=("requests", "cancel"), needs=("redis", "postgres"),
    )
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from moe_core.runtime.settings import FleetSettings
from moe_core.stage.spec import TOPIC_FIELDS, Consumes, Notes

Store = Literal["redis", "postgres", "neo4j", "chroma", "inference"]


@dataclass(frozen=True)
class ServiceDeclaration:
    name: str
    settings: type[FleetSettings]
    summary: str
    consumes: tuple[Consumes, ...] = ()
    publishes: tuple[str, ...] = ()
    needs: tuple[Store, ...] = ()
    reads: tuple[str, ...] = ()  # topics read back by key without a subscription (no group): read grants only
    notes: Notes = field(default_factory=Notes)  # for the docs: its state and redelivery (docs/architecture.md)

    def __post_init__(self) -> None:
        unknown = [t for t in (*self.publishes, *self.reads) if t not in TOPIC_FIELDS]
        if unknown:
            raise ValueError(f"service {self.name}: unknown published or read topics {unknown}")

    def all_consumed(self) -> list[Consumes]:
        return list(self.consumes)

    def consumption(self, topic: str) -> Consumes:
        """The declared subscription to `topic` (KeyError: the service does not declare it)."""
        for consumes in self.consumes:
            if consumes.topic == topic:
                return consumes
        raise KeyError(f"service {self.name} does not declare a subscription to {topic!r}")
