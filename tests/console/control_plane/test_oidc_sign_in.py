"""Console sign-in through a real OpenID Connect provider (Dex, tests/support/dex.py) on the real Postgres,
Redis and Kafka: the control plane runs in this process, the provider is a real server on loopback, and the
test plays the browser — GET the console's sign-in, follow the redirect to Dex, POST Dex's own password form
(read from its HTML), carry the code back to the callback — then uses the console session.

Refusals, each with its reason and a 4xx/502 status, never a 500: a person nobody provisioned, a console whose
client's tokens carry another audience, a provider whose discovery names another issuer, a tampered nonce, a
tampered or replayed state, a person outside the allowed groups (the groups claim Dex issues).

A principal disabled by an admin: its console session ends and its keys answer 401 principal_disabled at once;
enabled again, its keys work; both changes audit events, each a policy decision with the policy's version."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI

from control_plane.app import create_app
from control_plane.console.oidc_settings import OidcSettings
from control_plane.settings import ControlPlaneSettings
from moe_core.access.keystore import KeyStore
from moe_core.access.principals import Principals
from tests.support.dex import Client, Dex, User, running_dex
from tests.support.namespaces import new_namespace
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.infra

CONSOLE = "http://console.test"
CALLBACK = f"{CONSOLE}/console/oidc/callback"
ADMINS = ("moe-console-admins",)  # MOE_OIDC_ADMIN_GROUPS: the console's admin role comes from the provider's groups
ALICE = User(f"alice-{uuid.uuid4().hex[:6]}@example.org", "correct horse battery", "Alice", ADMINS)
MALLORY = User(f"mallory-{uuid.uuid4().hex[:6]}@example.org", "staple", "Mallory", ADMINS)
BOB = User(f"bob-{uuid.uuid4().hex[:6]}@example.org", "tr0ub4dor", "Bob", ADMINS)
CAROL = User(f"carol-{uuid.uuid4().hex[:6]}@example.org", "hunter22", "Carol", ("moe-console-admins", "staff"))
ERIN = User(f"erin-{uuid.uuid4().hex[:6]}@example.org", "letmein!", "Erin", ("staff",))
DAVE = User(f"dave-{uuid.uuid4().hex[:6]}@example.org", "swordfish", "Dave", ADMINS)


@dataclass
class Consoles:
    dex: Dex
    tenant: str
    admin: str  # an admin key (automation) of the tenant
    apps: dict[str, httpx.AsyncClient]  # "good", "allow-list", "group-list", "other-audience", "other-issuer"
    keystore: KeyStore
    namespace: str
    kafka: str


@pytest.fixture(scope="module")
def dex() -> Iterator[Dex]:
    clients = [Client("moe-console", uuid.uuid4().hex, CALLBACK), Client("other-app", uuid.uuid4().hex, CALLBACK)]
    with running_dex(clients, [ALICE, MALLORY, BOB, CAROL, ERIN, DAVE]) as running:
        yield running


def _oidc(dex: Dex, client: str, issuer: str | None = None, **more: str) -> OidcSettings:
    c = dex.clients[client]
    return OidcSettings(issuer=issuer or dex.issuer, client_id=c.id, client_secret=c.secret,
                        redirect_uri=c.redirect_uri, provider_name="Dex",
                        **{"admin_groups": ",".join(ADMINS), "scopes": "openid email profile groups", **more})


@pytest.fixture(scope="module")
async def consoles(infra: dict[str, str], dex: Dex) -> AsyncIterator[Consoles]:
    common: dict[str, Any] = {"topic_namespace": new_namespace("oidc"), "kafka_bootstrap": infra["kafka"],
                              "redis_url": infra["redis"], "postgres_dsn": infra["postgres"],
                              "opa_url": infra["opa"]}
    localhost = dex.issuer.replace("127.0.0.1", "localhost")  # the same server, named otherwise than it names itself
    variants = {"good": _oidc(dex, "moe-console"),
                "other-audience": _oidc(dex, "other-app", audience="moe-console"),
                "other-issuer": _oidc(dex, "moe-console", issuer=localhost)}
    keystore = await KeyStore.connect(infra["postgres"], cache_ttl_s=0)
    tenant = f"oidc-{uuid.uuid4().hex[:8]}"
    variants["allow-list"] = _oidc(dex, "moe-console", allowed_emails=f"someone@example.org, {BOB.email.upper()}",
                                   default_tenant=tenant)
    variants["group-list"] = _oidc(dex, "moe-console", allowed_groups="moe-console-admins", default_tenant=tenant)
    variants["no-admin-groups"] = _oidc(dex, "moe-console", admin_groups="")
    admin = (await keystore.create("oidc-test-admin", "admin", [tenant]))[1]
    async with AsyncExitStack() as stack:
        stack.push_async_callback(keystore.close)
        clients: dict[str, httpx.AsyncClient] = {}
        for name, oidc in variants.items():
            app: FastAPI = create_app(ControlPlaneSettings(**common), oidc=oidc)
            await stack.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE, timeout=30))
        yield Consoles(dex, tenant, admin, clients, keystore, common["topic_namespace"], infra["kafka"])


class _Form(HTMLParser):
    """The first form of a page: its action and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and self.action is None:
            self.action, self._inside = found.get("action") or "", True
        elif tag == "input" and self._inside and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


async def sign_in(console: httpx.AsyncClient, user: User,
                  tamper: Callable[[str], str] | None = None) -> tuple[httpx.Response, str]:
    """Drive the whole sign-in as a browser would; the callback's response and the callback URL Dex sent."""
    start = await console.get("/console/oidc/start")
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    async with httpx.AsyncClient(timeout=30) as browser:  # the browser's side of the provider
        page = await browser.get(tamper(authorize) if tamper else authorize, follow_redirects=True)
        assert page.status_code == 200, page.text[:500]
        form = _Form()
        form.feed(page.text)
        assert form.action is not None and {"login", "password"} <= set(form.fields), page.text[:800]
        answer = await browser.post(urljoin(str(page.url), form.action),
                                    data={**form.fields, "login": user.email, "password": user.password})
        while answer.is_redirect and not answer.headers["location"].startswith(CALLBACK):
            answer = await browser.get(urljoin(str(answer.url), answer.headers["location"]))
        assert answer.is_redirect, answer.text[:800]
    callback = answer.headers["location"]
    return await console.get(callback.removeprefix(CONSOLE)), callback


def _with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, name: value})))


def refused(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text[:800]
    assert "Sign-in refused" in response.text and reason in response.text, response.text[:800]


async def test_a_provisioned_person_signs_in_through_dex_and_the_session_is_theirs(consoles: Consoles) -> None:
    console = consoles.apps["good"]
    admin = {"Authorization": f"Bearer {consoles.admin}"}
    by_email = await console.post("/v1/admin/principals", headers=admin, json={
        "kind": "person", "tenant_id": consoles.tenant, "display_name": "Alice A.", "email": ALICE.email})
    assert by_email.status_code == 400 and "never by an e-mail address" in by_email.text, by_email.text
    made = await console.post("/v1/admin/principals", headers=admin, json={
        "kind": "person", "tenant_id": consoles.tenant, "display_name": "Alice A.", "email": ALICE.email,
        "oidc_issuer": consoles.dex.issuer, "oidc_subject": ALICE.subject})
    assert made.status_code == 201, made.text
    person = made.json()
    assert (person["kind"], person["oidc_subject"], person["key_ids"]) == ("person", ALICE.subject, [])

    login = await console.get("/console/login")
    assert 'href="/console/oidc/start"' in login.text and "Sign in with Dex" in login.text
    response, _ = await sign_in(console, ALICE)
    assert response.status_code == 200, response.text
    keys = await console.get("/console/keys")  # the session cookie set by the callback works
    assert keys.status_code == 200 and 'id="new-key"' in keys.text

    bound = (await console.get(f"/v1/admin/principals/{person['id']}", headers=admin)).json()
    assert (bound["oidc_issuer"], bound["oidc_subject"]) == (consoles.dex.issuer, ALICE.subject)
    assert len(bound["key_ids"]) == 1  # the session's own key, the person's
    session_key = await consoles.keystore.get(bound["key_ids"][0])
    assert session_key is not None and session_key.principal_id == person["id"] and session_key.role == "admin"
    assert session_key.expires_at is not None and session_key.tenant_ids == (consoles.tenant,)

    again, _ = await sign_in(console, ALICE)  # the second sign-in finds the same person
    assert again.status_code == 200
    assert len((await console.get(f"/v1/admin/principals/{person['id']}", headers=admin)).json()["key_ids"]) == 2
    assert len([p for p in await Principals(consoles.keystore.pool).list(consoles.tenant)
                if p.email == ALICE.email]) == 1

    page = await console.get("/console/keys")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    out = await console.post("/console/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    keys_now = {k.id: k for k in await consoles.keystore.keys(principal_id=person["id"])}
    assert keys_now[session_key.id].revoked_at is None  # the first session is another session
    assert [k.revoked_at is not None for k in keys_now.values()].count(True) == 1  # sign-out revoked its own key
    assert (await console.get("/console/keys")).status_code == 303  # and the session is gone


async def test_an_address_an_admin_typed_binds_nobody(consoles: Consoles) -> None:
    """A tenant admin names Mallory's address for a person of another subject (say, an account of their own): the
    provider vouching for that address at sign-in does not make Mallory that person, nor bind her subject to it;
    and the person made so counts toward no approval until the subject itself signs in."""
    console, admin = consoles.apps["good"], {"Authorization": f"Bearer {consoles.admin}"}
    made = await console.post("/v1/admin/principals", headers=admin, json={
        "kind": "person", "tenant_id": consoles.tenant, "display_name": "Not Mallory", "email": MALLORY.email,
        "oidc_issuer": consoles.dex.issuer, "oidc_subject": f"someone-else-{uuid.uuid4().hex[:6]}"})
    assert made.status_code == 201, made.text
    refused((await sign_in(console, MALLORY))[0], 403, "not provisioned")
    found = (await console.get(f"/v1/admin/principals/{made.json()['id']}", headers=admin)).json()
    assert found["oidc_subject"] != MALLORY.subject and found["key_ids"] == []
    assert await Principals(consoles.keystore.pool).by_subject(consoles.dex.issuer, MALLORY.subject) is None


async def test_a_person_nobody_provisioned_is_refused(consoles: Consoles) -> None:
    response, _ = await sign_in(consoles.apps["good"], MALLORY)
    refused(response, 403, "not provisioned")
    assert MALLORY.subject in response.text  # what an operator provisions her by
    assert await Principals(consoles.keystore.pool).by_subject(consoles.dex.issuer, MALLORY.subject) is None


async def test_an_allowed_address_creates_the_person_at_first_sign_in_only(consoles: Consoles) -> None:
    principals = Principals(consoles.keystore.pool)
    assert [p for p in await principals.list() if p.email == BOB.email] == []
    response, _ = await sign_in(consoles.apps["allow-list"], BOB)
    assert response.status_code == 200, response.text
    (bob,) = [p for p in await principals.list() if p.email == BOB.email]
    assert (bob.kind, bob.tenant, bob.display_name, bob.oidc_issuer) == ("person", consoles.tenant, "Bob",
                                                                         consoles.dex.issuer)
    again, _ = await sign_in(consoles.apps["allow-list"], BOB)
    assert again.status_code == 200
    assert [p.id for p in await principals.list() if p.email == BOB.email] == [bob.id]
    refused((await sign_in(consoles.apps["allow-list"], MALLORY))[0], 403, "not provisioned")


async def test_a_token_for_another_audience_is_refused(consoles: Consoles) -> None:
    response, _ = await sign_in(consoles.apps["other-audience"], ALICE)  # Dex issues it for other-app
    refused(response, 401, "wrong audience")
    assert "other-app" in response.text and "moe-console" in response.text


async def test_a_provider_that_names_another_issuer_is_refused(consoles: Consoles) -> None:
    response = await consoles.apps["other-issuer"].get("/console/oidc/start")
    refused(response, 502, "wrong issuer")
    assert consoles.dex.issuer in response.text


async def test_a_tampered_nonce_is_refused(consoles: Consoles) -> None:
    response, _ = await sign_in(consoles.apps["good"], ALICE,
                                tamper=lambda url: _with_param(url, "nonce", "forged-" + uuid.uuid4().hex))
    refused(response, 401, "wrong nonce")


async def test_a_tampered_or_replayed_state_is_refused(consoles: Consoles) -> None:
    console = consoles.apps["good"]
    response, callback = await sign_in(console, ALICE, tamper=lambda url: _with_param(url, "state", "forged"))
    refused(response, 400, "wrong state")

    ok, callback = await sign_in(console, ALICE)
    assert ok.status_code == 200
    state = parse_qs(urlsplit(callback).query)["state"][0]
    console.cookies.set("moe_console_oidc", state, domain="console.test", path="/console")  # as if kept
    replay = await console.get(callback.removeprefix(CONSOLE))
    refused(replay, 400, "unknown or expired state")


async def test_a_member_of_an_allowed_group_is_created_at_first_sign_in_and_others_are_refused(
        consoles: Consoles) -> None:
    principals = Principals(consoles.keystore.pool)
    response, _ = await sign_in(consoles.apps["group-list"], CAROL)  # Dex's groups claim names moe-console-admins
    assert response.status_code == 200, response.text
    (carol,) = [p for p in await principals.list() if p.email == CAROL.email]
    assert (carol.kind, carol.tenant, carol.oidc_issuer) == ("person", consoles.tenant, consoles.dex.issuer)
    refused((await sign_in(consoles.apps["group-list"], ERIN))[0], 403, "admin groups (moe-console-admins)")
    assert [p for p in await principals.list() if p.email == ERIN.email] == []
    refused((await sign_in(consoles.apps["allow-list"], ERIN))[0], 403, "admin groups (moe-console-admins)")


async def test_the_console_role_comes_from_the_providers_groups(consoles: Consoles) -> None:
    """A person an admin provisioned, signing in without the provider's admin group, is refused (not made a tenant
    admin by signing in) and is not bound; a console without MOE_OIDC_ADMIN_GROUPS signs nobody in."""
    console, principals = consoles.apps["good"], Principals(consoles.keystore.pool)
    made = await console.post("/v1/admin/principals", headers={"Authorization": f"Bearer {consoles.admin}"}, json={
        "kind": "person", "tenant_id": consoles.tenant, "display_name": "Erin", "oidc_issuer": consoles.dex.issuer,
        "oidc_subject": ERIN.subject})
    assert made.status_code == 201, made.text
    refused((await sign_in(console, ERIN))[0], 403, "admin groups (moe-console-admins)")
    assert await consoles.keystore.keys(principal_id=made.json()["id"]) == []  # no session key made
    assert [p for p in await principals.list() if p.email == ERIN.email] == []
    unconfigured = await consoles.apps["no-admin-groups"].get("/console/oidc/start")
    refused(unconfigured, 503, "MOE_OIDC_ADMIN_GROUPS")


async def test_a_disabled_person_is_signed_out_and_their_keys_refused_until_enabled(consoles: Consoles) -> None:
    console, admin = consoles.apps["good"], {"Authorization": f"Bearer {consoles.admin}"}
    made = await console.post("/v1/admin/principals", headers=admin, json={
        "kind": "person", "tenant_id": consoles.tenant, "display_name": "Dave", "oidc_issuer": consoles.dex.issuer,
        "oidc_subject": DAVE.subject})
    assert made.status_code == 201, made.text
    dave = made.json()["id"]
    # another admin mints no key for Dave (a person's keys are their own); the operator's key CLI may
    minted = await console.post("/v1/admin/keys", headers=admin, json={
        "name": "dave's automation", "tenant_ids": [consoles.tenant], "role": "admin", "principal_id": dave})
    assert (minted.status_code, minted.json()["error"]["code"]) == (403, "person_key_forbidden"), minted.text
    _, secret = await consoles.keystore.create("dave's automation", "admin", [consoles.tenant], principal_id=dave)
    daves = {"Authorization": f"Bearer {secret}"}
    assert (await console.get(f"/v1/admin/principals/{dave}", headers=daves)).status_code == 200
    response, _ = await sign_in(console, DAVE)
    assert response.status_code == 200 and (await console.get("/console/keys")).status_code == 200

    audit = f"{consoles.namespace}.audit.v1"
    async with TopicReader(consoles.kafka, audit) as reader:
        off = await console.post(f"/v1/admin/principals/{dave}/disable", headers=admin)
        assert off.status_code == 200, off.text
        assert off.json()["disabled_at"] is not None
        assert (await console.get("/console/keys")).status_code == 303  # the session ended at once
        refused_key = await console.get(f"/v1/admin/principals/{dave}", headers=daves)
        assert refused_key.status_code == 401 and refused_key.json()["error"] == {
            "message": "The principal this API key belongs to is disabled.", "type": "invalid_request_error",
            "param": None, "code": "principal_disabled"}
        refused((await sign_in(console, DAVE))[0], 403, "is disabled")

        on = await console.post(f"/v1/admin/principals/{dave}/enable", headers=admin)
        assert on.status_code == 200 and on.json()["disabled_at"] is None
        assert (await console.get(f"/v1/admin/principals/{dave}", headers=daves)).status_code == 200

        changes = await reader.wait(audit, lambda e: e["subject"] == f"principal:{dave}"
                                    and e["action"] in ("principal.disabled", "principal.enabled"), count=2)
        decided = await reader.wait(audit, lambda e: e["subject"] == f"principal:{dave}"
                                    and e["action"] == "policy_decision", count=2)
    admin_id = consoles.admin.split("-")[1]  # tokens are moe-<key id>-<secret>
    assert sorted(e["action"] for e in changes) == ["principal.disabled", "principal.enabled"]
    assert {e["actor"] for e in changes} == {f"key:{admin_id}"} and all(e["details"]["by_principal"] for e in changes)
    assert {e["details"]["decision"] for e in decided} == {"principal.disable", "principal.enable"}
    assert all(e["details"]["policy_version"].startswith("sha256:") for e in decided)

    own = (await consoles.keystore.get(admin_id))
    assert own is not None
    self_disable = await console.post(f"/v1/admin/principals/{own.principal_id}/disable", headers=admin)
    assert (self_disable.status_code, self_disable.json()["error"]["code"]) == (403, "self_disable")
    elsewhere = (await consoles.keystore.create("elsewhere", "user", [f"oidc-x-{uuid.uuid4().hex[:6]}"]))[0]
    hidden = await console.post(f"/v1/admin/principals/{elsewhere.principal_id}/disable", headers=admin)
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "principal_not_found")
