"""The fleet configuration changed in the console or the admin API (control_plane.fleet_config), in force
without a restart: inference servers, the global model assignment (roles: planner, judge, ...; experts per
category) and client profiles, laid over what the environment and YAML give at start (INFERENCE_SERVERS,
MODEL_ASSIGNMENTS, EXPERT_TEMPLATES, MOE_CLIENT_PROFILES stay the defaults).

The control plane keeps every change in Postgres (`fleet_config`, `fleet_config_changes`: who, what, before and
after, the approvals) and, after each applied change and when it starts, writes the whole overlay with its version
into one Redis key:

    control-plane:fleet-config:<ns>   string, JSON FleetOverrides; no TTL

Every stage that calls models reads the key before it handles a message (`InferenceClient.refresh`, called by
moe_core.stage.runtime; the merger and the expert-worker read it in the message's own pipeline instead and lay it
with `InferenceClient.refreshed`) and the edge for its client profiles: a metered request is shaped with the overlay
last seen and its SHA-1 checked in the request's limits script (moe_core.access.edge_hit; another value: shaped
again with it), an unmetered one reads it first; the overlay rebuilt only when the value changed. So the next
request after a change uses it, on every replica. A key that is missing means no overlay (the environment's
configuration); an overlay that cannot be read or applied is logged and the last good one stays in force.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from redis.asyncio import Redis

from moe_core.llm.client_profiles import ClientProfile
from moe_core.llm.inference.servers import InferenceServer, ModelRef

log = logging.getLogger(__name__)


class FleetOverrides(BaseModel):
    """The overlay: a server by name (None: the environment's server of that name is removed), a role's or a
    category's models in order, a client profile by name (None: removed)."""

    version: int = Field(default=0, ge=0)
    servers: dict[str, InferenceServer | None] = Field(default_factory=dict)
    roles: dict[str, list[ModelRef]] = Field(default_factory=dict)
    experts: dict[str, list[ModelRef]] = Field(default_factory=dict)
    profiles: dict[str, ClientProfile | None] = Field(default_factory=dict)
    changed_at: datetime | None = None
    changed_by: str | None = None


def live_key(namespace: str) -> str:
    return f"control-plane:fleet-config:{namespace}"


def merged_servers(base: list[InferenceServer], over: FleetOverrides) -> list[InferenceServer]:
    """The environment's servers in their order, each replaced or removed by the overlay, then the new ones."""
    known = {s.name for s in base}
    kept = [over.servers[s.name] if s.name in over.servers else s for s in base]
    added = [s for name, s in over.servers.items() if name not in known]
    return [s for s in kept + added if s is not None]


def merged_profiles(base: list[ClientProfile], over: FleetOverrides) -> list[ClientProfile]:
    known = {p.name for p in base}
    kept = [over.profiles[p.name] if p.name in over.profiles else p for p in base]
    added = [p for name, p in over.profiles.items() if name not in known]
    return [p for p in kept + added if p is not None]


class LiveOverrides:
    """A reader of the overlay: `changed()` gives the new overlay when the key's value is not the last one seen."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.key = live_key(namespace)
        self._raw: str | None = None
        self.current = FleetOverrides()

    async def changed(self) -> FleetOverrides | None:
        """The overlay if it changed since the last call (None: unchanged, or unreadable: logged)."""
        try:
            raw: Any = await self.redis.get(self.key)
        except Exception as exc:  # Redis down: the configuration in force stays (the call itself may still work)
            log.warning("the fleet configuration's overlay cannot be read (%s): the one in force stays", exc)
            return None
        return self.seen(raw)

    def digest(self) -> str:
        """The SHA-1 (hex) of the last value seen, '' for none: what a script compares with the key's value
        (moe_core.access.edge_hit), so that a caller that trusts its last view is told when it is stale."""
        return "" if self._raw is None else hashlib.sha1(self._raw.encode(), usedforsecurity=False).hexdigest()

    def seen(self, raw: Any) -> FleetOverrides | None:
        """The key's value as read (here or in a pipeline of the caller's own, e.g. the merger's snapshot): the
        overlay if it changed since the last value seen (None: unchanged, or unreadable: logged)."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        if text == self._raw:
            return None
        try:
            found = FleetOverrides() if text is None else FleetOverrides.model_validate_json(text)
        except ValidationError as exc:
            log.error("the fleet configuration's overlay is not readable (%s): version %s stays in force",
                      exc, self.current.version)
            self._raw = text
            return None
        self._raw, self.current = text, found
        return found
