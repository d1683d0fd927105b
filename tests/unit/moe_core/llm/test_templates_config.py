"""Named expert templates: the file's checks at start-up, what a template changes in the models a stage
picks (and what falls back), and how the gateway reads a template from a request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import template_select
from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.llm.exact_cache import cache_scope
from moe_core.llm.inference import InferenceConfig, InferenceError
from moe_core.llm.model_map import resolve
from moe_core.llm.templates import DEFAULT_FILE, REPO, TemplateError, load_templates
from moe_core.runtime.openai_error import OpenAIError
from moe_core.runtime.settings import FleetSettings
from moe_core.runtime.stores import redis_client

pytestmark = pytest.mark.unit
SERVERS = [{"name": "gpu1", "url": "http://gpu1", "models": ["big", "mid"]},
           {"name": "cpu", "url": "http://cpu", "models": ["small", "mid"]}]
GOOD = """
version: 1
templates:
  small:
    description: fast answers
    planner: [small]
    judge: [mid@cpu]
    experts:
      general: [small]
      math: [mid, {model: big, endpoint: gpu1, tier: 2}]
  judge-only:
    judge: [big@gpu1]
"""


def settings(tmp_path: Path, text: str | None) -> FleetSettings:
    path = tmp_path / "templates.yaml"
    if text is not None:
        path.write_text(text)
    return FleetSettings(inference_servers=json.dumps(SERVERS), expert_templates_file=str(path),
                         model_assignments=json.dumps({"planner": ["mid"], "judge": ["big"], "default": ["mid"],
                                                       "thinking": ["small"]}),
                         expert_templates=json.dumps({"math": ["big"], "code_reviewer": ["big@gpu1"]}))


def broken(tmp_path: Path, body: str) -> str:
    with pytest.raises(TemplateError) as err:
        InferenceConfig.from_settings(settings(tmp_path, f"version: 1\ntemplates:\n{body}"))
    return str(err.value)


def test_a_template_chooses_the_models_of_planner_experts_and_judge(tmp_path: Path) -> None:
    config = InferenceConfig.from_settings(settings(tmp_path, GOOD))
    assert sorted(config.templates) == ["judge-only", "small"]
    assert [str(r) for r in config.for_role("planner", "small")] == ["small"]
    assert [str(r) for r in config.for_role("judge", "small", fallback="judge")] == ["mid@cpu"]
    math = config.for_expert("math", "small")
    assert [(r.model, r.server, r.tier) for r in math] == [("mid", None, 1), ("big", "gpu1", 2)]
    assert [str(r) for r in config.for_expert("legal_advisor", "small")] == ["small"]  # the template's general
    # without a template: the global assignments, unchanged
    assert [str(r) for r in config.for_role("planner")] == ["mid"]
    assert [str(r) for r in config.for_expert("math")] == ["big"]


def test_what_a_template_leaves_out_falls_back(tmp_path: Path) -> None:
    config = InferenceConfig.from_settings(settings(tmp_path, GOOD))
    assert [str(r) for r in config.for_role("planner", "judge-only")] == ["mid"]  # the global planner
    assert [str(r) for r in config.for_expert("code_reviewer", "judge-only")] == ["big@gpu1"]  # no experts
    # thinking: the template's judge before the global thinking model (the template replaces the judge's models)
    assert [str(r) for r in config.for_role("thinking", "judge-only", fallback="judge")] == ["big@gpu1"]
    assert [str(r) for r in config.for_role("thinking", None, fallback="judge")] == ["small"]


def test_a_templates_vision_models_see_the_images(tmp_path: Path) -> None:
    servers = [{**SERVERS[0], "vision_models": ["big", "mid"]}, SERVERS[1]]
    text = "version: 1\ntemplates:\n  eyes:\n    experts: {vision: [mid@gpu1]}\n"
    config = InferenceConfig.from_settings(FleetSettings(inference_servers=json.dumps(servers),
                                                         expert_templates=json.dumps({"vision": ["big"]}),
                                                         named_templates=text))
    assert [str(r) for r in config.vision_refs("eyes")] == ["mid@gpu1"]
    assert [str(r) for r in config.vision_refs()] == ["big@gpu1"]


def test_a_stage_that_does_not_know_the_template_fails_its_model_lookup_clearly(tmp_path: Path) -> None:
    config = InferenceConfig.from_settings(settings(tmp_path, GOOD))
    with pytest.raises(InferenceError) as err:
        config.for_expert("math", "large")
    assert err.value.kind == "unknown_template" and not err.value.retryable
    assert "'large'" in str(err.value) and "known: small, judge-only" in str(err.value)


@pytest.mark.parametrize(("body", "expected"), [
    ("  a:\n    experts: {astrology: [small]}\n", "experts.astrology: unknown category 'astrology'"),
    ("  a:\n    experts: {math: []}\n", "template 'a': experts.math: the model list is empty"),
    ("  a:\n    judge: []\n", "template 'a': judge: the model list is empty"),
    ("  a:\n    planner: [small@gpu9]\n", "planner: small@gpu9: unknown server 'gpu9' (servers: gpu1, cpu)"),
    ("  a:\n    experts: {math: [{model: big, endpoint: nowhere}]}\n", "unknown server 'nowhere'"),
    ("  a:\n    judge: [huge]\n", "judge: no configured server serves the model 'huge'"),
    ("  a:\n    description: nothing\n", "template 'a': names no models"),
    ("  Big Models:\n    judge: [big]\n", "template 'Big Models': a name is lower-case letters"),
    ("  a:\n    judges: [big]\n", "templates.a.judges: Extra inputs are not permitted"),
])
def test_an_invalid_template_stops_the_start_with_the_reason(tmp_path: Path, body: str, expected: str) -> None:
    assert expected in broken(tmp_path, body)


def test_every_problem_of_the_file_is_reported_at_once(tmp_path: Path) -> None:
    message = broken(tmp_path, "  a:\n    experts: {astrology: [small], math: []}\n  b:\n    judge: [x@y]\n")
    assert "astrology" in message and "experts.math: the model list is empty" in message and "'y'" in message


def test_an_unreadable_or_malformed_file_is_a_start_up_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read the file"):
        InferenceConfig.from_settings(settings(tmp_path, None))  # named explicitly but missing
    with pytest.raises(TemplateError, match="not valid YAML"):
        InferenceConfig.from_settings(settings(tmp_path, "version: 1\ntemplates: {a: [\n"))
    with pytest.raises(TemplateError, match="version"):
        InferenceConfig.from_settings(settings(tmp_path, "templates: {}\n"))


def test_the_shipped_file_is_valid_and_no_file_means_no_templates(tmp_path: Path) -> None:
    assert load_templates(str(DEFAULT_FILE), InferenceConfig.from_settings(FleetSettings()).servers) == {}
    assert (REPO / DEFAULT_FILE).exists()
    assert InferenceConfig.from_settings(FleetSettings(expert_templates_file="")).templates == {}


def test_the_files_text_may_come_from_the_environment(tmp_path: Path) -> None:
    base = settings(tmp_path, None)  # the file named does not exist: the text in the environment wins
    inline = FleetSettings(**{**base.model_dump(), "named_templates": GOOD})
    assert sorted(InferenceConfig.from_settings(inline).templates) == ["judge-only", "small"]
    broken_inline = FleetSettings(**{**base.model_dump(), "named_templates": "version: 1\ntemplates: {a: {judge: []}}"})
    with pytest.raises(TemplateError, match="MOE_NAMED_TEMPLATES: template 'a': judge: the model list is empty"):
        InferenceConfig.from_settings(broken_inline)


def test_model_ids_name_a_mode_and_a_template() -> None:
    model_map = {"claude-*": "moe-orchestrator", "exact@id": "moe-orchestrator-code"}
    assert resolve("moe-orchestrator@small", model_map) == ("moe-orchestrator", "moe-orchestrator",
                                                                            "small")
    assert resolve("moe-orchestrator-code@small", model_map) == (
        "moe-orchestrator-code", "moe-orchestrator-code", "small")
    assert resolve("claude-sonnet-4-5@small", model_map) == (
        "moe-orchestrator", "claude-sonnet-4-5", "small")
    assert resolve("exact@id", model_map) == ("moe-orchestrator-code", "exact@id", None)
    assert resolve("moe-orchestrator", model_map) == ("moe-orchestrator", "moe-orchestrator", None)
    assert resolve("unknown@small", model_map) is None
    assert resolve("moe-orchestrator@", model_map) is None


def test_the_request_picks_over_the_key_and_unknown_names_are_404(tmp_path: Path) -> None:
    templates = InferenceConfig.from_settings(settings(tmp_path, GOOD)).templates
    assert template_select.choose("small", None, "judge-only", templates) == "small"
    assert template_select.choose(None, "small", "judge-only", templates) == "small"
    assert template_select.choose(None, None, "judge-only", templates) == "judge-only"
    assert template_select.choose(None, None, None, templates) is None
    cases: list[tuple[str | None, str | None, str | None, str]] = [
        ("large", None, None, "model"), (None, "large", None, "x-moe-template"), (None, None, "gone", "model")]
    for from_model, from_header, key_default, param in cases:
        with pytest.raises(OpenAIError) as err:
            template_select.choose(from_model, from_header, key_default, templates)
        assert (err.value.status, err.value.code, err.value.param) == (404, "template_not_found", param)
    with pytest.raises(OpenAIError) as err:
        template_select.choose("small", "judge-only", None, templates)
    assert (err.value.status, err.value.code) == (400, "template_conflict")


def test_cached_answers_are_kept_apart_per_template() -> None:
    def request(template: str | None) -> ChatRequest:
        return ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(5), mode="moe-orchestrator",
                           messages=[ChatMessage(role="user", content="hi")], template=template)

    assert len({cache_scope(request(None)), cache_scope(request("a")), cache_scope(request("b"))}) == 3
    assert request("a").child_fields()["template"] == "a"  # every follow-up message carries it


def test_a_tenants_template_travels_with_its_models_and_the_stages_call_them(tmp_path: Path) -> None:
    """The edge's carried models (tiers by size at the edge) are what planner, experts and judge get for the
    message, whatever the stage's own file says about that name; its caches scope by the models' digest."""
    from moe_core.llm.templates import ExpertTemplate, carried, of_message

    config = InferenceConfig.from_settings(settings(tmp_path, GOOD))
    own = ExpertTemplate.model_validate({"experts": {"general": ["mid@cpu", "qwen2.5-72b@gpu1"]},
                                         "judge": ["small"], "ensemble": True})
    models = carried(own, 20.0)
    request = ChatRequest(response_id="r", tenant_id="t", deadline_at=deadline_in(5), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content="hi")], template="small", template_models=models)
    chosen = of_message(request)
    assert isinstance(chosen, ExpertTemplate) and chosen.ensemble
    assert [(r.model, r.server, r.tier) for r in config.for_expert("math", chosen)] == [
        ("mid", "cpu", 1), ("qwen2.5-72b", "gpu1", 2)]  # the tenant's general, tiers by size; not the file's small
    assert [str(r) for r in config.for_role("judge", chosen, fallback="judge")] == ["small"]
    assert [str(r) for r in config.for_role("planner", chosen)] == ["mid"]  # none in it: the global planner
    assert request.child_fields()["template_models"] == models  # every follow-up message carries them

    file_small = request.model_copy(update={"template_models": None})
    assert of_message(file_small) == "small"
    edited = request.model_copy(update={"template_models": carried(own.model_copy(update={"judge": None}), 20.0)})
    assert len({cache_scope(request), cache_scope(file_small), cache_scope(edited)}) == 3


async def test_the_edge_answers_503_when_the_tenants_templates_cannot_be_read(tmp_path: Path) -> None:
    """Redis unreachable (nothing listens on port 1): a request naming a template is refused with a clear 503, never
    run with the file's template of that name; a request naming none needs no lookup."""
    base = settings(tmp_path, GOOD)
    redis = redis_client("redis://127.0.0.1:1/0")  # the edge's client (gateway.app), here to nothing
    edge = template_select.EdgeTemplates(InferenceConfig.from_settings(base).templates, base, redis)
    try:
        assert await edge.choose("t", None, None, None) == (None, None)
        with pytest.raises(OpenAIError) as err:
            await edge.choose("t", "small", None, None)
        assert (err.value.status, err.value.code, err.value.type) == (503, "templates_unavailable", "server_error")
    finally:
        await redis.aclose()


def test_sticky_servers_fall_back_to_the_keys_principal() -> None:
    from moe_core.access.keystore import ApiKey

    key = ApiKey("k1", "k", "user", ("t",), principal_id="person-7")
    assert template_select.affinity_user("alice", key) == "alice"
    assert template_select.affinity_user(None, key) == "principal:person-7"
    assert template_select.affinity_user("", key) == "principal:person-7"
    assert template_select.affinity_user(None, None) is None
