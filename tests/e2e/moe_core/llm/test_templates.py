"""Named expert templates through the whole fleet (tests/data/templates.yaml: `alpha` and `beta`, their
models pinned to the scripted server) with the official SDKs: a key's default template decides which
models plan, answer and judge; a request's template (model id suffix or X-MOE-Template header) overrides
it; unknown templates are 404 in each API's envelope; a broken templates file stops a service's start."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, marker, plan_reply
from tests.support.fleet import Fleet, ServiceProcess, free_port
from tests.support.keys import create_key
from tests.support.moe_fields import moe

pytestmark = pytest.mark.e2e
TENANT = "tenant-e2e-templates"
ALPHA = {"alpha-planner", "alpha-expert", "alpha-judge"}
BETA = {"beta-planner", "beta-expert", "beta-math", "beta-judge"}
GLOBAL = {"planner-model", "expert-model", "judge-model", "expert-model-b"}


@pytest.fixture
def tscripted(scripted: Scripted) -> Iterator[Scripted]:
    """The scripted server, also serving the templates' models (pinned to it in tests/data/templates.yaml)."""
    before = scripted.models
    scripted.models = [*before, *sorted(ALPHA | BETA)]
    yield scripted
    scripted.models = before


@pytest.fixture(scope="module")
async def admin_token(infra: dict[str, str]) -> str:
    return await create_key(infra["postgres"], "e2e-templates-admin", "admin", [TENANT])


@pytest.fixture
async def admin_http(fleet: Fleet, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """Per test: a pooled connection idle past the gateway's keep-alive would be closed under it."""
    token = admin_token
    async with httpx.AsyncClient(base_url=f"{fleet['control-plane'].url}/v1/admin", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        yield http


async def _key(admin_http: httpx.AsyncClient, template: str | None) -> dict[str, Any]:
    body = {"name": f"tpl-{uuid.uuid4().hex[:6]}", "tenant_ids": [TENANT], "default_template": template}
    response = await admin_http.post("/keys", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["default_template"] == template
    return created


def _script(scripted: Scripted, m: str, planner: str, experts: list[str], judge: str) -> None:
    """Two expert tasks (general, math), so the judge merges: every role of the template is called."""
    plan = plan_reply(("general", f"Explain tides {m}"), ("math", f"Compute the tidal period {m}"))
    scripted.script([{"model": planner, "contains": m, "reply": plan},
                     *({"model": e, "contains": m, "reply": f"{e} says tides.\nCONFIDENCE: high"} for e in experts),
                     {"model": judge, "contains": m, "reply": f"Merged by {judge} {m}."}])


def _models_seen(scripted: Scripted, m: str) -> set[str]:
    return {c["model"] for c in calls_for(scripted.calls(), m)}


async def test_the_keys_default_template_chooses_the_models(
        base_url: str, admin_http: httpx.AsyncClient, tscripted: Scripted) -> None:
    key = await _key(admin_http, "alpha")
    m = marker()
    _script(tscripted, m, "alpha-planner", ["alpha-expert"], "alpha-judge")
    client = openai.AsyncOpenAI(base_url=base_url, api_key=key["secret"], max_retries=0, timeout=60)
    response = await client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Why are there tides? {m}"}])
    assert response.choices[0].message.content == f"Merged by alpha-judge {m}."
    assert _models_seen(tscripted, m) == ALPHA  # planner, both experts (math: alpha's general) and the judge
    assert moe(response)["template"] == "alpha"

    m = marker()  # the same question shape with a key without a template: the global models
    _script(tscripted, m, "planner-model", ["expert-model"], "judge-model")
    plain = await _key(admin_http, None)
    client = openai.AsyncOpenAI(base_url=base_url, api_key=plain["secret"], max_retries=0, timeout=60)
    response = await client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Why are there tides? {m}"}])
    assert _models_seen(tscripted, m) <= GLOBAL and not _models_seen(tscripted, m) & (ALPHA | BETA)
    assert moe(response)["template"] is None


async def test_a_request_picks_another_template_than_its_keys(
        base_url: str, fleet: Fleet, admin_http: httpx.AsyncClient, tscripted: Scripted) -> None:
    key = await _key(admin_http, "alpha")
    m = marker()
    _script(tscripted, m, "beta-planner", ["beta-expert", "beta-math"], "beta-judge")
    client = openai.AsyncOpenAI(base_url=base_url, api_key=key["secret"], max_retries=0, timeout=60)
    chunks = [c async for c in await client.chat.completions.create(
        model="moe-orchestrator@beta", stream=True, messages=[{"role": "user", "content": f"Tides? {m}"}])]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"Merged by beta-judge {m}."
    assert _models_seen(tscripted, m) == BETA  # math: beta's own math model

    m = marker()  # the Anthropic API with the header
    _script(tscripted, m, "beta-planner", ["beta-expert", "beta-math"], "beta-judge")
    claude = anthropic.AsyncAnthropic(base_url=fleet["gateway"].url, api_key=key["secret"], max_retries=0,
                                      timeout=60)
    message = await claude.messages.create(model="moe-orchestrator", max_tokens=200,
                                           extra_headers={"X-MOE-Template": "beta"},
                                           messages=[{"role": "user", "content": f"Tides? {m}"}])
    assert "".join(b.text for b in message.content if b.type == "text") == f"Merged by beta-judge {m}."
    assert _models_seen(tscripted, m) == BETA


async def test_the_models_list_names_the_templates(base_url: str, api_key: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
    ids = [model.id async for model in client.models.list()]
    assert {"moe-orchestrator@alpha", "moe-orchestrator@beta", "moe-orchestrator"} <= set(ids)
    code_beta = await client.models.retrieve("moe-orchestrator-code@beta")
    assert code_beta.id == "moe-orchestrator-code@beta" and "the beta models" in code_beta.description  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError) as err:
        await client.models.retrieve("moe-orchestrator@gamma")
    assert err.value.code == "template_not_found"


async def test_an_unknown_template_is_404_in_each_apis_envelope(
        base_url: str, fleet: Fleet, api_key: str, admin_http: httpx.AsyncClient, tscripted: Scripted) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
    question = [{"role": "user", "content": f"Tides? {marker()}"}]
    with pytest.raises(openai.NotFoundError) as err:
        await client.chat.completions.create(model="moe-orchestrator@gamma", messages=question)  # type: ignore[arg-type]
    assert (err.value.code, err.value.param) == ("template_not_found", "model")
    assert "gamma" in err.value.message and "alpha, beta" in err.value.message
    with pytest.raises(openai.NotFoundError) as err:
        await client.chat.completions.create(model="moe-orchestrator", messages=question,  # type: ignore[arg-type]
                                             extra_headers={"X-MOE-Template": "gamma"})
    assert (err.value.code, err.value.param) == ("template_not_found", "x-moe-template")
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="moe-orchestrator@alpha", messages=question,  # type: ignore[arg-type]
                                             extra_headers={"X-MOE-Template": "beta"})
    assert bad.value.code == "template_conflict"
    claude = anthropic.AsyncAnthropic(base_url=fleet["gateway"].url, api_key=api_key, max_retries=0, timeout=30)
    with pytest.raises(anthropic.NotFoundError) as nf:
        await claude.messages.create(model="moe-orchestrator@gamma", max_tokens=8, messages=question)  # type: ignore[arg-type]
    assert nf.value.body["type"] == "error" and nf.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "gamma" in nf.value.body["error"]["message"]  # type: ignore[index]
    assert not [c for c in tscripted.calls() if "Tides?" in str(c["messages"])]  # nothing reached a model

    refused = await admin_http.post("/keys", json={"name": "x", "tenant_ids": [TENANT], "default_template": "gamma"})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "template_not_found"
    key = await _key(admin_http, "alpha")
    changed = await admin_http.patch(f"/keys/{key['id']}", json={"default_template": "beta"})
    assert changed.status_code == 200 and changed.json()["default_template"] == "beta"
    cleared = await admin_http.patch(f"/keys/{key['id']}", json={"clear_default_template": True})
    assert cleared.status_code == 200 and cleared.json()["default_template"] is None


async def test_an_invalid_templates_file_stops_the_start(
        tmp_path: Path, fleet: Fleet, infra: dict[str, str]) -> None:
    bad = tmp_path / "templates.yaml"
    bad.write_text("version: 1\ntemplates:\n  broken:\n    planner: [planner-model@gpu9]\n"
                   "    experts: {astrology: [expert-model], math: []}\n")
    env = {**fleet["planner"].env, "MOE_EXPERT_TEMPLATES_FILE": str(bad)}
    processes = []
    for name in ("gateway", "planner"):
        port = free_port()
        process = ServiceProcess(name, port, {**env, "MOE_HTTP_PORT": str(port), "MOE_GATEWAY_WORKERS": "1",
                                              "MOE_TOPIC_NAMESPACE": f"{env['MOE_TOPIC_NAMESPACE']}-bad{name[0]}"})
        process.start()
        processes.append(process)
    try:
        for process in processes:
            assert process.proc is not None
            code = await asyncio.to_thread(process.proc.wait, 120)
            log = process.tail(80)
            assert code != 0, log
            assert "unknown category 'astrology'" in log and "experts.math: the model list is empty" in log, log
            assert "unknown server 'gpu9'" in log, log
    finally:
        for process in processes:
            process.stop()
