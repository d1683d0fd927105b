"""The console's configuration changes without the stores (control_plane.fleet_config.changes) and the overlay the
stages lay over the environment's configuration (moe_core.llm.inference.live): a server added, replaced, removed;
a role's models replaced and reset; what the policy is told (kind, changed fields); secrets masked; a change that
would leave a model no server serves refused with the API's 400."""

from __future__ import annotations

import pytest

from control_plane.fleet_config.changes import ChangeIn, merge, plan
from moe_core.llm.client_profiles import ClientProfile
from moe_core.llm.inference.config import InferenceConfig
from moe_core.llm.inference.live import FleetOverrides, merged_profiles
from moe_core.llm.inference.servers import InferenceServer, ModelRef
from moe_core.runtime.openai_error import OpenAIError

pytestmark = pytest.mark.unit
BASE = InferenceConfig(servers=[InferenceServer(name="a", url="http://a", models=["m1", "m2"], api_key="sk-a")],
                       roles={"default": [ModelRef(model="m1")], "planner": [ModelRef(model="m2")]},
                       experts={"code": [ModelRef(model="m1")]})


def _apply(over: FleetOverrides, section: str, name: str, value: object) -> FleetOverrides:
    planned = plan(ChangeIn(section=section, name=name, value=value), BASE, [], over)  # type: ignore[arg-type]
    return merge(over, section, name, planned.value, BASE)


def test_a_new_server_and_a_role_on_it_are_laid_over_the_environment() -> None:
    over = _apply(FleetOverrides(), "servers", "b", {"url": "http://b/v1", "models": ["m3"], "api_key": "sk-b"})
    over = _apply(over, "roles", "planner", "m3@b")
    config = BASE.with_overrides(over)
    assert [s.name for s in config.servers] == ["a", "b"] and config.servers[1].url == "http://b"
    assert [str(r) for r in config.for_role("planner")] == ["m3@b"]
    assert [str(r) for r in config.for_role("default")] == ["m1"]  # untouched
    assert config.servers[1].api_key == "sk-b"


def test_the_policy_and_people_see_kind_and_fields_never_the_key() -> None:
    planned = plan(ChangeIn(section="servers", name="a", value={"url": "http://a", "models": ["m1", "m2"],
                                                                  "api_key": "sk-new"}), BASE, [], FleetOverrides())
    assert (planned.kind, planned.fields) == ("update", ["api_key"])
    assert planned.before["api_key"] == planned.after["api_key"] == "***"
    assert "sk-" not in str(planned.before) + str(planned.after)
    kept = plan(ChangeIn(section="servers", name="a", value={"url": "http://a2", "models": ["m1", "m2"]}),
                BASE, [], FleetOverrides())
    assert kept.fields == ["url"] and kept.value["api_key"] == "sk-a"  # no key typed: the one in force stays
    added = plan(ChangeIn(section="servers", name="c", value={"url": "http://c"}), BASE, [], FleetOverrides())
    assert added.kind == "add"


def test_a_reset_role_is_the_environments_again_and_a_removed_server_is_gone() -> None:
    over = _apply(FleetOverrides(), "servers", "b", {"url": "http://b", "models": ["m3"]})
    over = _apply(over, "roles", "planner", ["m3@b"])
    over = _apply(over, "roles", "planner", None)
    assert [str(r) for r in BASE.with_overrides(over).for_role("planner")] == ["m2"]
    over = _apply(over, "servers", "b", None)
    assert [s.name for s in BASE.with_overrides(over).servers] == ["a"]


def test_a_change_no_server_can_serve_is_refused() -> None:
    over = _apply(FleetOverrides(), "servers", "b", {"url": "http://b", "models": ["m3"]})
    over = _apply(over, "roles", "planner", ["m3@b"])
    with pytest.raises(OpenAIError) as removed:
        _apply(over, "servers", "b", None)  # the planner's model would be served by nobody
    assert removed.value.status == 400 and "planner" in removed.value.message
    with pytest.raises(OpenAIError):
        _apply(FleetOverrides(), "roles", "judge", ["nowhere@zz"])
    with pytest.raises(OpenAIError):
        _apply(FleetOverrides(), "servers", "a", None)  # no server left
    with pytest.raises(OpenAIError):
        _apply(FleetOverrides(), "servers", "b", {"url": "http://b", "api": "smtp"})


def test_profiles_by_name() -> None:
    defaults = [ClientProfile(name="claude-code", user_agents=["claude-cli/*"])]
    over = FleetOverrides(profiles={"claude-code": None, "ide": ClientProfile(name="ide", max_tokens=100)})
    assert [p.name for p in merged_profiles(defaults, over)] == ["ide"]
    with pytest.raises(OpenAIError):
        plan(ChangeIn(section="profiles", name="x", value={"mode": "no-such-mode"}), BASE, defaults, over)
