"""How a registry service (moe_core.stage.registry) is deployed, beyond what its declaration already says.

The declaration says what a service consumes and publishes and which stores it needs; from that (and from
moe_core.runtime.pg.tables for its Postgres role) `make schemas` writes its compose service, its Helm component, its
Kafka and Postgres passwords in compose/.env, its scrape job and the port tables (moe_tools.docgen). What no
declaration can know is written here, with defaults that fit a plain pipeline stage, so a new stage needs
nothing of this: its size (replicas, resources, autoscaling), settings only a deployment sets, a host port.

    Deployment(replicas=2, memory_limit="768Mi", autoscaling=Autoscaling(max=6, lag=10))

An env value may carry a comment after two spaces and `#` ("http://chroma:8000  # tenant documents"): it
is written beside the variable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Autoscaling:
    """The Helm component's autoscaling (KEDA on consumer lag, else CPU)."""

    min: int = 1
    max: int = 3
    lag: int = 20  # lag per replica; 0 = scale on CPU
    topic: str | None = None  # a topic label (tasks.expert); None = the first consumed topic; "" = none (CPU)
    note: str = ""  # a comment beside `topic`


@dataclass(frozen=True)
class Deployment:
    note: str = ""  # a comment above the compose service and the Helm component
    replicas: int = 1
    cpu: str = "100m"  # requested
    memory: str = "256Mi"  # requested
    memory_limit: str = "512Mi"
    resources_note: str = ""
    autoscaling: Autoscaling = Autoscaling()
    env: dict[str, str] = field(default_factory=dict, hash=False)  # in compose and Helm alike
    compose_env: dict[str, str] = field(default_factory=dict, hash=False)  # compose only (after `env`)
    # compose's observability layer (compose/compose.observability.yaml): beside the collector's endpoint
    observability_env: dict[str, str] = field(default_factory=dict, hash=False)
    helm_env: dict[str, str] = field(default_factory=dict, hash=False)  # Helm only (after `env`)
    helm: dict[str, Any] = field(default_factory=dict, hash=False)  # more keys of its Helm component (switches)
    compose: dict[str, Any] = field(default_factory=dict, hash=False)  # more keys of its compose service
    publish: Literal["", "host", "loopback"] = ""  # compose: publish the port as ${<NAME>_PORT} (compose/.env)
    waits_for: tuple[str, ...] | None = None  # compose's depends_on; None = from the declaration's needs
