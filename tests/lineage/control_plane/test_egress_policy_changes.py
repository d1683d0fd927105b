"""A candidate egress policy simulated on a real fleet's recorded egress decisions and put in force by two people
(issue 50): a fleet of its own (Kafka, Postgres, codex-lineage's signed record) over a private OPA run as the chart
runs it (token authentication), so pushing a policy touches no other test. Recorded: one internal and one personal
request. The candidate denies the scripted server to personal data: its simulation (by `opa eval`, nothing applied)
lists exactly the personal request's model decisions; bad Rego is a 400; the proposer cannot approve it, a second
person can, which pushes it to OPA and bumps the version the egress records carry; the next personal request is
refused with the API's error and no server is called, while an internal one still goes. Each step is on the record.
Cost: one fleet start of its own (about a minute on two cores) and five requests."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from control_plane.policy.apply_lock import LOCK, lock_name
from control_plane.policy.egress_changes import APPLYING, IN_FORCE
from control_plane.policy.egress_simulation import EGRESS_PACKAGE, candidate_digest
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
               "MOE_OPA_BINARY": opa.binary(), "MOE_EGRESS_CHECK_S": "0.1", "MOE_EGRESS_RECONCILE_S": "0.5",
               "MOE_EGRESS_APPLY_WAIT_S": "3"}
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


def _candidate(engine: opa.Engine, rule: str = RULE) -> str:
    """The reviewed egress module with one rule first: personal data may not reach the server "scripted"."""
    text = (engine.policy_dir / "egress.rego").read_text()
    first = f'\t{{"id": "{rule}", "classes": {{"personal"}}, "kinds": {{"model"}}, "where": "not_scripted"}},\n'
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
    assert result["not_redecided"] == [] and result["counts"]["not_redecided"] == 0  # new records carry the reach
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


# --- the approved policy kept in force: push after commit, OPA restarts, unapproved PUTs, a newer reviewed file ----

def _egress_text(engine: opa.Engine) -> str:
    """OPA's moe.egress module now (read with its token)."""
    body = httpx.get(f"{engine.url}/v1/policies", headers=_opa_auth(engine), timeout=10).json()
    return str(next(m["raw"] for m in body["result"] if EGRESS_PACKAGE.search(m["raw"])))


def _opa_auth(engine: opa.Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {(engine.env or {})['MOE_OPA_TOKEN']}"}


def _proposed(fleet: LineageFleet, engine: opa.Engine, people: dict[str, str], rule: str) -> tuple[str, str]:
    """A tightening (personal data off the scripted server, rule `rule`) simulated and proposed by alice."""
    module = _candidate(engine, rule)
    sim = _call(fleet, "POST", "/v1/egress/simulations", people["alice"],
                {"module": module, "days": 1, "tenant_id": people["tenant"]})
    assert sim.status_code == 200, sim.text
    assert sim.json()["reviewed_file"].startswith("sha256:")
    change = sim.json()["id"]
    assert _call(fleet, "POST", f"/v1/egress/changes/{change}/propose", people["alice"]).status_code == 200
    return change, module


def _applied(fleet: LineageFleet, engine: opa.Engine, people: dict[str, str], rule: str) -> tuple[str, str]:
    change, module = _proposed(fleet, engine, people, rule)
    applied = _call(fleet, "POST", f"/v1/egress/changes/{change}/approve", people["bob"])
    assert applied.status_code == 200 and applied.json()["in_force"] is True, applied.text
    assert _egress_text(engine) == module
    return change, module


def _reconciled(fleet: LineageFleet, action: str, cause: str) -> float:
    """moe_egress_policy_reconciled_total{action, cause} on the control plane's /metrics (0: not yet counted)."""
    text = httpx.get(f"{fleet.control_plane}/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "moe_egress_policy_reconciled_total"
               and s.labels == {"action": action, "cause": cause})


def _event(fleet: LineageFleet, change: str, action: str, **details: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((r for r in fleet.records(f"admin-egress-policy-change:{change}")
                     if r.get("action") == action and details.items() <= r["details"].items()), None)
    event = eventually(found, 60)
    assert event["actor"] == "service:control-plane"
    return event


def _refused_without_a_call(fleet: LineageFleet, people: dict[str, str], scripted: Scripted) -> None:
    time.sleep(0.5)  # the planner reads the policy version again every MOE_EGRESS_CHECK_S (0.1 s here)
    m = uuid.uuid4().hex[:8]
    _script(scripted, m)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _ask(fleet, people["user"], f"Patient question {m}-p", "personal")
    assert refused.value.code == "data_class_forbidden"
    assert calls_for(scripted.calls(), m) == [], "no server was called"


def test_a_failed_commit_puts_nothing_in_force_the_push_follows_the_commit(
        own: tuple[LineageFleet, opa.Engine], people: dict[str, str], infra: dict[str, str]) -> None:
    fleet, engine = own
    change, module = _proposed(fleet, engine, people, "commit-first")
    before, text_before = _version(fleet, people["alice"]), _egress_text(engine)
    # the approval's transaction runs every statement, then its COMMIT is refused (a deferred constraint trigger)
    _sql(infra["postgres"], f"""
        CREATE OR REPLACE FUNCTION refuse_commit_{change.replace('-', '_')}() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
        CREATE CONSTRAINT TRIGGER refuse_commit AFTER UPDATE ON egress_policy_changes DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW WHEN (NEW.id = '{change}' AND NEW.status = 'applied')
        EXECUTE FUNCTION refuse_commit_{change.replace('-', '_')}();""")
    try:
        refused = _call(fleet, "POST", f"/v1/egress/changes/{change}/approve", people["bob"])
    finally:
        _sql(infra["postgres"], "DROP TRIGGER refuse_commit ON egress_policy_changes")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "decision_not_recorded", refused.text
    assert _version(fleet, people["alice"]) == before and _egress_text(engine) == text_before, "OPA not ahead"
    item = _call(fleet, "GET", f"/v1/egress/changes/{change}", people["alice"]).json()
    assert item["status"] == "pending" and item["in_force"] is False
    applied = _call(fleet, "POST", f"/v1/egress/changes/{change}/approve", people["bob"])
    assert applied.status_code == 200 and applied.json()["in_force"] is True, applied.text
    assert _egress_text(engine) == module and _version(fleet, people["alice"]) == applied.json()["applied_version"]
    # kept in force by this fleet's control planes only: another fleet on the same database (a staging fleet, the
    # other tests' fleets here) has its own OPA, which its reconcile must not give this change
    namespace = fleet.env["MOE_TOPIC_NAMESPACE"]
    assert _in_force(infra["postgres"], namespace) == change and _in_force(infra["postgres"], "other-fleet") is None


def _in_force(dsn: str, namespace: str) -> str | None:
    """The change a control plane of `namespace` keeps in force (its reconcile's query)."""
    async def run() -> str | None:
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow(IN_FORCE, namespace)
            return None if row is None else str(row["id"])
        finally:
            await conn.close()
    return asyncio.run(run())


def _sql(dsn: str, statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()
    asyncio.run(run())


def test_an_approved_tightening_survives_an_opa_restart_and_an_unapproved_put_is_reverted(
        own: tuple[LineageFleet, opa.Engine], people: dict[str, str], scripted_server: Scripted) -> None:
    fleet, engine = own
    change, module = _applied(fleet, engine, people, "survives-restart")
    restarts = _reconciled(fleet, "reapplied", "opa_restarted")
    engine.restart()  # the real OPA process: it loads the reviewed files again (the looser policy)
    eventually(lambda: _egress_text(engine) == module, 60)
    _event(fleet, change, "egress_policy.reapplied", cause="opa_restarted")
    assert _reconciled(fleet, "reapplied", "opa_restarted") > restarts
    _refused_without_a_call(fleet, people, scripted_server)

    # the insider: whoever holds OPA's token puts a looser module without approval
    loose = (engine.policy_dir / "egress.rego").read_text() + "\n# put without approval\n"
    module_id = next(m["id"] for m in httpx.get(f"{engine.url}/v1/policies", headers=_opa_auth(engine),
                                                timeout=10).json()["result"] if m["raw"] == module)
    put = httpx.put(f"{engine.url}/v1/policies/{quote(module_id, safe='')}", content=loose.encode(), timeout=10,
                    headers={**_opa_auth(engine), "Content-Type": "text/plain"})
    assert put.status_code == 200, put.text
    eventually(lambda: _egress_text(engine) == module, 60)
    event = _event(fleet, change, "egress_policy.reapplied", cause="unapproved_put", found=candidate_digest(loose))
    assert event["details"]["found_text"] == loose and event["details"]["approved"] == candidate_digest(module)
    assert _reconciled(fleet, "reapplied", "unapproved_put") >= 1
    _refused_without_a_call(fleet, people, scripted_server)


def test_a_newer_reviewed_file_supersedes_the_approved_change(own: tuple[LineageFleet, opa.Engine],
                                                              people: dict[str, str]) -> None:
    fleet, engine = own
    change, module = _applied(fleet, engine, people, "superseded-later")
    path = engine.policy_dir / "egress.rego"
    original = path.read_text()
    newer = original + "\n# reviewed again after the change\n"
    try:
        path.write_text(newer)  # a newer reviewed file: OPA (--watch) loads it, the reconcile must not undo that
        item = eventually(lambda: (i := _call(fleet, "GET", f"/v1/egress/changes/{change}", people["alice"]).json())
                          ["status"] == "superseded" and i, 60)
        assert item["in_force"] is False and item["superseded_by"] == candidate_digest(newer)
        _event(fleet, change, "egress_policy.superseded", reviewed_file_now=candidate_digest(newer))
        assert _reconciled(fleet, "superseded", "reviewed_file_changed") >= 1
        eventually(lambda: _egress_text(engine) == newer, 60)
        time.sleep(2)  # four reconcile rounds (0.5 s): none puts the approved module back
        assert _egress_text(engine) == newer != module
        assert _call(fleet, "GET", f"/v1/egress/changes/{change}", people["alice"]).json()["status"] == "superseded"
    finally:
        path.write_text(original)


def test_an_approval_behind_a_held_apply_lock_answers_apply_busy_names_the_holder_and_approves_nothing(
        own: tuple[LineageFleet, opa.Engine], people: dict[str, str], infra: dict[str, str]) -> None:
    fleet, engine = own
    change, module = _proposed(fleet, engine, people, "behind-a-held-lock")
    namespace = fleet.env["MOE_TOPIC_NAMESPACE"]

    async def held() -> tuple[httpx.Response, int]:
        conn = await asyncpg.connect(infra["postgres"])
        try:
            await conn.execute(LOCK, lock_name(APPLYING, namespace))  # a push of this fleet that does not end
            return (await asyncio.to_thread(_call, fleet, "POST", f"/v1/egress/changes/{change}/approve",
                                            people["bob"]), conn.get_server_pid())
        finally:
            await conn.close()

    busy, holder = asyncio.run(held())
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "apply_busy", busy.text
    assert f"'pid': {holder}" in busy.json()["error"]["message"]
    item = _call(fleet, "GET", f"/v1/egress/changes/{change}", people["alice"]).json()
    assert item["status"] == "pending" and item["in_force"] is False and _egress_text(engine) != module
    applied = _call(fleet, "POST", f"/v1/egress/changes/{change}/approve", people["bob"])  # the lock let go
    assert applied.status_code == 200 and applied.json()["in_force"] is True, applied.text
