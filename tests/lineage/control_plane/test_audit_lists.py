"""The control plane's lists over the signed record on a real fleet (Kafka, Postgres, OPA): recent requests and
precision-tool calls, each key seeing only its own tenants (another tenant: the operator by the policy, on the
record; a tenant admin: 404), and the fleet's live configuration (what each service last ran with) for the
operator only."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from moe_core.contracts import Source, TaskResult, deadline_in
from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.lineage.conftest import Keys, LineageFleet

pytestmark = pytest.mark.e2e


def _get(fleet: LineageFleet, path: str, key: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{fleet.control_plane}{path}", params=params, headers=headers, timeout=30)


def _until(fleet: LineageFleet, path: str, key: str, found: Callable[[list[dict[str, Any]]], bool],
           **params: str) -> list[dict[str, Any]]:
    """The list once it shows what codex-lineage records off the request path (60 s at most)."""
    deadline = time.monotonic() + 60
    while True:
        reply = _get(fleet, path, key, **params)
        assert reply.status_code == 200, reply.text
        data: list[dict[str, Any]] = reply.json()["data"]
        if found(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.5)


@pytest.fixture(scope="module")
def recorded(lineage_fleet: LineageFleet, scripted_server: Scripted, keys: Keys) -> dict[str, str]:
    """One answered request and one precision-tool result (as the mcp stage publishes it) of the user's tenant."""
    m = f"A{uuid.uuid4().hex[:8]}"
    scripted_server.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name a prime {m}"))},
        {"model": "expert-model", "contains": m, "reply": "Seven.\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": "Seven."},
    ])
    client = openai.OpenAI(base_url=f"{lineage_fleet.gateway}/v1", api_key=keys.user, max_retries=0, timeout=60)
    rid = client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"A prime? {m}"}]).id.removeprefix("chatcmpl-")
    tool_rid = f"tool-{m}"
    result = TaskResult(response_id=tool_rid, tenant_id=keys.tenant, deadline_at=deadline_in(60), task_id="p1",
                        kind="tool", category="precision", content="17 * 23 = 391", confidence="high",
                        duration_ms=1.5, sources=[Source(kind="tool", ref="calculate@1")],
                        data={"tool": "calculate", "version": "1", "args": {"expression": "17 * 23"},
                              "result": {"value": 391}})
    lineage_fleet.publish([(result, "results")], "mcp")
    return {"rid": rid, "tool_rid": tool_rid}


def test_recent_requests_are_listed_for_their_own_tenant_only(lineage_fleet: LineageFleet, recorded: dict[str, str],
                                                              keys: Keys) -> None:
    mine = _until(lineage_fleet, "/v1/audit", keys.user, lambda d: any(  # codex-lineage records as it reads
        r["response_id"] == recorded["rid"] and r["records"] >= 4 and "planner" in r["stages"] for r in d))
    [row] = [r for r in mine if r["response_id"] == recorded["rid"]]
    assert row["tenant_id"] == keys.tenant and row["records"] >= 4 and "planner" in row["stages"]
    assert {r["tenant_id"] for r in mine} == {keys.tenant}
    theirs = _get(lineage_fleet, "/v1/audit", keys.other).json()["data"]
    assert recorded["rid"] not in {r["response_id"] for r in theirs}
    # another tenant: a tenant admin is told nothing exists, the operator reads it (a policy decision on record)
    refused = _get(lineage_fleet, "/v1/audit", keys.tenant_admin, tenant=keys.tenant)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    operator = _get(lineage_fleet, "/v1/audit", keys.admin, tenant=keys.tenant).json()["data"]
    assert recorded["rid"] in {r["response_id"] for r in operator}
    assert _get(lineage_fleet, "/v1/audit", keys.admin).json()["data"] == []  # its own tenant asked nothing
    assert _get(lineage_fleet, "/v1/audit", None).status_code == 401
    for bad in ({"limit": "0"}, {"hours": "x"}, {"limit": "501"}):
        reply = _get(lineage_fleet, "/v1/audit", keys.user, **bad)
        assert reply.status_code == 400 and reply.json()["error"]["param"] in bad


def test_tool_calls_are_listed_with_their_arguments_and_outcome(lineage_fleet: LineageFleet,
                                                                recorded: dict[str, str], keys: Keys) -> None:
    calls = _until(lineage_fleet, "/v1/tool-calls", keys.user,
                   lambda d: any(c["response_id"] == recorded["tool_rid"] for c in d))
    [call] = [c for c in calls if c["response_id"] == recorded["tool_rid"]]
    assert (call["tool"], call["version"], call["args"], call["ok"]) == ("calculate", "1", {"expression": "17 * 23"},
                                                                         True)
    assert call["content"] == "17 * 23 = 391" and call["duration_ms"] == 1.5 and call["tenant_id"] == keys.tenant
    assert recorded["rid"] not in {c["response_id"] for c in calls}  # an expert's result is not a tool call
    assert _get(lineage_fleet, "/v1/tool-calls", keys.other).json()["data"] == []


def test_the_live_configuration_is_the_operators(lineage_fleet: LineageFleet, recorded: dict[str, str],
                                                 keys: Keys) -> None:
    def ran(data: list[dict[str, Any]]) -> bool:
        return {"gateway", "planner", "expert-worker", "merger"} <= {s["service"] for s in data}

    deadline = time.monotonic() + 60
    while True:
        reply = _get(lineage_fleet, "/v1/admin/config", keys.admin, hours="1")
        assert reply.status_code == 200, reply.text
        config = reply.json()
        if ran(config["services"]) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    services = {s["service"]: s for s in config["services"]}
    assert ran(config["services"]), sorted(services)
    assert services["planner"]["config"].startswith("sha256:") and "planner.plan" in services["planner"]["prompts"]
    assert config["control_plane"]["config"].startswith("sha256:")
    assert config["control_plane"]["settings"]["postgres_dsn"].count("***") == 1  # the password, never its value
    assert "general" in config["templates"]["global"]
    for key in (keys.tenant_admin, keys.user):
        refused = _get(lineage_fleet, "/v1/admin/config", key)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] in ("operator_only", "insufficient_role")
