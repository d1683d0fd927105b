"""An egress change put in force by two people under the signed policy bundle the control plane serves (issue 52):
a fleet of its own whose control plane signs the bundle (MOE_OPA_BUNDLE_SIGNING_KEY) and a private OPA run as the
chart runs it (token authentication) that long-polls it as the local fleet's does (5 s: the control plane answers a
held poll when the approval commits), holding only the public key. The approval answers once OPA names
the new revision, which is then the version the egress records carry, and the next personal request is refused with
no server called; OPA refuses a module put with its token (the bundle owns every path: an unapproved put cannot
happen); a restarted OPA loads the approved change again from the control plane. Cost: one fleet start of its own
(about a minute on two cores) and four requests."""

from __future__ import annotations

import secrets
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from fastapi import FastAPI, Request, Response

from control_plane.policy.bundle_server import PolicyBundles
from control_plane.policy.egress_simulation import EGRESS_PACKAGE
from control_plane.policy.settings import PolicySettings
from moe_core.policy.bundle import NAME, opa_config
from tests.conftest import Scripted
from tests.e2e.helpers import calls_for
from tests.lineage.conftest import LineageFleet
from tests.lineage.control_plane.test_egress_policy_changes import _ask, _call, _candidate, _egress, _script, _version
from tests.support import opa
from tests.support.audited_fleet import audited_fleet
from tests.support.keys import new_key, new_person_keys
from tests.support.namespaces import new_namespace
from tests.support.uvicorn_thread import bind, serve, url
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
TOKEN = secrets.token_hex(24)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Relay:
    """Where OPA polls: the bundle of the same files signed with the same key, built here, until the fleet's control
    plane is up (the planner decides at start, so OPA needs its policies before the fleet starts), then the control
    plane's own, relayed (`to`). No change is in force before: both are the same revision."""

    def __init__(self, settings: PolicySettings) -> None:
        async def none() -> None:
            return None

        self.seed = PolicyBundles(settings, none)
        self.to = ""
        app = FastAPI()
        app.add_api_route(f"/v1/opa/bundles/{NAME}.tar.gz", self.serve, methods=["GET"])
        sock = bind()
        self.url = url("127.0.0.1", sock)
        self.stop = serve(app, sock, what="the bundle relay")

    async def serve(self, request: Request) -> Response:
        if not self.to:
            return await self.seed.serve(request)
        headers = {k: v for k, v in request.headers.items() if k in ("authorization", "if-none-match", "prefer")}
        async with httpx.AsyncClient(timeout=30) as http:  # a long poll is held up to 5 s
            got = await http.get(f"{self.to}/v1/opa/bundles/{NAME}.tar.gz", headers=headers)
        return Response(got.content, got.status_code,
                        {k: v for k, v in got.headers.items() if k in ("etag", "content-type")})


@pytest.fixture(scope="module")
def bundled(infra: dict[str, str], scripted_server: Scripted, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[tuple[LineageFleet, opa.Engine]]:
    work = tmp_path_factory.mktemp("egress-bundle")
    shutil.copytree(opa.POLICY_DIR, work / "opa")
    key, public = opa.rsa_keys(work)
    env = {"MOE_OPA_TOKEN": TOKEN, "MOE_OPA_POLICY_DIR": str(work / "opa"), "MOE_OPA_BINARY": opa.binary(),
           "MOE_OPA_BUNDLE_SIGNING_KEY": str(key), "MOE_EGRESS_CHECK_S": "0.1", "MOE_EGRESS_RECONCILE_S": "0.5",
           "MOE_OPA_BUNDLE_WAIT_S": "30"}
    relay = Relay(PolicySettings(opa_policy_dir=work / "opa", opa_token=TOKEN, opa_bundle_signing_key=str(key)))
    (work / "engine").mkdir()
    try:
        with opa.polling_engine(work / "engine", opa_config(relay.url, public, token=True, long_poll_s=5),
                                TOKEN) as engine, \
                audited_fleet(infra, scripted_server.url, "egb", MOE_OPA_URL=engine.url, **env) as running:
            fleet = LineageFleet.of(running, infra, work, work)
            relay.to = fleet.control_plane
            engine.policy_dir = work / "opa"
            yield fleet, engine
    finally:
        relay.stop()


def _egress_text(engine: opa.Engine) -> str:
    body = httpx.get(f"{engine.url}/v1/policies", headers=AUTH, timeout=10).json()
    return str(next(m["raw"] for m in body["result"] if EGRESS_PACKAGE.search(m["raw"])))


def _revision(engine: opa.Engine) -> str:
    body = httpx.get(f"{engine.url}/v1/data/system/bundles", headers=AUTH, timeout=10).json()["result"]
    return str(body["policies"]["manifest"]["revision"])


def test_an_approval_is_a_new_revision_opa_loads_and_no_module_can_be_put_beside_it(
        bundled: tuple[LineageFleet, opa.Engine], infra: dict[str, str], scripted_server: Scripted) -> None:
    fleet, engine = bundled
    tenant = new_namespace("egress-bundle")
    alice, bob = new_person_keys(infra["postgres"], ("bundle-alice", "operator", [tenant]),
                                 ("bundle-bob", "operator", [tenant]))
    user = new_key(infra["postgres"], "bundle-user", "user", [tenant])
    m = uuid.uuid4().hex[:8]
    _script(scripted_server, m)
    first = _ask(fleet, user, f"Patient question {m}-p", "personal")
    in_force = _version(fleet, alice)
    assert _egress(fleet, first)["details"]["policy_version"] == in_force == _revision(engine)

    module = _candidate(engine)
    sim = _call(fleet, "POST", "/v1/egress/simulations", alice, {"module": module, "days": 1, "tenant_id": tenant})
    assert sim.status_code == 200, sim.text
    change = sim.json()["id"]
    assert _call(fleet, "POST", f"/v1/egress/changes/{change}/propose", alice).status_code == 200
    applied = _call(fleet, "POST", f"/v1/egress/changes/{change}/approve", bob)
    assert applied.status_code == 200 and applied.json()["status"] == "applied", applied.text
    new_version = applied.json()["applied_version"]
    assert new_version != in_force and new_version == _revision(engine) == _version(fleet, alice)
    assert _egress_text(engine) == module

    time.sleep(0.5)  # the planner reads the policy version again every MOE_EGRESS_CHECK_S (0.1 s here)
    m2 = uuid.uuid4().hex[:8]
    _script(scripted_server, m2)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _ask(fleet, user, f"Patient question {m2}-p", "personal")
    assert refused.value.code == "data_class_forbidden"
    assert calls_for(scripted_server.calls(), m2) == [], "no server was called"
    after = _ask(fleet, user, f"Open question {m2}-i", "internal")
    assert _egress(fleet, after)["details"]["policy_version"] == new_version

    # the insider with OPA's token: refused, the bundle owns every path
    loose = (Path(engine.policy_dir) / "egress.rego").read_text() + "\n# put without approval\n"
    put = httpx.put(f"{engine.url}/v1/policies/egress.rego", content=loose.encode(), timeout=10,
                    headers={**AUTH, "Content-Type": "text/plain"})
    assert put.status_code == 400 and "bundle" in put.text, put.text
    assert _egress_text(engine) == module

    engine.restart()  # a new OPA process: it loads the approved change again from the control plane
    eventually(lambda: _revision(engine) == new_version, 60)
    assert _egress_text(engine) == module
