"""The admin API on a gateway of two replicas, real Postgres, Redis and Kafka, with the official SDKs as
clients: a key's whole life (create, use, rotate, revoke: refused on every replica), audit events, and
the refusals (user key on the admin API, expired, revoked, wrong-tenant and disabled-tenant keys, models
the key may not use, bad limits) in the envelope of the API that was called."""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import anthropic
import httpx
import openai
import pytest

from moe_core.contracts import Usage
from tests.e2e.accounts_fixtures import Admin  # the fixtures: tests/e2e/conftest.py
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess
from tests.support.namespaces import new_namespace
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.e2e
REVOCATION_BOUND_S = 120.0  # a bound far below the 600 s the key caches alone would hold: the revocation is pushed


def _oai(gateway: ServiceProcess, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=30)


async def _ask(gateway: ServiceProcess, driver: BusDriver, key: str, model: str = "moe-orchestrator") -> str:
    m = f"M{uuid.uuid4().hex[:8]}"

    async def backend() -> None:
        request = await driver.request(m)
        await driver.answer(request, f"answer {m}", usage=Usage(prompt_tokens=5, completion_tokens=2))

    task = asyncio.create_task(backend())
    response = await _oai(gateway, key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"Question {m}"}])
    await task
    assert response.choices[0].message.content == f"answer {m}"
    return m


async def _status_per_replica(gateway: ServiceProcess, key: str) -> dict[str, int]:
    """The status each replica gives the key (a fresh connection per request, until both answered)."""
    seen: dict[str, int] = {}
    for _ in range(60):
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {key}"})
        seen[response.headers["x-moe-replica"]] = response.status_code
        if len(seen) == 2:
            return seen
    raise AssertionError(f"only replicas {sorted(seen)} answered in 60 connections")


async def test_a_key_lives_is_rotated_and_revoked_fleet_wide_with_audit_events(
        accounts_gateway: ServiceProcess, accounts_driver: BusDriver, admin: Admin, admin_key: str,
        infra: dict[str, str]) -> None:
    audit_topic = f"{accounts_gateway.env['MOE_TOPIC_NAMESPACE']}.audit.v1"
    async with TopicReader(infra["kafka"], audit_topic) as reader:
        tenant = await admin.tenant()
        created = await admin.key(tenant, name="team-bot", allowed_models=["moe-orchestrator"])
        secret, key_id = created["secret"], created["id"]
        assert created["status"] == "active" and created["tenant_ids"] == [tenant] and secret.startswith("moe-")
        await _ask(accounts_gateway, accounts_driver, secret)

        listed = await admin.call("GET", f"/keys?tenant_id={tenant}")
        assert [k["id"] for k in listed["data"]] == [key_id]
        assert "secret" not in listed["data"][0] and secret not in str(listed)

        assert set((await _status_per_replica(accounts_gateway, secret)).values()) == {200}  # both caches warm
        rotated = await admin.call("POST", f"/keys/{key_id}/rotate")
        assert rotated["id"] == key_id and rotated["secret"] != secret
        with pytest.raises(openai.AuthenticationError):
            await _oai(accounts_gateway, secret).models.list()
        await _ask(accounts_gateway, accounts_driver, rotated["secret"])

        assert set((await _status_per_replica(accounts_gateway, rotated["secret"])).values()) == {200}
        revoked_at = time.monotonic()
        assert (await admin.call("POST", f"/keys/{key_id}/revoke"))["status"] == "revoked"
        while set((statuses := await _status_per_replica(accounts_gateway, rotated["secret"])).values()) != {401}:
            assert time.monotonic() - revoked_at < REVOCATION_BOUND_S, f"still accepted: {statuses}"
        with pytest.raises(openai.AuthenticationError) as refused:
            await _oai(accounts_gateway, rotated["secret"]).models.list()
        assert refused.value.code == "key_revoked"
        await admin.call("POST", f"/keys/{key_id}/revoke", expect=404)  # revoked once

        events = await reader.wait(audit_topic, lambda e: e["subject"] in (f"tenant:{tenant}", f"key:{key_id}")
                                   and e["action"] != "policy_decision", count=4)
        decided = await reader.wait(audit_topic, lambda e: e["subject"] in (f"tenant:{tenant}", f"key:{key_id}")
                                    and e["action"] == "policy_decision" and e["details"]["outcome"] == "allowed",
                                    count=3)  # every change was the policy's decision first (docs/security.md)
    assert {"tenant.create", "key.rotate", "key.revoke"} <= {e["details"]["decision"] for e in decided}
    assert all(e["details"]["policy_version"].startswith("sha256:") for e in decided)
    events.sort(key=lambda e: e["created_at"])  # a tenant's and a key's events are keyed (partitioned) apart
    assert [e["action"] for e in events] == ["tenant.created", "key.created", "key.rotated", "key.revoked"]
    assert {e["actor"] for e in events} == {f"key:{admin_key.split('-')[1]}"}  # tokens are moe-<key id>-<secret>
    assert all(e["tenant_id"] == tenant for e in events)
    assert secret not in str(events) and rotated["secret"] not in str(events)


async def test_a_user_key_cannot_use_the_admin_api(accounts_control_plane: ServiceProcess, admin: Admin) -> None:
    user = (await admin.key(await admin.tenant()))["secret"]
    async with httpx.AsyncClient(base_url=accounts_control_plane.url, timeout=30) as http:
        forbidden = await http.post("/v1/admin/tenants", json={"id": "nope"},
                                    headers={"Authorization": f"Bearer {user}"})
        anonymous = await http.get("/v1/admin/keys")
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == {"message": "This endpoint needs an admin key.", "type": "permission_error",
                                         "param": None, "code": "insufficient_role"}
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "invalid_api_key")


async def test_expired_wrong_tenant_and_disabled_tenant_keys_are_refused_in_each_envelope(
        accounts_gateway: ServiceProcess, admin: Admin) -> None:
    tenant, other = await admin.tenant(), await admin.tenant()
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    never = await admin.call("POST", "/keys", {"name": "e2e", "tenant_ids": [tenant], "expires_at": past}, 400)
    assert (never["error"]["code"], never["error"]["param"]) == ("invalid_expiry", "expires_at")
    created = await admin.key(tenant)  # an admin may expire a live key at once (as revoking it would)
    expired = {**created, **await admin.call("PATCH", f"/keys/{created['id']}", {"expires_at": past})}
    assert expired["status"] == "expired"
    ant = anthropic.AsyncAnthropic(base_url=accounts_gateway.url, api_key=expired["secret"], max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as err:
        await ant.messages.create(model="moe-orchestrator", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert err.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                         "message": "This API key has expired."}}
    with pytest.raises(openai.AuthenticationError) as oerr:
        await _oai(accounts_gateway, expired["secret"]).models.list()
    assert oerr.value.code == "key_expired"

    live = (await admin.key(tenant))["secret"]
    with pytest.raises(openai.PermissionDeniedError) as wrong:
        await _oai(accounts_gateway, live).chat.completions.create(
            model="moe-orchestrator", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Moe-Tenant": other})
    assert wrong.value.code == "wrong_tenant"

    await admin.call("PATCH", f"/tenants/{tenant}", {"disabled": True})
    ant = anthropic.AsyncAnthropic(base_url=accounts_gateway.url, api_key=live, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as disabled:
        await ant.messages.create(model="moe-orchestrator", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert disabled.value.body == {"type": "error", "error": {"type": "permission_error",
                                                              "message": f"Tenant '{tenant}' is disabled."}}


async def test_a_key_may_use_only_its_allowed_models(accounts_gateway: ServiceProcess, accounts_driver: BusDriver,
                                                     admin: Admin) -> None:
    key = (await admin.key(await admin.tenant(), allowed_models=["moe-orchestrator-concise"]))["secret"]
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await _oai(accounts_gateway, key).chat.completions.create(
            model="moe-orchestrator", messages=[{"role": "user", "content": "hi"}])
    assert (refused.value.code, refused.value.param) == ("model_not_allowed", "model")
    await _ask(accounts_gateway, accounts_driver, key, model="moe-orchestrator-concise")
    # the list shows what the key may use (it listed every mode)
    listed = [m.id async for m in _oai(accounts_gateway, key).models.list()]
    assert listed == ["moe-orchestrator-concise"]


async def test_a_key_is_given_only_model_ids_a_request_can_use(admin: Admin) -> None:
    """A typo in allowed_models would leave a key refused every model: ids are checked as a request's would be."""
    tenant = await admin.tenant()
    ok = await admin.key(tenant, allowed_models=["moe-orchestrator-code", "claude-sonnet-4-5", "gpt-4o"])
    assert ok["allowed_models"] == ["moe-orchestrator-code", "claude-sonnet-4-5", "gpt-4o"]
    for model in ("moe-orchestrater", "claude-*", "llama3"):  # a typo, a pattern, an id the model map does not take
        bad = await admin.call("POST", "/keys", {"name": "x", "tenant_ids": [tenant], "allowed_models": [model]}, 400)
        assert (bad["error"]["type"], bad["error"]["code"], bad["error"]["param"]) == (
            "invalid_request_error", "model_not_found", "allowed_models")
        assert f"'{model}'" in bad["error"]["message"] and "moe-orchestrator-concise" in bad["error"]["message"]
    missing = await admin.call("PATCH", f"/keys/{ok['id']}", {"allowed_models": ["moe-orchestrator@no-such"]}, 404)
    assert (missing["error"]["code"], missing["error"]["param"]) == ("template_not_found", "allowed_models")
    assert (await admin.call("GET", f"/keys/{ok['id']}"))["allowed_models"] == ok["allowed_models"]  # unchanged


@pytest.mark.parametrize("limits", [{"requests_per_minute": -1}, {"tokens_per_day": 10**20},
                                    {"cost_per_month": -0.5}, {"tokens_per_week": 5}])
async def test_negative_absurd_or_unknown_limits_are_a_400(admin: Admin, limits: dict[str, int]) -> None:
    bad = await admin.call("POST", "/tenants", {"id": f"t-{uuid.uuid4().hex[:8]}", "limits": limits}, 400)
    assert (bad["error"]["type"], bad["error"]["code"]) == ("invalid_request_error", "invalid_value")
    assert bad["error"]["param"] == f"limits.{next(iter(limits))}"
    tenant = await admin.tenant()
    await admin.call("POST", "/keys", {"name": "x", "tenant_ids": [tenant], "limits": limits}, 400)
    key_id = (await admin.key(tenant))["id"]
    await admin.call("PATCH", f"/keys/{key_id}", {"limits": limits}, 400)


async def test_admin_api_refusals(admin: Admin) -> None:
    tenant = await admin.tenant()
    exists = await admin.call("POST", "/tenants", {"id": tenant}, 409)
    assert exists["error"]["code"] == "tenant_exists"
    missing = await admin.call("POST", "/keys", {"name": "x", "tenant_ids": ["no-such-tenant-x"]}, 404)
    assert missing["error"]["code"] == "tenant_not_found"
    await admin.call("POST", "/keys/000000000000/rotate", expect=404)
    await admin.call("PATCH", f"/tenants/{tenant}", {"limits": {"tokens_per_day": 5}, "bogus": 1}, 400)
    updated = await admin.call("PATCH", f"/tenants/{tenant}", {"limits": {"tokens_per_day": 5}})
    assert updated["limits"]["tokens_per_day"] == 5


async def test_the_key_cli_publishes_audit_events(infra: dict[str, str]) -> None:
    env = {**os.environ, "MOE_TOPIC_NAMESPACE": new_namespace("cli"), "MOE_KAFKA_BOOTSTRAP": infra["kafka"],
           "MOE_REDIS_URL": infra["redis"], "MOE_POSTGRES_DSN": infra["postgres"]}

    def run(*args: str, dsn: str = infra["postgres"], **more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "control_plane.keys", *args],
                              env={**env, "MOE_POSTGRES_DSN": dsn, **more},
                              capture_output=True, text=True, timeout=120, check=False)

    def cli(*args: str) -> str:
        done = run(*args)
        assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
        return done.stdout.strip()

    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    typo = await asyncio.to_thread(run, "create", "--name", "cli-bot", "--tenant", tenant)  # not created by a typo
    assert (typo.returncode, typo.stdout) == (1, "") and f"no tenant '{tenant}'" in typo.stderr
    wrong = infra["postgres"].replace("://", "://nobody-here:wrong@", 1) if "@" not in infra["postgres"] else \
        infra["postgres"].split("://", 1)[0] + "://nobody-here:wrong@" + infra["postgres"].rsplit("@", 1)[1]
    refused = await asyncio.to_thread(run, "list", dsn=wrong)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr and "make keys" in refused.stderr
    assert "wrong" not in refused.stderr  # the password is never printed
    token = await asyncio.to_thread(cli, "create", "--name", "cli-bot", "--tenant", tenant, "--new-tenant")
    key_id = token.split("-")[1]
    await asyncio.to_thread(cli, "revoke", key_id)
    # no key without its record: Kafka unreachable, the key is revoked again and its secret never printed
    unrecorded = await asyncio.to_thread(run, "create", "--name", "ghost", "--role", "operator", "--tenant", tenant,
                                         MOE_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert (unrecorded.returncode, unrecorded.stdout) == (1, "") and "revoked again" in unrecorded.stderr
    ghosts = [line for line in cli("list").splitlines() if "\tghost\t" in line]
    assert ghosts and all(line.endswith("\trevoked") for line in ghosts), ghosts
    # a person's key from the operator's CLI (the admin API mints none for another person); the actor is the
    # process's account, not $USER
    person_token = await asyncio.to_thread(run, "create", "--name", "pat's key", "--role", "admin", "--tenant", tenant,
                                           "--person", "Pat", USER="someone-else", LOGNAME="someone-else")
    assert person_token.returncode == 0, person_token.stderr
    person_key_id = person_token.stdout.strip().split("-")[1]
    audit_topic = f"{env['MOE_TOPIC_NAMESPACE']}.audit.v1"
    async with TopicReader(infra["kafka"], audit_topic) as reader:
        events = await reader.wait(audit_topic, lambda e: e["subject"] == f"key:{key_id}", count=2)
        made = await reader.wait(audit_topic, lambda e: e["subject"] == f"tenant:{tenant}", count=1)
        [pat] = await reader.wait(audit_topic, lambda e: e["subject"] == f"key:{person_key_id}", count=1)
        [person] = await reader.wait(audit_topic, lambda e: e["action"] == "principal.created"
                                     and e["tenant_id"] == tenant, count=1)
    assert [e["action"] for e in events] == ["key.created", "key.revoked"]
    assert made[0]["action"] == "tenant.created" and made[0]["actor"].startswith("cli:")  # --new-tenant, audited
    account = f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
    assert events[0]["actor"] == account and events[0]["tenant_id"] == tenant
    assert (pat["actor"], person["actor"]) == (account, account)  # not cli:someone-else
    assert pat["details"]["principal"] == person["subject"].removeprefix("principal:")
    assert person["subject"].startswith("principal:p-") and person["details"]["display_name"] == "Pat"
    assert token not in str(events)


async def test_key_settings_change_over_the_api_and_apply_at_once(accounts_gateway: ServiceProcess,
                                                                  admin: Admin) -> None:
    tenant = await admin.tenant()
    key = await admin.key(tenant)
    client = _oai(accounts_gateway, key["secret"])
    assert [m.id async for m in client.models.list()]  # cached on this replica now
    changed = await admin.call("PATCH", f"/keys/{key['id']}", {
        "name": "renamed", "expires_in_days": 1, "allowed_models": ["moe-orchestrator-code"],
        "limits": {"tokens_per_month": 0}})
    assert (changed["name"], changed["allowed_models"]) == ("renamed", ["moe-orchestrator-code"])
    assert {k: v for k, v in changed["limits"].items() if v is not None} == {"tokens_per_month": 0}
    assert changed["expires_at"] is not None and changed["status"] == "active"
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="moe-orchestrator-code",
                                             messages=[{"role": "user", "content": "x"}])
    cleared = await admin.call("PATCH", f"/keys/{key['id']}", {"clear_expiry": True, "clear_allowed_models": True,
                                                               "limits": {}})
    assert (cleared["expires_at"], cleared["allowed_models"]) == (None, None)
    assert set(cleared["limits"].values()) == {None}
    assert (await admin.call("GET", f"/keys/{key['id']}"))["name"] == "renamed"
    assert tenant in [t["id"] for t in (await admin.call("GET", "/tenants"))["data"]]
    assert (await admin.call("GET", f"/tenants/{tenant}"))["disabled"] is False
