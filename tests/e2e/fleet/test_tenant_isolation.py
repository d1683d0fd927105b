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
from redis import Redis

from tests.conftest import Scripted
from tests.e2e.conftest import _create_key
from tests.e2e.helpers import calls_for, exact_key, plan_reply
from tests.support.fleet import Fleet
from tests.support.moe_fields import moe
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
    first = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
    question, paraphrase = f"How long is the Rhine? {m}", f"How long is the river Rhine? {m}"
    _script(scripted, m, FIRST)
    assert _ask(first, question).choices[0].message.content == FIRST
    # the planner's write-behind stored the answer (it reads the answers with a lingering fetch: up to
    # MOE_KAFKA_LINGER_MS after the reply)
    with Redis.from_url(infra["redis"]) as store:
        eventually(lambda: store.exists(exact_key(fleet["gateway"].env["MOE_TOPIC_NAMESPACE"], question)))
    calls = len(calls_for(scripted.calls(), m))
    for ask in (question, paraphrase):  # the first tenant's own repeat (exact cache) and paraphrase (semantic)
        again = _ask(first, ask)
        assert moe(again)["cache_hit"] is True, ask
        assert again.choices[0].message.content == FIRST and len(calls_for(scripted.calls(), m)) == calls

    _script(scripted, m, SECOND)  # (clears the calls seen)
    for ask in (question, paraphrase):  # asked by two other tenants: word for word, then the paraphrase
        other = asyncio.run(_create_key(infra["postgres"], "user", f"tenant-iso-{uuid.uuid4().hex[:8]}"))
        client = openai.OpenAI(base_url=base_url, api_key=other, max_retries=0, timeout=60)
        before = len(calls_for(scripted.calls(), m))
        answer = _ask(client, ask)
        assert moe(answer)["cache_hit"] is False, ask
        assert answer.choices[0].message.content == SECOND, "the other tenant's request went to the models"
        assert len(calls_for(scripted.calls(), m)) > before, "the models were called for the other tenant"
    assert _ask(first, question).choices[0].message.content == FIRST  # and the first tenant's entry stands


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
