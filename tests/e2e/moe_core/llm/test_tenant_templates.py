"""A tenant's own expert templates through the whole fleet (control plane, gateway, planner, expert-worker, merger
on the real Kafka, Redis and Postgres; the scripted inference server records which model each call asked): a tenant
admin makes a template at /v1/admin/templates whose expert differs from the global one; a request naming it (model
suffix or X-MOE-Template header), or made with a key whose default template it is, is answered by that model;
GET /v1/models lists it for its tenant only; a template of a file template's name is the tenant's
version of it; another tenant cannot use it (404 template_not_found in the API's envelope); once deleted, the next
request is a 404. The exact cache never answers one template's request with another template's answer, an edited
template's included. Sticky server selection keys on the key's principal when the client sends no `user`. An edge
replica that cannot read the tenant's templates (its Redis gone) answers 503 templates_unavailable."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from moe_core.access.principals import own_principal
from moe_core.contracts import ChatMessage, ChatRequest, deadline_in
from moe_core.llm.exact_cache import ExactAnswers, cache_scope
from moe_core.llm.templates import ExpertTemplate, carried
from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, marker, plan_reply
from tests.support.fleet import Fleet, ServiceProcess, free_port
from tests.support.keys import create_keys
from tests.support.moe_fields import moe
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
TENANT, OTHER = "tenant-e2e-tpl-own", "tenant-e2e-tpl-other"
TIDES = ("Tides come from the pull of the moon and, less, of the sun on the oceans; the water rises and falls "
         "about twice a day as the earth turns under two bulges of water.")  # >= 150 chars: cached
OTHER_TIDES = ("The moon's gravity raises the sea on the side facing it and on the far side, so most coasts see two "
               "high and two low tides each lunar day, about 24 hours and 50 minutes.")



@pytest.fixture(scope="module")
async def tokens(infra: dict[str, str]) -> dict[str, str]:
    admin, user, stranger, other_admin = await create_keys(
        infra["postgres"], ("tpl-own-admin", "admin", [TENANT]), ("tpl-own-user", "user", [TENANT]),
        ("tpl-other", "user", [OTHER]), ("tpl-other-admin", "admin", [OTHER]))
    return {"admin": admin, "user": user, "other": stranger, "other_admin": other_admin}


@pytest.fixture
async def admin(fleet: Fleet, tokens: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{fleet['control-plane'].url}/v1/admin", timeout=30,
                                 headers={"Authorization": f"Bearer {tokens['admin']}"}) as http:
        yield http


@pytest.fixture(scope="module")
def store(infra: dict[str, str]) -> Iterator[Redis]:
    client = Redis.from_url(infra["redis"], decode_responses=True)
    yield client
    client.close()


def _client(base_url: str, token: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=60)


async def _make(admin: httpx.AsyncClient, name: str, template: dict[str, Any]) -> None:
    made = await admin.post("/templates", json={"tenant_id": TENANT, "name": name, "template": template})
    assert made.status_code == 201, made.text


def _script(scripted: Scripted, m: str, expert: str, reply: str) -> None:
    """One general task: the planner (global), then the expert model the request's template names."""
    scripted.script([{"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Explain {m}"))},
                     {"model": expert, "contains": m, "reply": f"{reply}\nCONFIDENCE: high"}])


def _models(scripted: Scripted, m: str) -> set[str]:
    return {c["model"] for c in calls_for(scripted.calls(), m)}


async def _ask(client: openai.AsyncOpenAI, question: str, model: str = "moe-orchestrator",
               headers: dict[str, str] | None = None) -> Any:
    return await client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                                extra_headers=headers)


async def test_a_tenants_template_answers_with_its_model_for_that_tenant_only_until_deleted(
        base_url: str, admin: httpx.AsyncClient, tokens: dict[str, str], scripted: Scripted) -> None:
    name = f"own-{uuid.uuid4().hex[:6]}"
    await _make(admin, name, {"description": "the b expert", "experts": {"general": ["expert-model-b@scripted"]}})
    client = _client(base_url, tokens["user"])

    m = marker()  # the model id's suffix
    _script(scripted, m, "expert-model-b", f"Tides by b {m}.")
    answer = await _ask(client, f"Why are there tides? {m}", f"moe-orchestrator@{name}")
    assert answer.choices[0].message.content == f"Tides by b {m}."
    assert _models(scripted, m) == {"planner-model", "expert-model-b"}  # the template's expert, not expert-model
    assert moe(answer)["template"] == name

    m = marker()  # the header, on the streaming path
    _script(scripted, m, "expert-model-b", f"Tides by b {m}.")
    chunks = [c async for c in await client.chat.completions.create(
        model="moe-orchestrator", stream=True, messages=[{"role": "user", "content": f"Tides? {m}"}],
        extra_headers={"X-MOE-Template": name})]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"Tides by b {m}."
    assert _models(scripted, m) == {"planner-model", "expert-model-b"}

    m = marker()  # without a template: the global expert
    _script(scripted, m, "expert-model", f"Tides globally {m}.")
    await _ask(client, f"Why are there tides? {m}")
    assert _models(scripted, m) == {"planner-model", "expert-model"}

    stranger = _client(base_url, tokens["other"])  # another tenant does not have it
    for model, headers, param in ((f"moe-orchestrator@{name}", None, "model"),
                                  ("moe-orchestrator", {"X-MOE-Template": name}, "x-moe-template")):
        with pytest.raises(openai.NotFoundError) as err:
            await _ask(stranger, f"Tides? {marker()}", model, headers)
        assert (err.value.code, err.value.param) == ("template_not_found", param)
        assert err.value.type == "invalid_request_error"
        assert "(templates: alpha, beta)" in err.value.message  # the file's only: not the other tenant's names

    deleted = await admin.delete(f"/templates/{TENANT}/{name}")
    assert deleted.status_code == 200, deleted.text
    with pytest.raises(openai.NotFoundError) as err:  # the very next request
        await _ask(client, f"Tides? {marker()}", f"moe-orchestrator@{name}")
    assert err.value.code == "template_not_found"


async def test_a_tenants_template_of_a_file_templates_name_is_its_version_of_it(
        base_url: str, admin: httpx.AsyncClient, tokens: dict[str, str], scripted: Scripted) -> None:
    await _make(admin, "beta", {"experts": {"general": ["expert-model-b@scripted"]}})
    before = scripted.models
    scripted.models = [*before, "beta-planner", "beta-expert", "beta-judge"]  # the file's beta, pinned to it
    try:
        m = marker()
        _script(scripted, m, "expert-model-b", f"Tides by the tenant's beta {m}.")
        answer = await _ask(_client(base_url, tokens["user"]), f"Tides? {m}", "moe-orchestrator@beta")
        assert answer.choices[0].message.content == f"Tides by the tenant's beta {m}."
        assert _models(scripted, m) == {"planner-model", "expert-model-b"}  # nothing of the file's beta

        m = marker()  # another tenant's beta is the file's
        scripted.script([{"model": "beta-planner", "contains": m, "reply": plan_reply(("general", f"Explain {m}"))},
                         {"model": "beta-expert", "contains": m, "reply": f"File beta {m}.\nCONFIDENCE: high"}])
        answer = await _ask(_client(base_url, tokens["other"]), f"Tides? {m}", "moe-orchestrator@beta")
        assert answer.choices[0].message.content == f"File beta {m}."
        assert _models(scripted, m) == {"beta-planner", "beta-expert"}
    finally:
        scripted.models = before
        assert (await admin.delete(f"/templates/{TENANT}/beta")).status_code == 200


def _exact_key(namespace: str, question: str, name: str, template: dict[str, Any]) -> str:
    """Where the planner stores the answer of `question` asked with the tenant's template `name` (its models)."""
    request = ChatRequest(response_id="r", tenant_id=TENANT, deadline_at=deadline_in(9), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content=question)], template=name,
                          template_models=carried(ExpertTemplate.model_validate(template), 20.0))
    return ExactAnswers(AsyncRedis(), namespace, 0).key(cache_scope(request) or "", question)


async def test_the_exact_cache_never_answers_with_another_templates_answer(
        base_url: str, fleet: Fleet, admin: httpx.AsyncClient, tokens: dict[str, str], scripted: Scripted,
        store: Redis) -> None:
    name = f"cached-{uuid.uuid4().hex[:6]}"
    b_only = {"experts": {"general": ["expert-model-b@scripted"]}}
    await _make(admin, name, b_only)
    client = _client(base_url, tokens["user"])
    m = marker()
    question = f"Why are there tides? {m}"
    _script(scripted, m, "expert-model-b", TIDES)
    first = await _ask(client, question, f"moe-orchestrator@{name}")
    assert first.choices[0].message.content == TIDES and moe(first)["cache_hit"] is False
    eventually(lambda: store.exists(_exact_key(fleet["gateway"].env["MOE_TOPIC_NAMESPACE"], question, name, b_only)))
    again = await _ask(client, question, f"moe-orchestrator@{name}")  # the same template: the cached answer
    assert moe(again)["cache_hit"] is True and again.choices[0].message.content == TIDES

    _script(scripted, m, "expert-model", OTHER_TIDES)  # the same words without the template: the global models
    plain = await _ask(client, question)
    assert moe(plain)["cache_hit"] is False and plain.choices[0].message.content == OTHER_TIDES
    assert "expert-model" in _models(scripted, m)

    edited = await admin.put(f"/templates/{TENANT}/{name}",
                             json={"template": {"experts": {"general": ["expert-model@scripted"]}}})
    assert edited.status_code == 200, edited.text
    scripted.script([{"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Explain {m}"))},
                     {"model": "expert-model", "contains": m, "reply": f"Edited {m}.\nCONFIDENCE: high"}])
    changed = await _ask(client, question, f"moe-orchestrator@{name}")  # same name, other models: not the cache's
    assert moe(changed)["cache_hit"] is False
    assert changed.choices[0].message.content == f"Edited {m}." and _models(scripted, m) >= {"expert-model"}
    assert "expert-model-b" not in _models(scripted, m)
    assert (await admin.delete(f"/templates/{TENANT}/{name}")).status_code == 200


async def test_sticky_servers_key_on_the_principal_when_the_client_sends_no_user(
        base_url: str, fleet: Fleet, tokens: dict[str, str], scripted: Scripted, store: Redis) -> None:
    """Two inference servers serve the global expert model (expert-model floats): a call's success records the
    request's user's server, which a client that names no `user` still has (its key's principal)."""
    namespace = fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]
    principal = own_principal(tokens["user"].split("-")[1])  # moe-<key id>-<secret>; its own service account
    affinity = f"inference:{namespace}:affinity:principal:{principal}:expert-model"
    store.delete(affinity)
    client = _client(base_url, tokens["user"])
    m = marker()
    _script(scripted, m, "expert-model", f"Sticky {m}.")
    await _ask(client, f"Tides? {m}")
    assert eventually(lambda: store.get(affinity)) == "scripted"  # the server that answered

    m = marker()  # a client's own user: its key, not the principal's
    store.delete(affinity)
    _script(scripted, m, "expert-model", f"Sticky {m}.")
    user = f"alice-{uuid.uuid4().hex[:6]}"
    await client.chat.completions.create(model="moe-orchestrator", user=user,
                                         messages=[{"role": "user", "content": f"Tides? {m}"}])
    assert eventually(lambda: store.get(f"inference:{namespace}:affinity:{user}:expert-model")) == "scripted"
    assert store.get(affinity) is None


async def test_the_models_list_has_the_tenants_own_templates_and_never_another_tenants(
        base_url: str, admin: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    name = f"listed-{uuid.uuid4().hex[:6]}"
    await _make(admin, name, {"description": "tides by b", "experts": {"general": ["expert-model-b@scripted"]}})
    model_id = f"moe-orchestrator@{name}"
    try:
        client, stranger = _client(base_url, tokens["user"]), _client(base_url, tokens["other"])
        listed = {m.id: m for m in (await client.models.list()).data}
        assert {"moe-orchestrator", "moe-orchestrator@alpha", "moe-orchestrator@beta", model_id} <= set(listed)
        description = str(listed[model_id].description)  # type: ignore[attr-defined]
        assert f"expert template '{name}'" in description and "tides by b" in description
        one = await client.models.retrieve(model_id)
        assert (one.id, one.object) == (model_id, "model")

        theirs = {m.id for m in (await stranger.models.list()).data}
        assert model_id not in theirs and "moe-orchestrator@alpha" in theirs  # the file's only
        with pytest.raises(openai.NotFoundError) as err:
            await stranger.models.retrieve(model_id)
        assert (err.value.code, err.value.param, err.value.type) == ("template_not_found", "model",
                                                                      "invalid_request_error")
        assert "(templates: alpha, beta)" in err.value.message  # the names it lists are the file's only
    finally:
        assert (await admin.delete(f"/templates/{TENANT}/{name}")).status_code == 200
    with pytest.raises(openai.NotFoundError):  # deleted: gone from the owner's models too
        await client.models.retrieve(model_id)
    assert model_id not in {m.id for m in (await client.models.list()).data}


async def test_a_keys_default_template_may_be_its_tenants_own_never_another_tenants(
        base_url: str, fleet: Fleet, admin: httpx.AsyncClient, tokens: dict[str, str], scripted: Scripted) -> None:
    name, theirs = f"keyed-{uuid.uuid4().hex[:6]}", f"theirs-{uuid.uuid4().hex[:6]}"
    await _make(admin, name, {"experts": {"general": ["expert-model-b@scripted"]}})
    async with httpx.AsyncClient(base_url=f"{fleet['control-plane'].url}/v1/admin", timeout=30,
                                 headers={"Authorization": f"Bearer {tokens['other_admin']}"}) as other_admin:
        made = await other_admin.post("/templates", json={"tenant_id": OTHER, "name": theirs,
                                                          "template": {"experts": {"general": ["expert-model"]}}})
        assert made.status_code == 201, made.text
        try:
            refused = await admin.post("/keys", json={"name": "k", "tenant_ids": [TENANT], "default_template": theirs})
            assert refused.status_code == 404, refused.text  # another tenant's: unknown, and its names unlisted
            error = refused.json()["error"]
            assert (error["code"], error["param"], error["type"]) == ("template_not_found", "default_template",
                                                                      "invalid_request_error")
            assert name in error["message"] and "alpha" in error["message"]  # what this tenant may name

            created = await admin.post("/keys", json={"name": "keyed", "tenant_ids": [TENANT],
                                                      "default_template": name})
            assert created.status_code == 201, created.text
            key = created.json()
            assert key["default_template"] == name
            m = marker()  # no template named: the key's, the tenant's own
            _script(scripted, m, "expert-model-b", f"Tides by the key's template {m}.")
            answer = await _ask(_client(base_url, key["secret"]), f"Why are there tides? {m}")
            assert answer.choices[0].message.content == f"Tides by the key's template {m}."
            assert _models(scripted, m) == {"planner-model", "expert-model-b"}
            assert moe(answer)["template"] == name

            changed = await admin.patch(f"/keys/{key['id']}", json={"default_template": theirs})
            assert changed.status_code == 404 and changed.json()["error"]["code"] == "template_not_found"
            changed = await admin.patch(f"/keys/{key['id']}", json={"default_template": "alpha"})
            assert changed.status_code == 200 and changed.json()["default_template"] == "alpha"
            changed = await admin.patch(f"/keys/{key['id']}", json={"default_template": name})
            assert changed.status_code == 200 and changed.json()["default_template"] == name
        finally:
            assert (await other_admin.delete(f"/templates/{OTHER}/{theirs}")).status_code == 200
            assert (await admin.delete(f"/templates/{TENANT}/{name}")).status_code == 200


async def test_an_edge_that_cannot_read_the_tenants_templates_answers_503_templates_unavailable(
        fleet: Fleet, tokens: dict[str, str]) -> None:
    """A gateway whose Redis is a port nothing listens on: what needs the tenant's templates (the models list, a
    template's model, a request naming a template) is a 503 `templates_unavailable` in the OpenAI envelope, never a
    500 and never the file template of that name; a model naming no template needs no lookup."""
    port = free_port()
    env = {**fleet["gateway"].env, "MOE_HTTP_PORT": str(port), "MOE_GATEWAY_WORKERS": "1",
           "MOE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # a replica of the fleet's edge, its Redis gone
    process = ServiceProcess("gateway", port, env)
    process.start()
    try:
        async with httpx.AsyncClient(base_url=f"{process.url}/v1", timeout=60,
                                     headers={"Authorization": f"Bearer {tokens['user']}"}) as edge:
            end = time.monotonic() + 120
            while True:  # /ready says Redis is down: wait for the process to serve at all
                assert process.proc is not None and process.proc.poll() is None, process.tail(60)
                try:
                    if (await edge.get(f"{process.url}/alive")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < end, process.tail(60)
                await asyncio.sleep(0.2)
            assert (await edge.get("/models/moe-orchestrator")).status_code == 200, process.tail(60)
            for response in (await edge.get("/models"), await edge.get("/models/moe-orchestrator@alpha"),
                             await edge.post("/chat/completions", json={
                                 "model": "moe-orchestrator@alpha", "messages": [{"role": "user", "content": "hi"}]})):
                assert response.status_code == 503, (response.text, process.tail(60))
                error = response.json()["error"]
                assert (error["code"], error["type"]) == ("templates_unavailable", "server_error"), error
                assert "try again" in error["message"]
    finally:
        process.stop()
