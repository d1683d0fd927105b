"""A tenant's expert templates over the admin API (control_plane.templates.api), on the real Postgres (the
control plane's own role and grants), Open Policy Agent and Kafka: a tenant admin creates, edits and deletes its
tenant's template, every model@endpoint checked against the configured servers (bad input: 400 in the API's
envelope); another tenant's template is a 404; every change is the policy's decision and an audit event."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from control_plane.app import create_app
from control_plane.settings import ControlPlaneSettings
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings
from tests.conftest import SCRIPTED_MODELS
from tests.graph.helpers import TopicTap, run_in_process
from tests.support.keys import create_keys
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra
SERVERS = [{"name": "local", "url": "http://127.0.0.1:9", "models": SCRIPTED_MODELS, "max_retries": 0}]


@dataclass
class Plane:
    api: httpx.AsyncClient
    bus: Bus
    tap: TopicTap
    settings: dict[str, Any]


@pytest.fixture(scope="module")
async def plane(infra: dict[str, str]) -> AsyncIterator[Plane]:
    common: dict[str, Any] = {
        "topic_namespace": new_namespace("tpl"), "kafka_bootstrap": infra["kafka"], "redis_url": infra["redis"],
        "postgres_dsn": infra.get("postgres-control-plane", infra["postgres"]), "opa_url": infra["opa"],
        "consumer_workers": 1, "inference_servers": json.dumps(SERVERS)}
    app = create_app(ControlPlaneSettings(**common))
    bus = Bus(FleetSettings(**common, service_name="template-tests"))
    tap = TopicTap(infra["kafka"], bus.topics.audit)
    async with AsyncExitStack() as stack:
        await run_in_process(stack, [app], bus, tap)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://control-plane")
        stack.push_async_callback(client.aclose)
        yield Plane(client, bus, tap, common)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["code"] == code
    return str(body["message"])


async def test_a_tenant_admin_creates_edits_and_deletes_its_template_each_change_audited(
        plane: Plane, infra: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    tenant, other = f"tpl-a-{tag}", f"tpl-b-{tag}"
    admin, stranger, user = await create_keys(infra["postgres"], ("tpl-admin", "admin", [tenant]),
                                              ("tpl-other", "admin", [other]), ("tpl-user", "user", [tenant]))
    api, name = plane.api, f"coding-{tag}"
    body = {"tenant_id": tenant, "name": name, "template": {
        "description": "code first", "experts": {"code_reviewer": ["expert-model@local", "expert-model-b"]},
        "judge": ["judge-model@local"]}}

    made = await api.post("/v1/admin/templates", json=body, headers=bearer(admin))
    assert made.status_code == 201, made.text
    assert made.json()["template"]["experts"] == {"code_reviewer": ["expert-model@local", "expert-model-b"]}
    assert made.json()["updated_by"].startswith("key:") and made.json()["source"] == "tenant"
    error(await api.post("/v1/admin/templates", json=body, headers=bearer(admin)), 409, "template_exists")

    listed = (await api.get("/v1/admin/templates", headers=bearer(admin))).json()
    assert [(t["tenant_id"], t["name"]) for t in listed["data"]] == [(tenant, name)]
    assert listed["servers"] == {"local": SCRIPTED_MODELS}
    assert (await api.get("/v1/admin/templates", headers=bearer(stranger))).json()["data"] == []

    # another tenant's template is unknown to its admin: read, edit, delete, create in it
    path = f"/v1/admin/templates/{tenant}/{name}"
    error(await api.get(path, headers=bearer(stranger)), 404, "tenant_not_found")
    error(await api.put(path, json={"template": body["template"]}, headers=bearer(stranger)), 404,
          "tenant_not_found")
    error(await api.delete(path, headers=bearer(stranger)), 404, "tenant_not_found")
    error(await api.post("/v1/admin/templates", json={**body, "name": f"x-{tag}"}, headers=bearer(stranger)), 404,
          "tenant_not_found")
    error(await api.get(f"/v1/admin/templates?tenant_id={tenant}", headers=bearer(stranger)), 404,
          "tenant_not_found")
    assert (await api.post("/v1/admin/templates", json=body, headers=bearer(user))).status_code == 403

    edited = await api.put(path, json={"template": {"experts": {"code_reviewer": ["expert-model-b@local"]},
                                                    "planner": ["planner-model@local"], "ensemble": True}},
                           headers=bearer(admin))
    assert edited.status_code == 200, edited.text
    now = (await api.get(path, headers=bearer(admin))).json()["template"]
    assert (now["experts"], now["planner"], now["ensemble"], "judge" in now) == (
        {"code_reviewer": ["expert-model-b@local"]}, ["planner-model@local"], True, False)

    gone = await api.delete(path, headers=bearer(admin))
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    error(await api.get(path, headers=bearer(admin)), 404, "template_not_found")
    error(await api.delete(path, headers=bearer(admin)), 404, "template_not_found")

    subject = f"template:{tenant}/{name}"
    changes = await plane.tap.wait(plane.bus.topics.audit, lambda m: m["subject"] == subject
                                   and m["action"].startswith("template."), count=3)
    assert [c["action"] for c in changes] == ["template.created", "template.updated", "template.deleted"]
    assert {c["tenant_id"] for c in changes} == {tenant}
    assert changes[1]["details"]["before"]["judge"] == ["judge-model@local"]
    # the policy decided each write it was asked (the stranger's were refused before: nothing of theirs asked)
    decided = await plane.tap.wait(plane.bus.topics.audit, lambda m: m["action"] == "policy_decision"
                                   and m["subject"] == subject, count=5)
    assert sorted(d["details"]["decision"] for d in decided) == [
        "template.create", "template.create", "template.delete", "template.delete", "template.update"]
    assert {d["details"]["outcome"] for d in decided} == {"allowed"}


@pytest.mark.parametrize(("template", "name", "needle"), [
    ({"experts": {"code_reviewer": ["expert-model@nowhere"]}}, "ok", "unknown server 'nowhere'"),
    ({"experts": {"code_reviewer": ["no-such-model"]}}, "ok", "no configured server serves the model"),
    ({"judge": ["no-such-model@local"]}, "ok", "the server 'local' does not serve 'no-such-model'"),
    ({"experts": {"astrology": ["expert-model"]}}, "ok", "unknown category 'astrology'"),
    ({"experts": {"code_reviewer": []}}, "ok", "the model list is empty"),
    ({}, "ok", "names no models"),
])
async def test_a_template_the_servers_cannot_serve_is_a_400_naming_the_entry(
        plane: Plane, infra: dict[str, str], template: dict[str, Any], name: str, needle: str) -> None:
    tenant = f"tpl-c-{uuid.uuid4().hex[:8]}"
    [admin] = await create_keys(infra["postgres"], ("tpl-admin", "admin", [tenant]))
    sent = await plane.api.post("/v1/admin/templates", json={"tenant_id": tenant, "name": name, "template": template},
                                headers=bearer(admin))
    assert needle in error(sent, 400, "invalid_template")
    assert (await plane.api.get("/v1/admin/templates", headers=bearer(admin))).json()["data"] == []


@pytest.mark.parametrize("body", [
    {"name": "Upper Case", "template": {"judge": ["judge-model"]}},
    {"name": "ok", "template": {"judge": ["judge-model"], "colour": "red"}},
    {"name": "ok", "template": {"judge": "judge-model"}},
    {"name": "ok", "template": {"judge": ["@local"]}},
])
async def test_a_malformed_body_is_a_400_in_the_apis_format(plane: Plane, infra: dict[str, str],
                                                           body: dict[str, Any]) -> None:
    tenant = f"tpl-d-{uuid.uuid4().hex[:8]}"
    [admin] = await create_keys(infra["postgres"], ("tpl-admin", "admin", [tenant]))
    sent = await plane.api.post("/v1/admin/templates", json={"tenant_id": tenant, **body}, headers=bearer(admin))
    assert sent.status_code == 400, sent.text
    assert set(sent.json()["error"]) == {"message", "type", "param", "code"}
    bad_path = await plane.api.put(f"/v1/admin/templates/{tenant}/Not%20A%20Name",
                                   json={"template": {"judge": ["judge-model"]}}, headers=bearer(admin))
    error(bad_path, 400, "invalid_value")


async def test_a_tenants_own_templates_overlay_the_file_defaults_for_that_tenant_only(
        plane: Plane, infra: dict[str, str]) -> None:
    from moe_core.access.keystore import KeyStore
    from moe_core.llm.templates import ExpertTemplate
    from moe_core.llm.tenant_templates import TenantTemplates

    tag = uuid.uuid4().hex[:8]
    tenant, other = f"tpl-e-{tag}", f"tpl-f-{tag}"
    [admin] = await create_keys(infra["postgres"], ("tpl-admin", "admin", [tenant]))
    made = await plane.api.post("/v1/admin/templates", headers=bearer(admin), json={
        "tenant_id": tenant, "name": "shared", "template": {"experts": {"code_reviewer": ["expert-model-b@local"]}}})
    assert made.status_code == 201, made.text
    defaults = {"shared": ExpertTemplate.model_validate({"experts": {"code_reviewer": ["expert-model"]}}),
                "fallback": ExpertTemplate.model_validate({"judge": ["judge-model"]})}
    store = await KeyStore.connect(infra["postgres"])
    try:
        templates = TenantTemplates(store.pool)
        # stored directly (the API would refuse models this plane's servers do not serve): tiers by size
        assert await templates.create(tenant, f"big-{tag}", ExpertTemplate.model_validate(
            {"experts": {"math": ["qwen2.5-72b@local", "phi4:14b@local"]}}), "test") is not None
        mine = await templates.effective(tenant, defaults, tier_boundary_b=20)
        theirs = await templates.effective(other, defaults, tier_boundary_b=20)
    finally:
        await store.close()
    assert sorted(mine) == sorted(["shared", "fallback", f"big-{tag}"])
    assert [str(r) for r in mine["shared"].experts["code_reviewer"]] == ["expert-model-b@local"]
    assert [r.tier for r in mine[f"big-{tag}"].experts["math"]] == [2, 1]  # tiers from the models' sizes
    assert theirs == defaults and [str(r) for r in defaults["shared"].experts["code_reviewer"]] == ["expert-model"]


async def test_the_operator_manages_any_tenants_templates_each_cross_tenant_read_on_the_record(
        plane: Plane, infra: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    tenant = f"tpl-g-{tag}"
    operator, admin = await create_keys(infra["postgres"], ("tpl-operator", "operator", [f"ops-{tag}"]),
                                        ("tpl-admin", "admin", [tenant]))
    body = {"tenant_id": tenant, "name": "ops", "template": {"judge": ["judge-model@local"]}}
    made = await plane.api.post("/v1/admin/templates", json=body, headers=bearer(operator))
    assert made.status_code == 201, made.text
    path = f"/v1/admin/templates/{tenant}/ops"
    assert (await plane.api.get(path, headers=bearer(operator))).json()["template"]["judge"] == ["judge-model@local"]
    assert [t["name"] for t in (await plane.api.get("/v1/admin/templates", headers=bearer(admin))).json()["data"]] \
        == ["ops"]  # the tenant's admin sees what the operator made for it
    reads = await plane.tap.wait(plane.bus.topics.audit, lambda m: m["action"] == "policy_decision"
                                 and m["subject"] == f"template:{tenant}/ops"
                                 and m["details"]["decision"] == "template.read")
    assert reads[0]["details"]["outcome"] == "allowed" and reads[0]["tenant_id"] == tenant


async def test_each_change_is_published_for_the_edge_and_a_start_publishes_every_tenant(
        plane: Plane, infra: dict[str, str]) -> None:
    """The edge reads a tenant's templates from Redis (moe_core.llm.published_templates), never from the table: every
    create, edit and delete is there when the API answers; a control plane that starts publishes every tenant again
    (a key Redis lost comes back, a key of a tenant without templates goes)."""
    from redis.asyncio import Redis

    from control_plane.app import create_app
    from moe_core.llm.published_templates import PublishedTemplates, published_key

    tag = uuid.uuid4().hex[:8]
    tenant, ghost = f"tpl-p-{tag}", f"tpl-q-{tag}"
    [admin] = await create_keys(infra["postgres"], ("tpl-admin", "admin", [tenant]))
    namespace = plane.settings["topic_namespace"]
    redis = Redis.from_url(infra["redis"], decode_responses=True)
    edge = PublishedTemplates(redis, namespace)
    try:
        made = await plane.api.post("/v1/admin/templates", headers=bearer(admin), json={
            "tenant_id": tenant, "name": "mine", "template": {"experts": {"code_reviewer": ["expert-model-b@local"]}}})
        assert made.status_code == 201, made.text
        seen = await edge.of_tenant(tenant)
        assert [str(r) for r in seen["mine"].experts["code_reviewer"]] == ["expert-model-b@local"]
        path = f"/v1/admin/templates/{tenant}/mine"
        edited = await plane.api.put(path, headers=bearer(admin), json={"template": {"judge": ["judge-model@local"]}})
        assert edited.status_code == 200, edited.text
        seen = await edge.of_tenant(tenant)
        assert seen["mine"].experts == {} and [str(r) for r in seen["mine"].judge or []] == ["judge-model@local"]
        assert await edge.of_tenant(ghost) == {}

        await redis.delete(published_key(namespace, tenant))  # lost (a flush), and a stale key of a tenant with none
        await redis.set(published_key(namespace, ghost), '{"version": 1, "templates": {"old": {"judge": ["x"]}}}')
        restarted = create_app(ControlPlaneSettings(**plane.settings))
        async with restarted.router.lifespan_context(restarted):
            pass
        assert [str(r) for r in (await edge.of_tenant(tenant))["mine"].judge or []] == ["judge-model@local"]
        assert await redis.exists(published_key(namespace, ghost)) == 0

        assert (await plane.api.delete(path, headers=bearer(admin))).status_code == 200
        assert await edge.of_tenant(tenant) == {}  # gone when the API answered
    finally:
        await redis.aclose()


async def test_a_change_redis_cannot_take_is_saved_and_a_503_templates_not_published(
        plane: Plane, infra: dict[str, str]) -> None:
    """Redis is down when a template changes (a control plane whose Redis is a port nothing listens on, beside the
    real one): the change is saved in Postgres and the admin is told, in the API's envelope, that the edge does not
    have it yet (503 templates_not_published); the next change through a control plane with Redis publishes it."""
    from fastapi import FastAPI
    from redis.asyncio import Redis

    from control_plane.policy.gate import PolicyGate
    from control_plane.templates.api import TemplatesApi
    from moe_core.access.keystore import KeyStore
    from moe_core.llm.inference import InferenceConfig
    from moe_core.llm.published_templates import PublishedTemplates
    from moe_core.policy import PolicyClient
    from moe_core.runtime.openai_error import install_error_handlers
    from tests.support.fleet import free_port

    tag = uuid.uuid4().hex[:8]
    tenant = f"tpl-r-{tag}"
    [admin] = await create_keys(infra["postgres"], ("tpl-admin", "admin", [tenant]))
    settings = ControlPlaneSettings(**plane.settings)
    store = await KeyStore.connect(infra.get("postgres-control-plane", infra["postgres"]), cache_ttl_s=0)
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", decode_responses=True, socket_connect_timeout=1)
    live = Redis.from_url(infra["redis"], decode_responses=True)
    inference, opa = InferenceConfig.from_settings(settings), PolicyClient(settings.opa_url, settings.opa_timeout_s)
    api = TemplatesApi(plane.bus, lambda: store, PolicyGate(opa, plane.bus), inference, inference.templates, dead,
                       settings.topic_namespace)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(api.router)
    edge = PublishedTemplates(live, settings.topic_namespace)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cp") as down:
            made = await down.post("/v1/admin/templates", headers=bearer(admin), json={
                "tenant_id": tenant, "name": "kept", "template": {"judge": ["judge-model@local"]}})
            message = error(made, 503, "templates_not_published")
            assert "saved" in message and tenant in message and made.json()["error"]["type"] == "server_error"
            assert await edge.of_tenant(tenant) == {}  # the edge does not have it
            path = f"/v1/admin/templates/{tenant}/kept"
            assert (await plane.api.get(path, headers=bearer(admin))).status_code == 200  # but it is saved
            deleted = await down.delete(path, headers=bearer(admin))
            error(deleted, 503, "templates_not_published")

        made = await plane.api.post("/v1/admin/templates", headers=bearer(admin), json={
            "tenant_id": tenant, "name": "kept", "template": {"judge": ["judge-model@local"]}})
        assert made.status_code == 201, made.text  # the delete was saved too: the name is free again
        assert list(await edge.of_tenant(tenant)) == ["kept"]  # Redis back in reach: published
        assert (await plane.api.delete(path, headers=bearer(admin))).status_code == 200
    finally:
        await dead.aclose()
        await live.aclose()
        await opa.close()
        await store.close()
