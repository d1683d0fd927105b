"""Data classes at request time (issue 50): a request's class is the highest of its tenant's, key's, template's and
the client's header (never lowered by the client); an inference call keeps to its request's egress decision (the
scripted servers prove which one was called, and that none was when nothing is permitted); the targets a request
could reach and the roles it cannot do without."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import ValidationError
from starlette.datastructures import Headers

from moe_core.contracts import ChatMessage, ChatRequest, ToolTask, deadline_in
from moe_core.contracts.tools import select_tools, tool_reach
from moe_core.llm.egress_targets import REQUIRED, missing, permitted, targets
from moe_core.llm.inference import InferenceClient, InferenceConfig, InferenceError, ModelRef
from moe_core.llm.templates import REPO
from moe_core.policy.classes import ClassBook, ClassFile, ClassFileError, declared_class, load
from moe_core.policy.egress import CACHE, RESEARCH, EgressDecision, Target, may_cache, may_use_tool, tool_refused_record
from moe_core.runtime import replay
from moe_core.runtime.openai_error import OpenAIError
from moe_core.runtime.settings import FleetSettings
from tests.conftest import FLEET_MODEL, Scripted

pytestmark = pytest.mark.unit
POLICY = (REPO / "policy" / "data-classes.yaml").read_text()


def _book(**sections: dict[str, str]) -> ClassBook:
    text = POLICY
    for name, mapping in sections.items():
        text = text.replace(f"\n{name}: {{}}", f"\n{name}: {json.dumps(mapping)}")
    return ClassBook.model_validate(yaml.safe_load(text))


def test_the_class_is_the_highest_of_tenant_template_key_and_header() -> None:
    book = _book(tenants={"clinic": "personal"}, keys={"k-vs": "classified"}, templates={"vs": "classified"})
    assert book.of_request("acme", None, None).name == "internal"  # default_class
    assert book.of_request("clinic", None, None).because == {"tenant": "personal"}
    assert book.of_request("acme", "vs", None).because == {"template": "classified"}
    # a client names a lower class than its tenant's: the tenant's stands (never lowered)
    assert declared_class(book, None, {"x-moe-data-class": "public"}) == "public"
    assert book.of_request("clinic", None, "public").name == "personal"
    # ... and a higher one raises it
    raised = declared_class(book, None, Headers({"X-MOE-Data-Class": "Personal"}))
    assert book.of_request("acme", None, raised).name == "personal"
    assert declared_class(book, "k-vs", {"x-moe-data-class": "personal"}) == "classified"  # the key's is higher
    assert declared_class(book, "other", {}) is None
    # the class set on the key in the admin API raises it too; one the file no longer names is the highest
    assert declared_class(book, "other", {"x-moe-data-class": "public"}, "personal") == "personal"
    assert declared_class(book, "other", {}, "retired-class") == "classified"


def test_an_unknown_class_in_the_header_is_the_apis_400_and_in_the_file_refused() -> None:
    with pytest.raises(OpenAIError) as caught:
        declared_class(_book(), None, {"x-moe-data-class": "top-secret"})
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, "invalid_data_class",
                                                                            "x-moe-data-class")
    with pytest.raises(ValidationError, match=r"tenants\.clinic: unknown class 'secret'"):
        _book(tenants={"clinic": "secret"})


def test_a_file_that_does_not_parse_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "classes.yaml"
    path.write_text(POLICY.replace("tenants: {}", "tenants: {clinic: secret}"))
    with pytest.raises(ClassFileError, match=r"classes\.yaml: .*unknown class 'secret'"):
        load(path)


def test_a_broken_change_of_the_file_keeps_the_previous_classes(tmp_path: Path) -> None:
    path = tmp_path / "classes.yaml"
    path.write_text(POLICY.replace("tenants: {}", "tenants: {clinic: personal}"))
    held = ClassFile(path)
    path.write_text(POLICY.replace("tenants: {}", "tenants: {clinic: nope}") + "\n# changed\n")
    assert held.current().of_tenant("clinic") == "personal"


def _config(scripted_a: str, scripted_b: str) -> InferenceConfig:
    """scripted-b first (the fleet would choose it), both serving FLEET_MODEL; only "scripted" is sovereign."""
    servers = [{"name": "scripted-b", "url": scripted_b, "models": [FLEET_MODEL], "max_retries": 0},
               {"name": "scripted", "url": scripted_a, "models": [FLEET_MODEL, "planner-model", "judge-model",
                                                                    "expert-model"],
                "sovereignty": "sovereign_cloud", "region": "eu-de", "max_retries": 0}]
    return InferenceConfig.from_settings(FleetSettings(
        inference_servers=json.dumps(servers),
        model_assignments=json.dumps({"planner": ["planner-model"], "judge": ["judge-model"],
                                      "default": ["expert-model"]}),
        expert_templates=json.dumps({"general": ["expert-model"], "translation": [FLEET_MODEL]})))


def _request(egress: list[str] | None) -> ChatRequest:
    return ChatRequest(response_id="r-egress", tenant_id="t", deadline_at=deadline_in(30), mode="default",
                       messages=[ChatMessage(role="user", content="hi")], egress=egress)


async def _call(client: InferenceClient, egress: list[str] | None) -> str:
    with replay.run_scope("expert-worker", _request(egress)):
        # a floating model: any server that serves it
        done = await client.chat([ModelRef(model=FLEET_MODEL)], [{"role": "user", "content": "x"}])
    return done.server


async def test_a_call_goes_only_where_its_request_may_go(scripted_server: Scripted,
                                                         scripted_server_b: Scripted) -> None:
    scripted_server.script([], default_reply="from a")
    scripted_server_b.script([], default_reply="from b")
    client = InferenceClient(_config(scripted_server.url, scripted_server_b.url), httpx.AsyncClient(timeout=10))
    try:
        assert await _call(client, None) == "scripted-b"  # no decision: the configuration's first
        assert await _call(client, [f"scripted/{FLEET_MODEL}"]) == "scripted"
        assert len(scripted_server_b.calls()) == 1 and len(scripted_server.calls()) == 1
        with pytest.raises(InferenceError) as caught:
            await _call(client, ["scripted/judge-model"])  # nothing that serves the call is permitted
        assert caught.value.kind == "data_class_forbidden" and not caught.value.retryable
        assert len(scripted_server_b.calls()) == 1 and len(scripted_server.calls()) == 1  # nothing was sent
    finally:
        await client.aclose()


def test_targets_list_every_role_on_every_server_research_the_cache_and_the_tools() -> None:
    config = _config("http://a", "http://b")
    found = targets(config, None, tool_reach(["calculate", "timezone_convert"], "timezone_convert"))
    assert Target("expert:translation", "model", "scripted-b", FLEET_MODEL) in found
    assert Target("planner", "model", "scripted", "planner-model", "eu-de", "sovereign_cloud") in found
    assert found[-4:] == [Target(RESEARCH, RESEARCH), Target(CACHE, CACHE),
                          Target("tool", "tool", "calculate", reach="fleet"),
                          Target("tool", "tool", "timezone_convert", reach="external")]
    assert [t.egress for t in found[-4:]] == ["research", "cache", "tool:calculate", "tool:timezone_convert"]
    with pytest.raises(ValueError, match=r"unknown tool name.*MOE_TOOLS_EXTERNAL: web_fetch"):
        tool_reach(["calculate"], "web_fetch")
    sovereign = [EgressDecision(t, t.sovereignty == "sovereign_cloud", "protected-data-sovereign-only", "")
                 for t in found]
    assert missing(sovereign) == []
    assert f"scripted-b/{FLEET_MODEL}" not in permitted(sovereign)
    assert f"scripted/{FLEET_MODEL}" in permitted(sovereign) and RESEARCH not in permitted(sovereign)
    nothing = [EgressDecision(t, False, "classified-on-premises-only", "no") for t in found]
    assert missing(nothing) == list(REQUIRED)


def test_a_model_assigned_only_to_a_learning_role_is_decided_and_permitted_with_the_request() -> None:
    """graph-ingest's and gap-healer's calls follow the answer under the request's decision: a model of their
    own (MODEL_ASSIGNMENTS `ingest`, `gap_healer`, or any role named there) is among the targets, so a permitted
    one is in Envelope.egress (it was not: every extraction was refused as data_class_forbidden)."""
    config = InferenceConfig.from_settings(FleetSettings(
        inference_servers=json.dumps([{"name": "s", "url": "http://s", "models": ["p", "j", "e", "x", "g"]}]),
        model_assignments=json.dumps({"planner": ["p"], "judge": ["j"], "default": ["e"], "ingest": ["x"],
                                      "gap_healer": ["g"]})))
    found = targets(config, None)
    assert {("ingest", "x"), ("gap_healer", "g")} <= {(t.role, t.model) for t in found}
    decided = [EgressDecision(t, True, "", "") for t in found]
    assert {"s/x", "s/g"} <= set(permitted(decided))
    assert "s/x" not in permitted([d for d in decided if d.target.role != "ingest"])  # as before the fix


def test_an_answer_may_enter_the_shared_cache_only_when_its_egress_decision_says_so() -> None:
    request = ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(9), mode="default",
                          messages=[ChatMessage(role="user", content="hi")])
    assert may_cache(request)  # no decision (no data-class policy in force): as before
    assert may_cache(request.model_copy(update={"egress": ["cache", "s/m"]}))
    assert not may_cache(request.model_copy(update={"egress": ["s/m", "tool:calculate"]}))


def test_a_tool_task_its_egress_does_not_name_is_not_run_and_its_refusal_is_recorded() -> None:
    from mcp_service import core  # the mcp stage's pure logic (the stage on the real fleet: tests/e2e)

    task = ToolTask(response_id="r", tenant_id="t", deadline_at=deadline_in(9), task_id="t1", tool="number_words",
                    args={"value": 12}, data_class="personal", egress=["s/m", "tool:calculate"])
    result = core.forbidden_result(task)
    assert core.refused(result) and result.error is not None and result.error.startswith("data_class_forbidden")
    assert result.content == "" and result.confidence == "low"
    record = tool_refused_record(task, task.tool)
    assert (record.action, record.actor, record.subject) == ("egress.tool_refused", "service:mcp",
                                                            "tool:number_words")
    assert record.details["permitted_tools"] == ["calculate"] and record.details["data_class"] == "personal"
    assert not core.refused(core.expired_result(task))


def test_the_tools_travel_compactly_and_messages_of_the_older_form_read_as_written() -> None:
    names = list(select_tools())
    decisions = [EgressDecision(Target("tool", "tool", n, reach="external" if n == "number_words" else "fleet"),
                                n != "number_words", "protected-data-fleet-tools-only", "") for n in names]
    compact = permitted(decisions)
    assert compact == ["no-tool:number_words", "tool:*"]
    older = sorted(f"tool:{n}" for n in names if n != "number_words")  # one entry per permitted tool, as written before
    assert len(json.dumps(compact)) < 40 and len(json.dumps(older)) > 500
    for form in (compact, older):  # a message already on a topic is read as it was written
        assert may_use_tool(form, "calculate") and not may_use_tool(form, "number_words")
    assert not may_use_tool(["s/m"], "calculate")  # the tools not decided at all: denied (fail closed)
    assert may_use_tool(None, "number_words")  # no decision (no data-class policy in force): as before
    task = ToolTask(response_id="r", tenant_id="t", deadline_at=deadline_in(9), task_id="t1", tool="number_words",
                    args={"value": 12}, data_class="personal", egress=["s/m", *compact])
    record = tool_refused_record(task, task.tool)
    assert record.details["denied_tools"] == ["number_words"] and record.details["tools_decided"] is True


def test_mcp_refuses_a_chain_one_of_whose_steps_its_class_may_not_use() -> None:
    from mcp_service import core

    steps = [{"tool": "calculate", "args": {"expression": "1+1"}}, {"tool": "number_words", "args": {"value": "$prev"}}]
    task = ToolTask(response_id="r", tenant_id="t", deadline_at=deadline_in(9), task_id="t1", tool="chain",
                    args={"steps": steps}, data_class="personal", egress=["tool:*", "no-tool:number_words"])
    assert core.refused_tool(task) == "number_words"
    result = core.forbidden_result(task, "number_words")
    assert core.refused(result) and "number_words" in (result.error or "")
    assert core.refused_tool(task.model_copy(update={"egress": ["tool:*"]})) is None
