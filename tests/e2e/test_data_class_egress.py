"""Data classes enforced at request time on the real fleet (issue 50), the scripted servers proving which server was
called: "scripted" is a sovereign cloud, "scripted-b" (first in the configuration, serving the translation expert's
model) says nothing of its sovereignty (tests/conftest.scripted_env). A personal request's translation goes only to
"scripted" (an internal one goes to "scripted-b"); a classified request (our own servers only, and there are none)
is refused in each API's own error format and no server is called."""

from __future__ import annotations

import uuid
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import FLEET_MODEL, Scripted
from tests.e2e.helpers import calls_for, plan_reply
from tests.support.fleet import Fleet
from tests.support.keys import new_key
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.e2e
HEADER = "x-moe-data-class"


@pytest.fixture(scope="module")
def key(infra: dict[str, str]) -> str:
    """A tenant and key of the module's own (no server affinity left by other journeys)."""
    return new_key(infra["postgres"], "egress", "user", [new_namespace("egress")])


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
