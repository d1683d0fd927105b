"""A candidate egress policy simulated on a real fleet's recorded egress decisions and put in force by two people
(issue 50): a fleet of its own (Kafka, Postgres, codex-lineage's signed record) over a private OPA run as the chart
runs it (token authentication), so pushing a policy touches no other test. Recorded: one internal and one personal
request. The candidate denies the scripted server to personal data: its simulation (by `opa eval`, nothing applied)
lists exactly the personal request's model decisions; bad Rego is a 400; the proposer cannot approve it, a second
person can, which pushes it to OPA and bumps the version the egress records carry; the next personal request is
refused with the API's error and no server is called, while an internal one still goes. Each step is on the record.
Cost: one fleet start of its own (about a minute on two cores) and five requests."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, plan_reply
from tests.lineage.conftest import LineageFleet
from tests.support import opa
from tests.support.audited_fleet import audited_fleet
from tests.support.keys import new_key, new_person_keys
from tests.support.namespaces import new_namespace
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
RULE = "personal-not-on-scripted"


@pytest.fixture(scope="module")
def own(infra: dict[str, str], scripted_server: Scripted, tmp_path_factory: pytest.TempPathFactory,
        ) -> Iterator[tuple[LineageFleet, opa.Engine]]:
    work = tmp_path_factory.mktemp("egress-changes")
    token = secrets.token_hex(24)  # OPA's API authorization admits tokens of 32 characters or more
    with opa.private_engine(work, token=token) as engine:
        env = {"MOE_OPA_URL": engine.url, "MOE_OPA_TOKEN": token, "MOE_OPA_POLICY_DIR": str(engine.policy_dir),
               "MOE_OPA_BINARY": opa.binary(), "MOE_EGRESS_CHECK_S": "0.1"}
        with audited_fleet(infra, scripted_server.url, "egr", **env) as running:
            yield LineageFleet.of(running, infra, work, work), engine


@pytest.fixture(scope="module")
def people(infra: dict[str, str]) -> dict[str, str]:
    tenant = new_namespace("egress-change")
    alice, bob = new_person_keys(infra["postgres"], ("egress-alice", "operator", [tenant]),
                                 ("egress-bob", "operator", [tenant]))
    return {"tenant": tenant, "alice": alice, "bob": bob,
            "service": new_key(infra["postgres"], "egress-service", "operator", [tenant]),
            "user": new_key(infra["postgres"], "egress-user", "user", [tenant])}


def _candidate(engine: opa.Engine) -> str:
    """The egress module in force with one rule first: personal data may not reach the server "scripted"."""
    text = (engine.policy_dir / "egress.rego").read_text()
    first = f'\t{{"id": "{RULE}", "classes": {{"personal"}}, "kinds": {{"model"}}, "where": "not_scripted"}},\n'
    return text.replace("rules := [\n", "rules := [\n" + first, 1) + '\nmeets("not_scripted") if ' \
        'input.server.name != "scripted"\n'


def _call(fleet: LineageFleet, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(method, f"{fleet.control_plane}{path}", json=body, timeout=90,
                         headers={"Authorization": f"Bearer {key}"})


def _ask(fleet: LineageFleet, key: str, question: str, data_class: str) -> str:
    client = openai.OpenAI(base_url=f"{fleet.gateway}/v1", api_key=key, max_retries=0, timeout=90,
                           default_headers={"x-moe-data-class": data_class})
    done = client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": question}])
    return done.id.removeprefix("chatcmpl-")


def _script(scripted: Scripted, m: str) -> None:
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Answer {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Fine.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": "Fine."}])


def _egress(fleet: LineageFleet, rid: str) -> dict[str, Any]:
    records = fleet.records(rid, until="AuditEvent")
    return next(r for r in records if r["type"] == "AuditEvent" and r["action"].startswith("egress."))


def _version(fleet: LineageFleet, key: str) -> str:
    return str(_call(fleet, "GET", "/v1/admin/policy", key).json()["version"])


def test_a_candidate_is_simulated_on_recorded_decisions_and_applied_by_a_second_person(
        own: tuple[LineageFleet, opa.Engine], people: dict[str, str], scripted_server: Scripted) -> None:
    fleet, engine = own
    m = uuid.uuid4().hex[:8]
    _script(scripted_server, m)
    internal = _ask(fleet, people["user"], f"Open question {m}-i", "internal")
    personal = _ask(fleet, people["user"], f"Patient question {m}-p", "personal")
    recorded = _egress(fleet, personal)
    _egress(fleet, internal)
    expected = {f"{d['role']} {d['server']}/{d['model']}" for d in recorded["details"]["decisions"]
                if d["kind"] == "model" and d["outcome"] == "allow"}
    assert expected and all(" scripted/" in t for t in expected)
    in_force = _version(fleet, people["alice"])

    sim = _call(fleet, "POST", "/v1/egress/simulations", people["alice"],
                {"module": _candidate(engine), "days": 1, "tenant_id": people["tenant"]})
    assert sim.status_code == 200, sim.text
    result = sim.json()
    assert {c["response_id"] for c in result["changed"]} == {personal}
    assert {c["target"] for c in result["changed"]} == expected
    assert all(c["data_class"] == "personal" and c["before"]["outcome"] == "allow"
               and c["after"] == {"outcome": "deny", "rule": RULE} for c in result["changed"])
    assert result["counts"]["requests"] == 2 and result["counts"]["to_deny"] == len(expected)
    assert result["counts"]["to_allow"] == 0 and result["policy_in_force"] == in_force
    assert _version(fleet, people["alice"]) == in_force, "simulating applies nothing"

    change = result["id"]
    assert _call(fleet, "POST", f"/v1/egress/changes/{change}/approve", people["bob"]).status_code == 409
    assert _call(fleet, "POST", f"/v1/egress/changes/{change}/propose", people["alice"],
                 {"note": "personal data off scripted"}).json()["status"] == "pending"
    own_approval = _call(fleet, "POST", f"/v1/egress/changes/{change}/approve", people["alice"])
    assert own_approval.status_code == 403 and own_approval.json()["error"]["code"] == "self_approval"
    service = _call(fleet, "POST", f"/v1/egress/changes/{change}/approve", people["service"])
    assert service.status_code == 403 and service.json()["error"]["code"] == "approver_not_a_person"
    assert _version(fleet, people["alice"]) == in_force, "one principal applies nothing"
    applied = _call(fleet, "POST", f"/v1/egress/changes/{change}/approve", people["bob"])
    assert applied.status_code == 200, applied.text
    new_version = applied.json()["applied_version"]
    assert applied.json()["status"] == "applied" and new_version not in ("", in_force)
    assert _version(fleet, people["alice"]) == new_version

    time.sleep(0.5)  # the planner reads the policy version again every MOE_EGRESS_CHECK_S (0.1 s here)
    m2 = uuid.uuid4().hex[:8]
    _script(scripted_server, m2)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _ask(fleet, people["user"], f"Patient question {m2}-p", "personal")
    assert refused.value.code == "data_class_forbidden"
    assert calls_for(scripted_server.calls(), m2) == [], "no server was called"
    after = _ask(fleet, people["user"], f"Open question {m2}-i", "internal")
    assert _egress(fleet, after)["details"]["policy_version"] == new_version

    wanted = {"egress_policy.simulated", "egress_policy.proposed", "egress_policy.approved", "egress_policy.applied"}
    eventually(lambda: wanted <= {r.get("action") for r in fleet.records(f"admin-egress-policy-change:{change}")}, 60)


def test_bad_rego_is_a_400_and_only_the_operator_simulates(own: tuple[LineageFleet, opa.Engine],
                                                           people: dict[str, str]) -> None:
    fleet, _ = own
    bad = _call(fleet, "POST", "/v1/egress/simulations", people["alice"],
                {"module": "package moe.egress\n\nrules := [\n", "days": 1})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "module", bad.text
    other = _call(fleet, "POST", "/v1/egress/simulations", people["alice"], {"module": "package moe.other\n"})
    assert other.status_code == 400 and "package moe.egress" in other.json()["error"]["message"]
    assert _call(fleet, "POST", "/v1/egress/simulations", people["user"], {"module": "x"}).status_code == 403
    assert _call(fleet, "GET", "/v1/egress/changes/esim-none", people["alice"]).status_code == 404
