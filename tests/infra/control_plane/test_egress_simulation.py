"""A candidate egress module tried by the real OPA (`opa eval` over the modules in force, in a scratch directory) on
recorded egress decisions, then pushed to a running OPA behind a token (as the chart runs it): only the decisions
whose outcome the candidate changes are listed; the same policy changes nothing; bad Rego or another package is
refused with OPA's own message; simulating loads nothing into the running OPA; the push replaces the egress module,
bumps the version and the planner's gate (with MOE_OPA_TOKEN) decides under it. No fleet: cheap."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from control_plane.policy.egress_simulation import EvalError, egress_module, recorded_decisions, simulate
from moe_core.policy import PolicyClient
from moe_core.policy.egress import EgressPolicy, Target
from tests.support import opa

pytestmark = pytest.mark.infra
TOKEN = secrets.token_urlsafe(32)
RULE = "personal-not-on-b"


def _decision(role: str, server: str, sovereignty: str, outcome: str = "allow") -> dict[str, Any]:
    return {"role": role, "kind": "model", "server": server, "model": "m", "region": "eu", "sovereignty": sovereignty,
            "reach": "", "outcome": outcome, "rule": "recorded"}


def _record(data_class: str) -> dict[str, Any]:
    """An egress record's details, as moe_core.policy.egress.egress_record writes them."""
    return {"data_class": data_class, "decisions": [
        _decision("planner", "a", "on_premises"), _decision("expert:general", "b", "sovereign_cloud"),
        {"role": "research", "kind": "research", "server": "", "model": "", "region": "", "sovereignty": "",
         "reach": "", "outcome": "allow" if data_class == "internal" else "deny", "rule": "recorded"}],
        "tools": {"allow": ["math"], "allow_by_reach": {"fleet": ["math"]},
                  "deny": [] if data_class == "internal" else [
                      {"tool": "web_fetch", "reach": "external", "rule": "recorded"}]}}


def _candidate(text: str) -> str:
    first = f'\t{{"id": "{RULE}", "classes": {{"personal"}}, "kinds": {{"model"}}, "where": "not_b"}},\n'
    return text.replace("rules := [\n", "rules := [\n" + first, 1) + '\nmeets("not_b") if input.server.name != "b"\n'


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[PolicyClient]:
    with opa.private_engine(tmp_path, token=TOKEN) as running:
        client = PolicyClient(running.url, token=TOKEN)
        try:
            yield client
        finally:
            await client.close()


async def test_only_the_changed_decisions_are_listed_and_nothing_is_loaded(
        client: PolicyClient) -> None:
    modules, before = await client.modules(), await client.version()
    egress = modules[egress_module(modules)]
    recorded = recorded_decisions("r-int", "t1", _record("internal")) + recorded_decisions("r-per", "t1",
                                                                                         _record("personal"))
    assert len(recorded) == 9  # three decisions and the allowed tool each, and the personal one's denied tool
    result = await simulate(opa.binary(), modules, _candidate(egress), recorded)
    assert result.changed == [{"response_id": "r-per", "tenant_id": "t1", "data_class": "personal",
                               "target": "expert:general b/m", "recorded": "allow",
                               "before": {"outcome": "allow", "rule": "protected-data-sovereign-only"},
                               "after": {"outcome": "deny", "rule": RULE}}]
    assert result.counts() == {"requests": 2, "decisions": 9, "changed": 1, "to_deny": 1, "to_allow": 0,
                               "requests_changed": 1, "not_redecided": 0}
    assert (await simulate(opa.binary(), modules, egress, recorded)).changed == []
    assert await client.version() == before, "simulating loads nothing into the running OPA"


async def test_bad_rego_and_another_package_are_refused_with_opas_message(
        client: PolicyClient) -> None:
    modules = await client.modules()
    recorded = recorded_decisions("r", "t1", _record("personal"))
    with pytest.raises(EvalError, match="line"):
        await simulate(opa.binary(), modules, "package moe.egress\n\nrules := [\n", recorded)
    with pytest.raises(EvalError, match=r"package moe\.egress"):
        await simulate(opa.binary(), modules, "package moe.other\n\nx := 1\n", recorded)
    with pytest.raises(EvalError, match="undefined"):
        await simulate(opa.binary(), modules, "package moe.egress\n\nx := 1\n", recorded)


async def test_the_pushed_candidate_is_in_force_and_the_gate_decides_under_it(
        client: PolicyClient) -> None:
    modules, before = await client.modules(), await client.version()
    module_id = egress_module(modules)
    after = await client.put_module(module_id, _candidate(modules[module_id]))
    assert after != before and after.modules == before.modules  # the same module replaced, a new version
    policy = EgressPolicy(PolicyClient(client.url, token=TOKEN), check_s=0.01)
    try:
        version, [decision] = await policy.decide("personal", [Target("expert:general", "model", "b", "m", "eu",
                                                                      "sovereign_cloud")])
        assert version == after and not decision.allowed and decision.rule == RULE
    finally:
        await policy.client.close()
