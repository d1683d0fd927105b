"""Data classes enforced at request time on the real fleet (issue 50), the scripted servers proving which server was
called: "scripted" is a sovereign cloud, "scripted-b" (first in the configuration, serving the translation expert's
model) says nothing of its sovereignty (tests/conftest.scripted_env). A personal request's translation goes only to
"scripted" (an internal one goes to "scripted-b"); a classified request (our own servers only, and there are none)
is refused in each API's own error format and no server is called. A cache hit (exact, at the gateway, or semantic,
at the planner) calls no server and still has its egress record; a personal answer is kept in the shared cache for
nobody; a tool its class may not use (timezone_convert and number_words are declared as reaching outside the fleet
for this fleet, MOE_TOOLS_EXTERNAL) is neither offered to the planner model nor planned, and the egress record names
it as left out of the plan (mcp still refuses such a task, should one come:
tests/unit/moe_core/policy/test_egress_classes.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from moe_core.contracts import ChatMessage, ChatRequest, Topics, deadline_in
from moe_core.llm.exact_cache import ExactAnswers, cache_scope
from tests.conftest import FLEET_MODEL, Scripted
from tests.e2e.helpers import calls_for, plan_reply
from tests.support.chaos_bus import records_of, wait_consumed
from tests.support.fleet import Fleet
from tests.support.keys import new_key
from tests.support.moe_fields import moe
from tests.support.namespaces import new_namespace
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
HEADER = "x-moe-data-class"


@pytest.fixture(scope="module")
def tenant() -> str:
    return new_namespace("egress")


@pytest.fixture(scope="module")
def key(infra: dict[str, str], tenant: str) -> str:
    """A tenant and key of the module's own (no server affinity left by other journeys)."""
    return new_key(infra["postgres"], "egress", "user", [tenant])


def _audit(fleet: Fleet, infra: dict[str, str], rid: str, action: str,
           where: Callable[[dict[str, Any]], bool] = lambda _: True) -> dict[str, Any]:
    """The request's audit event `action` (that `where` takes), read from the fleet's audit topic (waited for: it
    may follow the answer)."""
    topic = Topics.for_namespace(fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]).audit

    def found() -> dict[str, Any] | None:
        events = [json.loads(value) for _, _, value, _ in asyncio.run(records_of(infra["kafka"], [topic], rid))]
        return next((e for e in events if e.get("action") == action and where(e)), None)

    return eventually(found, 60)


def _exact_key(fleet: Fleet, tenant: str, question: str) -> str:
    request = ChatRequest(response_id="r", tenant_id=tenant, deadline_at=deadline_in(9), mode="moe-orchestrator",
                          messages=[ChatMessage(role="user", content=question)])
    namespace = fleet["gateway"].env["MOE_TOPIC_NAMESPACE"]
    return ExactAnswers(AsyncRedis(), namespace, 0).key(cache_scope(request) or "", question)


def _client(fleet: Fleet, key: str, data_class: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{fleet['gateway'].url}/v1", api_key=key, max_retries=0, timeout=60,
                         default_headers={HEADER: data_class} if data_class else None)


def _translate(client: openai.OpenAI, question: str, user: str) -> Any:
    return client.chat.completions.create(model="moe-orchestrator", user=user,
                                          messages=[{"role": "user", "content": question}])


def _script(scripted: Scripted, scripted_b: Scripted, m: str) -> None:
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("translation", f"Translate it {m}"))},
        {"model": FLEET_MODEL, "contains": m, "reply": "Guten Morgen (sovereign).\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": "Guten Morgen."}])
    scripted_b.script([{"model": FLEET_MODEL, "contains": m, "reply": "Guten Morgen (b).\nCONFIDENCE: high"}])


def test_a_personal_request_goes_only_to_the_server_its_class_may_reach(
        fleet: Fleet, key: str, scripted: Scripted, scripted_server_b: Scripted) -> None:
    m = f"E{uuid.uuid4().hex[:8]}"
    _script(scripted, scripted_server_b, m)
    _translate(_client(fleet, key), f"How do you say good morning in German? {m}-open", f"u-{m}-open")
    assert calls_for(scripted_server_b.calls(FLEET_MODEL), f"{m}-open"), "internal data: scripted-b is chosen"
    assert not calls_for(scripted.calls(FLEET_MODEL), f"{m}-open")

    answer = _translate(_client(fleet, key, "personal"), f"Please translate thank you into French {m}-personal",
                        f"u-{m}-personal")
    assert answer.choices[0].message.content
    assert calls_for(scripted.calls(FLEET_MODEL), f"{m}-personal"), "the sovereign server answered"
    assert not calls_for(scripted_server_b.calls(), f"{m}-personal"), "scripted-b was never called"


def test_a_class_with_no_permitted_server_is_refused_in_every_api_and_nothing_is_sent(
        fleet: Fleet, key: str, scripted: Scripted, scripted_server_b: Scripted) -> None:
    m = f"X{uuid.uuid4().hex[:8]}"
    _script(scripted, scripted_server_b, m)
    client = _client(fleet, key, "classified")
    with pytest.raises(openai.PermissionDeniedError) as chat:
        _translate(client, f"Classified question {m}", f"u-{m}")
    assert chat.value.status_code == 403 and chat.value.code == "data_class_forbidden"
    assert "classified data may not be sent" in chat.value.message
    with pytest.raises(openai.PermissionDeniedError) as responses:
        client.responses.create(model="moe-orchestrator", input=f"Classified question two {m}")
    assert responses.value.code == "data_class_forbidden"
    claude = anthropic.Anthropic(base_url=fleet["gateway"].url, api_key=key, max_retries=0, timeout=60,
                                 default_headers={HEADER: "classified"})
    with pytest.raises(anthropic.PermissionDeniedError) as messages:
        claude.messages.create(model="moe-orchestrator", max_tokens=64,
                               messages=[{"role": "user", "content": f"Classified question three {m}"}])
    body: Any = messages.value.body
    assert body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert calls_for(scripted.calls(), m) == [] and calls_for(scripted_server_b.calls(), m) == []
    # the client cannot lower its class below what it says: an unknown class is the API's 400
    with pytest.raises(openai.BadRequestError) as unknown:
        _translate(_client(fleet, key, "top-secret"), f"Unknown class {m}", f"u-{m}")
    assert unknown.value.code == "invalid_data_class"


# an answer the cache keeps (MOE_CACHE_MIN_ANSWER_CHARS, 150)
LONG = ("Paris is the capital of France and its largest city, on the Seine; it has been the seat of the French "
        "government for most of the time since the tenth century.")


def _cached_script(scripted: Scripted, m: str) -> None:
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Name the capital {m}"))},
        {"model": "expert-model", "contains": m, "reply": f"{LONG}\nCONFIDENCE: high"},
        {"model": "judge-model", "contains": m, "reply": LONG}])


def test_a_cache_hit_calls_no_server_and_has_its_egress_record(
        fleet: Fleet, infra: dict[str, str], key: str, tenant: str, scripted: Scripted,
        scripted_server_b: Scripted) -> None:
    m = f"H{uuid.uuid4().hex[:8]}"
    _cached_script(scripted, m)
    question = f"What is the capital of France? {m}"
    client = _client(fleet, key)
    first = _translate(client, question, f"u-{m}")
    assert moe(first)["cache_hit"] is False
    redis = Redis.from_url(infra["redis"])
    try:
        eventually(lambda: redis.exists(_exact_key(fleet, tenant, question)), 60)  # an internal answer is kept
    finally:
        redis.close()
    calls = len(calls_for(scripted.calls(), m)) + len(calls_for(scripted_server_b.calls(), m))
    for asked, cache in ((question, "exact"), (f"What's France's capital city? {m}", "semantic")):
        hit = _translate(client, asked, f"u-{m}")
        assert moe(hit)["cache_hit"] is True, cache
        record = _audit(fleet, infra, hit.id.removeprefix("chatcmpl-"), "egress.cache_hit")
        details = record["details"]
        assert (details["cache"], details["data_class"], details["outcome"]) == (cache, "internal",
                                                                                 "served_from_cache")
        assert details["class_from"] == {"tenant": "internal"} and details["cache_key"]
        assert details["served"] == [details["cache_key"]] and details["decisions"] == []
        assert record["actor"] == ("service:gateway" if cache == "exact" else "service:planner")
    assert len(calls_for(scripted.calls(), m)) + len(calls_for(scripted_server_b.calls(), m)) == calls


def test_a_personal_answer_is_kept_in_the_shared_cache_for_nobody(
        fleet: Fleet, infra: dict[str, str], key: str, tenant: str, scripted: Scripted) -> None:
    m = f"N{uuid.uuid4().hex[:8]}"
    _cached_script(scripted, m)
    question = f"What is the capital of France? {m}"
    client = _client(fleet, key, "personal")
    first = _translate(client, question, f"u-{m}")
    assert first.choices[0].message.content == LONG
    record = _audit(fleet, infra, first.id.removeprefix("chatcmpl-"), "egress.decided")
    [cache] = [d for d in record["details"]["decisions"] if d["kind"] == "cache"]
    assert (cache["outcome"], cache["rule"]) == ("deny", "no-shared-cache-for-protected-data")
    # the planner has read every answer (an internal one would be in the cache by now: the test above)
    asyncio.run(wait_consumed(infra["kafka"], [Topics.for_namespace(fleet["gateway"].env["MOE_TOPIC_NAMESPACE"])
                                               .answers]))
    redis = Redis.from_url(infra["redis"])
    try:
        assert not redis.exists(_exact_key(fleet, tenant, question))
    finally:
        redis.close()
    again = _translate(client, question, f"u-{m}")
    assert moe(again)["cache_hit"] is False
    assert len(calls_for(scripted.calls("expert-model"), m)) == 2, "answered afresh: the expert model again"


def _tool_plan(m: str) -> str:
    return json.dumps({"tasks": [
        {"kind": "tool", "category": "precision", "tool": "number_words", "args": {"value": 1234},
         "instruction": "write 1234 in words"},
        {"kind": "expert", "category": "general", "instruction": f"Say what a cheque is {m}"}]})


def test_a_tool_its_class_may_not_use_is_neither_offered_nor_planned_and_the_record_says_why(
        fleet: Fleet, infra: dict[str, str], key: str, scripted: Scripted) -> None:
    words = "one thousand two hundred thirty-four"
    topics = Topics.for_namespace(fleet["gateway"].env["MOE_TOPIC_NAMESPACE"])
    for data_class in ("internal", "personal"):
        m = f"T{uuid.uuid4().hex[:8]}"
        scripted.script([  # the planner model plans the tool either way (as a plan made for another class would)
            {"model": "planner-model", "contains": m, "reply": _tool_plan(m)},
            {"model": "expert-model", "contains": m, "reply": "A cheque orders a bank to pay.\nCONFIDENCE: high"},
            {"model": "judge-model", "contains": m, "reply": f"Merged {m}."}])
        answer = _translate(_client(fleet, key, data_class), f"Write 1234 in words for a cheque {m}", f"u-{m}")
        content = answer.choices[0].message.content or ""
        judged = json.dumps(calls_for(scripted.calls("judge-model"), m))
        offered = json.dumps([c["messages"] for c in calls_for(scripted.calls("planner-model"), m)])
        rid = answer.id.removeprefix("chatcmpl-")
        [plan] = [json.loads(v) for _, _, v, _ in asyncio.run(records_of(infra["kafka"], [topics.plans], rid))]
        tools = [t["tool"] for t in plan["tasks"] if t["kind"] == "tool"]
        if data_class == "internal":  # offered, planned and run: the judge merged its exact result into the answer
            assert "number_words" in offered and tools == ["number_words"]
            assert content.startswith(f"Merged {m}.") and words in judged and words in content
            continue
        # not offered to the planner model, and its plan's tool task became an expert's: nothing for mcp to refuse
        assert "number_words" not in offered and "calculate" in offered, "the permitted tools only"
        assert tools == [] and words not in judged and words not in content
        assert "precision" not in content, "no part is named missing: nothing was refused downstream"
        decided = _audit(fleet, infra, rid, "egress.decided")
        assert {"tool": "number_words", "reach": "external", "rule": "protected-data-fleet-tools-only"} in \
            decided["details"]["tools"]["deny"]
        assert {"tool:number_words", "research"} <= set(decided["details"]["left_out_of_plan"])
        events = [json.loads(v) for _, _, v, _ in asyncio.run(records_of(infra["kafka"], [topics.audit], rid))]
        assert not [e for e in events if e.get("action") == "egress.tool_refused"], "no task was refused"


def test_a_keys_class_set_in_the_admin_api_raises_its_requests_and_only_the_operator_lowers_it(
        fleet: Fleet, infra: dict[str, str], tenant: str, scripted: Scripted, scripted_server_b: Scripted) -> None:
    operator, admin = (new_key(infra["postgres"], f"egress-{role}", role, [tenant]) for role in ("operator", "admin"))
    base = f"{fleet['control-plane'].url}/v1/admin/keys"

    def call(method: str, url: str, who: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.request(method, url, json=body, headers={"Authorization": f"Bearer {who}"}, timeout=30)

    unknown = call("POST", base, admin, {"name": "ward", "tenant_ids": [tenant], "data_class": "secret"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "invalid_data_class"
    made = call("POST", base, admin, {"name": "ward", "tenant_ids": [tenant], "data_class": "personal"})
    assert made.status_code == 201 and made.json()["data_class"] == "personal", made.text
    m = f"K{uuid.uuid4().hex[:8]}"
    _script(scripted, scripted_server_b, m)
    _translate(_client(fleet, made.json()["secret"]), f"How do you say good morning in German? {m}", f"u-{m}")
    assert calls_for(scripted.calls(FLEET_MODEL), m), "the key's class: the sovereign server answered"
    assert not calls_for(scripted_server_b.calls(), m), "scripted-b (the fleet's first choice) was never called"

    url = f"{base}/{made.json()['id']}"
    lowered = call("PATCH", url, admin, {"clear_data_class": True})  # a tenant admin may not widen where it goes
    assert lowered.status_code == 403 and lowered.json()["error"]["code"] == "data_class_lowered"
    assert call("PATCH", url, admin, {"data_class": "classified"}).json()["data_class"] == "classified"  # raised
    cleared = call("PATCH", url, operator, {"clear_data_class": True})
    assert cleared.status_code == 200 and cleared.json()["data_class"] is None
    changed = _audit(fleet, infra, f"admin-key:{made.json()['id']}", "key.data_class_changed",
                     lambda e: e["details"]["after"] is None)
    assert changed["details"]["before"] == "classified" and changed["tenant_id"] == tenant
