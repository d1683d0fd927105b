"""A candidate egress policy that would deny a tool the policy in force allows (issue 50), simulated by the real OPA
over the egress records the planner's own egress gate writes: the record keeps each allowed tool's reach
(`tools.allow_by_reach`), so the simulation rebuilds what the gate asked OPA and shows that tool allow -> deny. A
record written before the reach was recorded names its allowed tools only: they are counted as not decided again,
per tenant too, and never listed as changed or unchanged. No fleet: cheap."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control_plane.policy.egress_simulation import NO_REACH, egress_module, recorded_decisions, simulate
from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.llm.inference import InferenceConfig
from moe_core.policy import PolicyClient
from planner.egress_gate import EgressGate
from planner.settings import PlannerSettings
from tests.support import opa

pytestmark = pytest.mark.infra
REPO = Path(__file__).resolve().parents[3]
RULE = "personal-no-calculate"
SERVERS = [{"name": "eu-cloud", "url": "http://eu", "models": ["big"], "region": "eu-de",
            "sovereignty": "sovereign_cloud"}]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[opa.Engine]:
    with opa.private_engine(tmp_path_factory.mktemp("egress-tools")) as running:
        yield running


def _settings(engine: opa.Engine, tmp_path: Path) -> PlannerSettings:
    classes = tmp_path / "data-classes.yaml"
    classes.write_text((REPO / "policy" / "data-classes.yaml").read_text().replace(
        "tenants: {}", "tenants: {clinic: personal}"))
    return PlannerSettings(opa_url=engine.url, data_classes_file=classes, inference_servers=json.dumps(SERVERS),
                           model_assignments=json.dumps({"planner": ["big"], "judge": ["big"], "default": ["big"]}),
                           expert_templates=json.dumps({"general": ["big"]}), tools_external="timezone_convert")


async def _records(engine: opa.Engine, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """tenant -> the details of the egress record the planner's gate wrote for one request of it."""
    settings = _settings(engine, tmp_path)
    gate = EgressGate(settings, InferenceConfig.from_settings(settings), ["calculate", "timezone_convert"])
    out = {}
    try:
        for tenant in ("acme", "clinic"):
            gated = await gate.check(ChatRequest(response_id=f"r-{tenant}", tenant_id=tenant,
                                                 deadline_at=deadline_in(30), mode="default",
                                                 messages=[ChatMessage(role="user", content="hi")]))
            assert gated.record is not None
            out[tenant] = gated.record.details
    finally:
        await gate.close()
    return out


def _candidate(text: str) -> str:
    """The egress module with personal data kept from the fleet's `calculate` tool (its other fleet tools stay)."""
    first = f'\t{{"id": "{RULE}", "classes": {{"personal"}}, "kinds": {{"tool"}}, "where": "fleet_not_calculate"}},\n'
    meets = '\nmeets("fleet_not_calculate") if {\n\tinput.tool.reach == "fleet"\n\tinput.tool.name != "calculate"\n}\n'
    return text.replace("rules := [\n", "rules := [\n" + first, 1) + meets


async def test_a_candidate_denying_an_allowed_tool_shows_it_allow_to_deny(engine: opa.Engine, tmp_path: Path) -> None:
    records = await _records(engine, tmp_path)
    assert records["clinic"]["tools"]["allow_by_reach"] == {"fleet": ["calculate"]}
    assert records["acme"]["tools"]["allow_by_reach"] == {"external": ["timezone_convert"], "fleet": ["calculate"]}
    client = PolicyClient(engine.url)
    try:
        modules = await client.modules()
    finally:
        await client.close()
    candidate = _candidate(modules[egress_module(modules)])
    recorded = [r for tenant, details in records.items() for r in recorded_decisions(f"r-{tenant}", tenant, details)]
    assert {r.target for r in recorded if r.target.startswith("tool ")} == {"tool calculate", "tool timezone_convert"}
    result = await simulate(opa.binary(), modules, candidate, recorded)
    assert result.changed == [{"response_id": "r-clinic", "tenant_id": "clinic", "data_class": "personal",
                               "target": "tool calculate", "recorded": "allow",
                               "before": {"outcome": "allow", "rule": "protected-data-fleet-tools-only"},
                               "after": {"outcome": "deny", "rule": RULE}}]
    assert result.counts()["not_redecided"] == 0 and result.counts()["decisions"] == len(recorded)
    unchanged = await simulate(opa.binary(), modules, modules[egress_module(modules)], recorded)
    assert unchanged.changed == [], "the policy in force decides each rebuilt input as it was recorded"


async def test_an_older_record_says_its_allowed_tools_were_not_decided_again(engine: opa.Engine,
                                                                              tmp_path: Path) -> None:
    records = await _records(engine, tmp_path)
    older = copy.deepcopy(records["clinic"])
    del older["tools"]["allow_by_reach"]  # as the planner wrote it before the reach was recorded
    client = PolicyClient(engine.url)
    try:
        modules = await client.modules()
    finally:
        await client.close()
    recorded = recorded_decisions("r-old", "clinic", older)
    result = await simulate(opa.binary(), modules, _candidate(modules[egress_module(modules)]), recorded)
    assert result.changed == [], "an allowed tool without its reach is not guessed at"
    assert result.not_redecided == [{"response_id": "r-old", "tenant_id": "clinic", "data_class": "personal",
                                     "target": "tool calculate", "recorded": "allow", "why": NO_REACH}]
    counts = result.counts()
    assert counts["not_redecided"] == 1 and counts["decisions"] == len(recorded) - 1
    assert result.per_tenant() == {"clinic": {"changed": 0, "to_deny": 0, "to_allow": 0, "not_redecided": 1}}
    denied = [r for r in recorded if r.target == "tool timezone_convert"]
    assert [r.input["tool"] for r in denied] == [{"name": "timezone_convert", "reach": "external"}]
