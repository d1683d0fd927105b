"""Egress decisions on a real Open Policy Agent (a private `opa run --watch` over a copy of policy/opa): the planner's
gate decides a request's class against the servers it could reach, refuses it with the API's error and an egress
record naming class, server, model, region, outcome, rule and policy version; the decisions are cached per policy
version (no OPA round trip for a repeat) and a changed policy is in force once its version is read again; the
planner does not start when a tenant's class has no permitted server for a required role."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.llm.inference import InferenceConfig
from moe_core.policy import PolicyClient
from moe_core.policy.egress import PATH, EgressPolicy, Target, egress_record, may_use_tool
from moe_core.runtime.run_clock import RUN_POLICIES
from moe_core.runtime.run_versions import run_policies
from planner.egress_gate import EgressGate, EgressRefusedAtStart
from planner.settings import PlannerSettings
from tests.support import opa

pytestmark = pytest.mark.infra
REPO = Path(__file__).resolve().parents[3]
SERVERS = [{"name": "us-api", "url": "http://us", "models": ["big"], "region": "us-east", "sovereignty": "public"},
           {"name": "eu-cloud", "url": "http://eu", "models": ["small", "big"], "region": "eu-de",
            "sovereignty": "sovereign_cloud"}]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[opa.Engine]:
    with opa.private_engine(tmp_path_factory.mktemp("egress")) as running:
        yield running


def _settings(engine: opa.Engine, classes: Path, **more: object) -> PlannerSettings:
    return PlannerSettings(opa_url=engine.url, data_classes_file=classes, inference_servers=json.dumps(SERVERS),
                           model_assignments=json.dumps({"planner": ["big"], "judge": ["big"], "default": ["big"]}),
                           expert_templates=json.dumps({"general": ["big"], "translation": ["small"]}), **more)


def _classes(tmp_path: Path, tenants: str = "{}") -> Path:
    path = tmp_path / "data-classes.yaml"
    path.write_text((REPO / "policy" / "data-classes.yaml").read_text().replace("tenants: {}", f"tenants: {tenants}"))
    return path


def _request(tenant: str, declared: str | None = None) -> ChatRequest:
    return ChatRequest(response_id="r-1", tenant_id=tenant, deadline_at=deadline_in(30), mode="default",
                       messages=[ChatMessage(role="user", content="hi")], data_class=declared)


async def test_a_class_with_no_permitted_server_is_refused_with_its_egress_record(engine: opa.Engine,
                                                                                  tmp_path: Path) -> None:
    settings = _settings(engine, _classes(tmp_path))
    gate = EgressGate(settings, InferenceConfig.from_settings(settings))
    try:
        gated = await gate.check(_request("acme", "classified"))
    finally:
        await gate.close()
    assert gated.refusal is not None and gated.refusal.error is not None
    assert gated.refusal.error.code == "data_class_forbidden"
    assert "classified data may not be sent" in gated.refusal.error.message
    assert "us-api" not in gated.refusal.error.message  # the client's message names no server of the fleet
    assert gated.record is not None and gated.record.action == "egress.refused"
    details = gated.record.details
    assert details["data_class"] == "classified" and details["class_from"] == {"declared": "classified"}
    assert details["policy_version"].startswith("sha256:") and details["outcome"] == "deny"
    planner = [d for d in details["decisions"] if d["role"] == "planner"]
    assert {(d["server"], d["model"], d["region"], d["outcome"], d["rule"]) for d in planner} == {
        ("us-api", "big", "us-east", "deny", "classified-on-premises-only"),
        ("eu-cloud", "big", "eu-de", "deny", "classified-on-premises-only")}


async def test_a_personal_request_may_reach_only_the_sovereign_server(engine: opa.Engine, tmp_path: Path) -> None:
    settings = _settings(engine, _classes(tmp_path, "{clinic: personal}"))
    gate = EgressGate(settings, InferenceConfig.from_settings(settings))
    try:
        gated = await gate.check(_request("clinic", "public"))  # the client cannot lower its tenant's class
    finally:
        await gate.close()
    assert gated.refusal is None and gated.record is not None and gated.record.action == "egress.decided"
    assert gated.request.data_class == "personal"
    assert gated.request.egress == ["eu-cloud/big", "eu-cloud/small"]  # no us-api, no web research
    assert gated.record.details["class_from"] == {"tenant": "personal"}


async def test_decisions_are_cached_per_policy_version(engine: opa.Engine) -> None:
    policy = EgressPolicy(PolicyClient(engine.url), check_s=0.0)
    target = Target("planner", "model", "us-api", "big", "us-east", "public")
    try:
        version, [first] = await policy.decide("internal", [target])
        asked = policy.asked
        for _ in range(3):  # the same decision again: no decision asked of OPA
            again_version, [again] = await policy.decide("internal", [target])
        assert policy.asked == asked and again == first and again_version == version and first.allowed
        rules = engine.policy_dir / "egress.rego"
        original = rules.read_text()
        rules.write_text(original.replace('"classes": {"public", "internal"}', '"classes": {"public"}'))
        try:
            for _ in range(100):  # OPA reloads the changed file (--watch); the next version read sees it
                changed, [now] = await policy.decide("internal", [target])
                if changed != version:
                    break
                await asyncio.sleep(0.1)
            assert changed != version and not now.allowed and now.rule == "no-rule-for-class"
            assert policy.asked == asked + 1
        finally:
            rules.write_text(original)
    finally:
        await policy.client.close()


async def test_a_stage_run_answered_from_the_cached_decision_names_the_policy_version_too(engine: opa.Engine) -> None:
    """A replayed request's plan compares the policies each run decided under: a run whose decisions all came from
    the cache decided under the version in force as much as the first one that asked OPA."""
    policy = EgressPolicy(PolicyClient(engine.url), check_s=60.0)
    target = Target("planner", "model", "us-api", "big", "us-east", "public")
    try:
        named = []
        for _ in range(2):  # the first run asks OPA, the second is answered from the cache
            token = RUN_POLICIES.set({})
            try:
                version, _ = await policy.decide("internal", [target])
                named.append(run_policies())
            finally:
                RUN_POLICIES.reset(token)
        assert policy.asked == 1
        assert named == [{PATH: version.digest}, {PATH: version.digest}]
    finally:
        await policy.client.close()


async def test_the_planner_does_not_start_when_a_tenants_class_has_no_permitted_server(engine: opa.Engine,
                                                                                        tmp_path: Path) -> None:
    settings = _settings(engine, _classes(tmp_path, "{vsnfd: classified, clinic: personal}"))
    message = await _refused_at_start(settings)
    assert "tenant vsnfd: class classified has no permitted server for role planner" in message
    assert "role judge" in message and "clinic" not in message  # personal data has its sovereign server
    ok = _settings(engine, _classes(tmp_path, "{clinic: personal}"))
    fine = EgressGate(ok, InferenceConfig.from_settings(ok))
    try:
        await fine.check_start()
    finally:
        await fine.close()


async def test_a_protected_answer_is_kept_for_nobody_and_its_tasks_use_only_the_fleets_tools(
        engine: opa.Engine, tmp_path: Path) -> None:
    # timezone_convert declared as reaching outside the fleet (as an operator's changed tool would)
    settings = _settings(engine, _classes(tmp_path, "{clinic: personal}"), tools_external="timezone_convert")
    gate = EgressGate(settings, InferenceConfig.from_settings(settings), ["calculate", "timezone_convert"])
    try:
        open_data = await gate.check(_request("acme"))
        personal = await gate.check(_request("clinic"))
    finally:
        await gate.close()
    assert open_data.request.egress is not None and personal.request.egress is not None
    # the tools compactly: decided (`tool:*`), the denied ones named; the record lists both in full (below)
    assert {"cache", "tool:*"} <= set(open_data.request.egress)
    assert not [e for e in open_data.request.egress if e.startswith(("tool:c", "tool:t", "no-tool:"))]
    assert "cache" not in personal.request.egress and "no-tool:timezone_convert" in personal.request.egress
    assert may_use_tool(personal.request.egress, "calculate")  # computed within the fleet: any class may use it
    assert not may_use_tool(personal.request.egress, "timezone_convert")
    assert personal.record is not None
    details = personal.record.details
    [cache] = [d for d in details["decisions"] if d["kind"] == "cache"]
    assert (cache["outcome"], cache["rule"]) == ("deny", "no-shared-cache-for-protected-data")
    assert details["tools"] == {"allow": ["calculate"], "allow_by_reach": {"fleet": ["calculate"]}, "deny": [
        {"tool": "timezone_convert", "reach": "external", "rule": "protected-data-fleet-tools-only"}]}
    assert open_data.record is not None and open_data.record.details["tools"]["allow_by_reach"] == {
        "fleet": ["calculate"], "external": ["timezone_convert"]}


async def test_the_planner_does_not_start_when_a_named_templates_class_has_no_permitted_server(
        engine: opa.Engine, tmp_path: Path) -> None:
    templates = tmp_path / "templates.yaml"
    templates.write_text("version: 1\ntemplates:\n  us-only:\n    experts: {general: [big@us-api]}\n"
                         "    planner: [big@us-api]\n    judge: [big@us-api]\n")
    classes = _classes(tmp_path)
    settings = _settings(engine, classes, expert_templates_file=str(templates))
    fine = EgressGate(settings, InferenceConfig.from_settings(settings))
    try:
        await fine.check_start()  # internal data may go to us-api
    finally:
        await fine.close()
    classes.write_text(classes.read_text().replace("templates: {}", "templates: {us-only: personal}"))
    message = await _refused_at_start(settings)
    assert "template us-only: class personal has no permitted server for role planner" in message
    assert "tenant" not in message  # every tenant's own class has its servers


async def test_a_tenant_whose_class_a_named_template_cannot_serve_refuses_the_start_unless_allowed(
        engine: opa.Engine, tmp_path: Path) -> None:
    templates = tmp_path / "templates.yaml"
    templates.write_text("version: 1\ntemplates:\n  us-only:\n    experts: {general: [big@us-api]}\n"
                         "    planner: [big@us-api]\n    judge: [big@us-api]\n")
    settings = _settings(engine, _classes(tmp_path, "{clinic: personal}"), expert_templates_file=str(templates))
    message = await _refused_at_start(settings)  # a bank's operator expects to hear it at start, not per request
    assert "tenant clinic: class personal cannot use template us-only: no permitted server for role planner" \
        in message and "role judge" in message
    assert "template us-only: class" not in message  # the template's own class (internal) is served
    allowed = settings.model_copy(update={"egress_allow_unserved_templates": True})  # the operator's explicit choice
    gate = EgressGate(allowed, InferenceConfig.from_settings(allowed))
    try:
        await gate.check_start()
        refused = await gate.check(_request("clinic").model_copy(update={"template": "us-only"}))
        served = await gate.check(_request("acme").model_copy(update={"template": "us-only"}))
    finally:
        await gate.close()
    assert refused.refusal is not None and refused.refusal.error is not None
    assert refused.refusal.error.code == "data_class_forbidden"  # its requests with the template: 403, nothing sent
    assert served.refusal is None


async def _refused_at_start(settings: PlannerSettings) -> str:
    """Why the planner's egress gate refuses to start with `settings` (the test fails if it starts)."""
    gate = EgressGate(settings, InferenceConfig.from_settings(settings))
    try:
        with pytest.raises(EgressRefusedAtStart) as refused:
            await gate.check_start()
    finally:
        await gate.close()
    return str(refused.value)


async def test_the_kept_egress_outcome_follows_a_changed_policy(engine: opa.Engine, tmp_path: Path) -> None:
    """The gate keeps what requests of one class and template share (issue 52), but never past a change of the
    decisions: after the policy denies web research, the next request's egress and record say so, exactly as
    a record made afresh from its decisions."""
    settings = _settings(engine, _classes(tmp_path), egress_check_s=0.01)
    gate = EgressGate(settings, InferenceConfig.from_settings(settings))
    rules = engine.policy_dir / "egress.rego"
    original = rules.read_text()
    try:
        first, again = await gate.check(_request("acme")), await gate.check(_request("acme"))
        assert first.record is not None and again.record is not None and first.record.details == again.record.details
        assert first.request.egress is not None and "research" in first.request.egress
        assert first.request.egress == again.request.egress
        rules.write_text(original.replace('"classes": {"public", "internal"}, "kinds": {"model", "research", ',
                                          '"classes": {"public", "internal"}, "kinds": {"model", '))
        for _ in range(100):  # OPA reloads the changed file (--watch); the gate reads the version again
            await asyncio.sleep(0.1)
            changed = await gate.check(_request("acme"))
            assert changed.record is not None
            if changed.record.details["policy_version"] != first.record.details["policy_version"]:
                break
        assert changed.request.egress is not None and "research" not in changed.request.egress
        assert "us-api/big" in changed.request.egress
        version, decisions = await gate.policy.decide("internal", gate._reach(None))
        afresh = egress_record(changed.request, "internal", {"default": "internal"}, version, decisions, None)
        assert changed.record.details == {**afresh.details, "class_from": changed.record.details["class_from"]}
        assert changed.record.details["left_out_of_plan"] == ["research"]
    finally:
        rules.write_text(original)
        await gate.close()
