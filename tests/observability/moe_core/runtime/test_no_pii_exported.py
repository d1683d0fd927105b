"""No prompt, answer or PII text leaves a request in the fleet's logs or trace exports at the default settings
(issue 50, item 5): one request carrying a distinctive name, e-mail address, IBAN and phone number (and an answer
repeating some of them) goes through the observed fleet (gateway, planner, experts, merger, graph-ingest,
gap-healer, codex-lineage; every trace sampled, logs at INFO); then every OTLP export the fleet sent, in full
(span names, attributes, events, links, resources), and every service's log are searched for each string."""

from __future__ import annotations

import time
import uuid

import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.observability.otlp_receiver import OtlpReceiver
from tests.support.fleet import Fleet
from tests.support.keys import new_key

pytestmark = pytest.mark.e2e
CONSUMER = 5


def _answered_trace_exported(otlp: OtlpReceiver, response_id: str, timeout_s: float = 60) -> None:
    """Wait until the gateway's span of reading the request's answer is exported (the last hop of its trace), and
    the other services' batches of that time with it (every span of the trace)."""
    end = time.monotonic() + timeout_s
    while True:
        spans = otlp.spans()
        roots = {s.trace_id for s in spans if s.service == "gateway"
                 and s.attributes.get("messaging.kafka.message.key") == response_id}
        trace = [s for s in spans if s.trace_id in roots]
        services = {s.service for s in trace}
        if any(s.kind == CONSUMER and s.name.endswith(".answers.v1 process") for s in trace) and len(services) >= 4:
            return
        assert time.monotonic() < end, f"the request's trace was not exported: {sorted(services)}"
        time.sleep(0.5)


def test_no_request_text_or_pii_in_trace_exports_or_logs(
        observed_fleet: Fleet, otlp: OtlpReceiver, scripted_server: Scripted, infra: dict[str, str]) -> None:
    m, tag = f"M{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    name, mail, iban, phone = f"Jolanda Vrijbergh{tag}", f"jolanda.{tag}@example.org", "DE44500105175407324931", \
        f"+49 30 {tag[:3]} 5577 {tag[3:]}"
    question = f"My name is {name}, mail {mail}, IBAN {iban}, phone {phone}: what is my overdraft limit? {m}"
    answer = f"Dear {name}, the overdraft on {iban} is set by your branch; we will write to {mail}."
    scripted_server.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Overdraft limit {m}"))},
        {"model": "expert-model", "contains": m, "reply": f"{answer}\nCONFIDENCE: high"},
    ])
    key = new_key(infra["postgres"], "pii-probe", "user", [f"tenant-pii-{tag}"])
    client = openai.OpenAI(base_url=f"{observed_fleet['gateway'].url}/v1", api_key=key, max_retries=0, timeout=90)
    reply = client.chat.completions.create(model="moe-orchestrator",
                                           messages=[{"role": "user", "content": question}])
    assert name in (reply.choices[0].message.content or ""), "the request went through the fleet"
    _answered_trace_exported(otlp, reply.id.removeprefix("chatcmpl-"))

    secrets = {"name": name, "e-mail": mail, "IBAN": iban, "phone": phone,
               "question": "overdraft limit", "answer": "set by your branch"}
    exported = otlp.exported()
    assert "gateway" in exported, "the fleet's trace exports were captured"
    assert not [what for what, text in secrets.items() if text in exported], "request text in a trace export"
    logs = {n: p.log.read_text(errors="replace") for n, p in observed_fleet.services.items() if p.log.exists()}
    assert len(logs) >= 6, f"the fleet's services write logs: {sorted(logs)}"
    leaks = [(n, what) for n, text in logs.items() for what, secret in secrets.items() if secret in text]
    assert not leaks, f"request text in the services' logs: {leaks}"
