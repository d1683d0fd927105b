"""What a configuration change is, without the stores: checked against the configuration in force, described for
the policy (kind and changed fields) and for people (before and after, secrets masked), and laid onto the overlay.

Sections and their values (None: back to the environment's, or for a server or profile the environment has not:
removed):
- servers:  an inference server (moe_core.llm.inference.servers.InferenceServer) by name; an edit without
            `api_key` keeps the key in force (the console never shows it back), `api_key: ""` removes it;
- roles:    a role's models in order (planner, judge, default, ...), `model` or `model@server`;
- experts:  an expert category's models in order;
- profiles: a client profile (moe_core.llm.client_profiles.ClientProfile) by name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from moe_core.llm.client_profiles import ClientProfile
from moe_core.llm.inference.config import InferenceConfig
from moe_core.llm.inference.live import FleetOverrides, merged_profiles
from moe_core.llm.inference.servers import InferenceServer, ModelRef
from moe_core.runtime.openai_error import OpenAIError

Section = Literal["servers", "roles", "experts", "profiles"]
SECRET = "***"  # noqa: S105 (the mask shown in place of a server's API key)
_refs = TypeAdapter(list[str | dict[str, Any]])


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    section: Section
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    value: Any = Field(default=None, description="The new value (see control_plane.fleet_config.changes); "
                       "null: back to the environment's, or removed")
    reason: str = Field(default="", max_length=500)


def masked(server: InferenceServer | None) -> dict[str, Any] | None:
    """A server as people see it: its API key never, only whether it has one."""
    if server is None:
        return None
    shown = server.model_dump(mode="json", exclude={"api_key"})
    return {**shown, "api_key": SECRET if server.api_key else None}


def _bad(message: str) -> OpenAIError:
    return OpenAIError(400, message, param="value", code="invalid_config")


def parse_refs(value: Any) -> list[ModelRef]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    try:
        refs = [ModelRef.of(r) for r in _refs.validate_python(value)]
    except (ValidationError, ValueError) as exc:
        raise _bad(f"a list of models ('model' or 'model@server') is expected: {exc}") from None
    if not refs:
        raise _bad("at least one model (or null: back to the environment's)")
    return refs


def _server(name: str, value: Any, current: InferenceServer | None) -> InferenceServer:
    if not isinstance(value, dict):
        raise _bad("a server is an object (name, url, api, models, ...)")
    body = {**value, "name": name}
    if "api_key" not in body or body["api_key"] in (None, SECRET):
        body["api_key"] = current.api_key if current else None  # kept: the console never shows it back
    elif body["api_key"] == "":
        body["api_key"] = None
    try:
        return InferenceServer.model_validate(body)
    except ValidationError as exc:
        raise _bad(f"server {name!r}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None


def fields_changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The fields a change sets or alters (all of them for an added or removed entry)."""
    keys = set(before or {}) | set(after or {})
    return sorted(k for k in keys if (before or {}).get(k) != (after or {}).get(k))


def kind_of(before: Any, after: Any) -> str:
    return "add" if before is None else "remove" if after is None else "update"


def _refs_shown(refs: list[ModelRef] | None) -> list[str] | None:
    return None if refs is None else [str(r) for r in refs]


class Planned(BaseModel):
    """A change checked against the configuration in force: its stored value, what the policy and people see."""

    value: Any
    kind: str
    fields: list[str]
    before: Any
    after: Any


def plan(change: ChangeIn, base: InferenceConfig, profiles: list[ClientProfile],
         over: FleetOverrides) -> Planned:
    """The change checked (400 naming what is wrong) and described; nothing is written."""
    live = base.with_overrides(over)
    secret_fields: list[str] = []
    before: Any
    after: Any
    stored: Any
    if change.section == "servers":
        current = next((s for s in live.servers if s.name == change.name), None)
        new = None if change.value is None else _server(change.name, change.value, current)
        before, after = masked(current), masked(new)
        stored = None if new is None else new.model_dump(mode="json")
        secret_fields = fields_changed(current.model_dump(mode="json") if current else None, stored)
    elif change.section in ("roles", "experts"):
        table = live.roles if change.section == "roles" else live.experts
        new_refs = None if change.value is None else parse_refs(change.value)
        before, after = _refs_shown(table.get(change.name)), _refs_shown(new_refs)
        stored = None if new_refs is None else [r.model_dump(mode="json", exclude_unset=True) for r in new_refs]
        if new_refs is None:
            after = _refs_shown((base.roles if change.section == "roles" else base.experts).get(change.name))
    else:
        current_p = next((p for p in merged_profiles(profiles, over) if p.name == change.name), None)
        try:
            new_p = None if change.value is None else ClientProfile.model_validate({**change.value,
                                                                                    "name": change.name})
        except (ValidationError, TypeError) as exc:
            raise _bad(f"profile {change.name!r}: {exc}") from None
        before = current_p.model_dump(mode="json") if current_p else None
        after = new_p.model_dump(mode="json") if new_p else None
        stored = after
    fields = (secret_fields if change.section == "servers"  # a new key is a change though both show "***"
              else fields_changed(before, after) if isinstance(before, dict) or isinstance(after, dict)
              else [change.name])
    planned = Planned(value=stored, kind=kind_of(before, after), fields=fields, before=before, after=after)
    merge(over, change.section, change.name, stored, base)  # the result must be a configuration that works
    return planned


def merge(over: FleetOverrides, section: str, name: str, value: Any, base: InferenceConfig) -> FleetOverrides:
    """The overlay with the change laid on (400 when the result would not work: no server left, or a model
    reference no server serves)."""
    data = over.model_dump(mode="json")
    if section in ("roles", "experts") and value is None:
        data[section].pop(name, None)
    else:
        data[section][name] = value
    new = FleetOverrides.model_validate(data)
    try:
        config = base.with_overrides(new)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    unserved = [f"{where} {key}: {ref}" for where, table in (("role", config.roles), ("experts", config.experts))
                for key, refs in table.items() for ref in refs if not config.candidates(ref)]
    if unserved:
        raise _bad("no configured server serves " + "; ".join(unserved))
    return new
