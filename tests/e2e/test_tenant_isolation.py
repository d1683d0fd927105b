"""Two tenants and the edge's caches, and what the services write in their logs (issue 50, item 5), through
the whole fleet (scripted models, real Kafka/Redis/Chroma, the services at the default log level INFO):

- the same question by two tenants: the second is answered by the models, not from the first's exact-repeat
  cache (gateway, Redis) nor its semantic cache (planner, Chroma), word for word or paraphrased;
- no service log holds the question, the answer or the PII of a request (a redacted IBAN, an e-mail address).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import openai
import pytest

from tests.conftest import Scripted
from tests.e2e.conftest import _create_key
from tests.e2e.helpers import calls_for, plan_reply
from tests.support.fleet import Fleet
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
FIRST = ("The Rhine is about 1,230 km long: it rises in the Swiss Alps, forms part of the German border with "
         "France and Switzerland, and flows through the Netherlands into the North Sea at Rotterdam.")
SECOND = ("The second tenant's own answer: the Rhine runs some 1,230 km from the Alps to the North Sea, through "
          "Switzerland, Liechtenstein, Austria, Germany, France and the Netherlands, as models wrote it here.")


def _ask(client: openai.OpenAI, question: str) -> Any:
    return client.chat.completions.create(model="moe-orchestrator", messages=[{"role": "user", "content": question}])


def _script(scripted: Scripted, m: str, answer: str) -> None:
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Answer {m}"))},
        {"model": "expert-model", "contains": m, "reply": f"{answer}\nCONFIDENCE: high"},
    ])


def test_a_second_tenant_never_gets_the_first_tenants_cached_answer(
        fleet: Fleet, infra: dict[str, str], scripted: Scripted, base_url: str, api_key: str) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    other_key = asyncio.run(_create_key(infra["postgres"], "user", f"tenant-iso-{m.lower()}"))
    first = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
    second = openai.OpenAI(base_url=base_url, api_key=other_key, max_retries=0, timeout=60)
    question = f"How long is the Rhine? {m}"
    _script(scripted, m, FIRST)
    assert _ask(first, question).choices[0].message.content == FIRST
    calls = len(calls_for(scripted.calls(), m))
    again = _ask(first, question)  # the first tenant's own repeat: from the cache (both caches hold it now)
    assert again.metadata["cache_hit"] is True and len(calls_for(scripted.calls(), m)) == calls  # type: ignore[index]

    _script(scripted, m, SECOND)
    for ask in (f"What is the length of the Rhine? {m}", question):  # paraphrase (semantic), then word for word
        answer = _ask(second, ask)
        assert answer.metadata["cache_hit"] is False, ask  # type: ignore[index]
        assert answer.choices[0].message.content == SECOND, "the second tenant's models answered"
        assert len(calls_for(scripted.calls(), m)) > calls, "the models were called for the second tenant"
        calls = len(calls_for(scripted.calls(), m))
    eventually(lambda: _ask(first, question).choices[0].message.content == FIRST)  # and the other way round


def test_no_question_answer_or_pii_reaches_the_services_logs(
        fleet: Fleet, scripted: Scripted, base_url: str, api_key: str) -> None:
    m = f"M{uuid.uuid4().hex[:8]}"
    secret_q = f"Zanzibar{uuid.uuid4().hex[:6]}"
    secret_a = f"Quokka{uuid.uuid4().hex[:6]}"
    mail = f"jane.{uuid.uuid4().hex[:6]}@example.org"
    _script(scripted, m, f"{secret_a} is the answer, write to {mail}; the account is DE89 3704 0044 0532 0130 00.")
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
    reply = _ask(client, f"Where is {secret_q}? Mail {mail}, IBAN DE89370400440532013000. {m}")
    assert secret_a in (reply.choices[0].message.content or "")
    logs = {name: p.log.read_text(errors="replace") for name, p in fleet.services.items() if p.log.exists()}
    assert logs, "the fleet's services write logs"
    for name, text in logs.items():
        for secret in (secret_q, secret_a, mail, "DE89370400440532013000", "3704 0044 0532"):
            assert secret not in text, f"{name}'s log holds request text ({secret[:6]}...)"
