"""Issue 30, *Done when*: every question kind listed under the issue's *Why* is answered exactly with zero tokens
in at least three phrasings (terse, chatty, German or with number words), and distractors still reach a model.
Each value is checked against an independent computation (ipaddress, Decimal, int/format, trial division);
through the planner on the in-memory broker, no model is called for the kinds and the model plans the
distractors."""

from __future__ import annotations

import ipaddress
import json
from decimal import ROUND_HALF_UP, Decimal

import pytest
from faststream.kafka import TestKafkaBroker

from mcp_service.tools import IMPLEMENTATIONS
from moe_core.contracts import ChatMessage, ChatRequest, Plan, ToolTask, deadline_in
from moe_core.contracts.tools import select_tools
from planner.preflight import recognise
from planner.tool_catalogue import ToolCatalogue
from tests.support.in_memory import collect, planner_on

pytestmark = pytest.mark.unit
ALL = ToolCatalogue(select_tools())
NET = ipaddress.ip_network


def cents(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def largest_factor(n: int) -> int:
    p, last = 2, 1
    while p * p <= n:
        while n % p == 0:
            n, last = n // p, p
        p += 1
    return n if n > 1 else last


# (kind, phrasings, tool, result field, the value computed independently)
KINDS = [
    ("broadcast of a subnet", ["broadcast address of 10.1.4.0/22", "hey, what's the broadcast of 10.1.4.0/22?",
                               "Broadcast-Adresse von 10.1.4.0/22"],
     "subnet_calc", "broadcast", str(NET("10.1.4.0/22").broadcast_address)),
    ("usable hosts of a /26", ["usable hosts in a /26", "how many usable hosts does a /26 have?",
                               "Wie viele nutzbare Hosts hat ein /26?"],
     "subnet_calc", "usable_hosts", str(NET("0.0.0.0/26").num_addresses - 2)),
    ("usable hosts of a /27", ["usable hosts in a /27?", "How many usable hosts are there in a /27?",
                               "nutzbare Hosts von einem /27"],
     "subnet_calc", "usable_hosts", str(NET("0.0.0.0/27").num_addresses - 2)),
    ("mask of a /20", ["What is the mask of a /20?", "netmask for a /20", "Netzmaske von einem /20"],
     "subnet_calc", "netmask", str(NET("0.0.0.0/20").netmask)),
    ("hexadecimal representation", ["What's the hexadecimal representation of 255?", "255 in hex",
                                    "255 in Hexadezimal", "the hexadecimal representation of two hundred fifty-five"],
     "number_base", "in_bases", format(255, "X")),
    ("binary representation", ["the binary representation of 200", "200 in binary", "Binärdarstellung von 200",
                               "what is two hundred written in binary"],
     "number_base", "in_bases", format(200, "b")),
    ("compound interest, end amount", [
        "If I invest $2,000 at 5% compounded yearly for 3 years, how much do I end up with?",
        "compound interest on $2,000 at 5% compounded annually for 3 years",
        "2000 Euro mit 5% Zinseszins jährlich über 3 Jahre"],
     "decimal_finance", "result", cents(Decimal(2000) * Decimal("1.05") ** 3)),
    ("a tip on a bill", ["What's an 18% tip on a $64.50 bill?", "18 percent tip on 64.50 dollars",
                         "18% Trinkgeld auf 64.50 Euro"],
     "decimal_finance", "result", cents(Decimal("64.50") * 18 / 100)),
    ("largest prime factor", ["the largest prime factor of 13195", "what's the biggest prime factor of 13,195?",
                              "largest prime factor of thirteen thousand one hundred and ninety-five"],
     "prime_factorize", "flat", str(largest_factor(13195))),
]
PHRASINGS = [(kind, q, tool, field, value) for kind, qs, tool, field, value in KINDS for q in qs]
DISTRACTORS = ["why do subnets have a broadcast address?", "is a /26 big enough for my office?",
               "Why do programmers write 255 as FF?", "Should I invest $2,000 at 5% or pay off my loan?",
               "Is an 18% tip on $64.50 rude in Japan?", "who found the largest prime factor of 13195 first?",
               "Welche Subnetzmaske empfiehlst du für mein Büro?"]


def test_every_kind_has_at_least_three_phrasings() -> None:
    assert all(len(qs) >= 3 for _, qs, *_ in KINDS)


@pytest.mark.parametrize(("kind", "question", "tool", "field", "value"), PHRASINGS)
def test_the_kind_is_answered_exactly(kind: str, question: str, tool: str, field: str, value: str) -> None:
    task = recognise(question, ALL)
    assert task is not None and task.tool == tool, f"{kind}: not claimed: {question!r}"
    result = IMPLEMENTATIONS[tool](task.args).result
    shown = result[field]
    if field == "in_bases":
        shown = next(iter(shown.values()))
    elif field == "flat":
        shown = str(max(int(p) for p in shown))
    assert shown == value


@pytest.mark.parametrize("question", DISTRACTORS)
def test_distractors_are_not_claimed(question: str) -> None:
    assert recognise(question, ALL) is None


@pytest.mark.infra  # the planner's memo is real Redis; FastStream's in-memory broker
async def test_through_the_planner_kinds_cost_no_tokens_and_distractors_reach_the_model(redis, namespace: str) -> None:
    llm, bus = planner_on(namespace, redis, [{"reply": json.dumps({"tasks": [
        {"category": "general", "instruction": "answer the question"}]})}])
    plans = collect(bus, bus.topics.plans, Plan)
    tools = collect(bus, bus.topics.tasks_mcp, ToolTask)
    questions = [q for _, q, *_ in PHRASINGS]
    async with TestKafkaBroker(bus.broker):
        for i, question in enumerate(questions):
            await bus.publish(ChatRequest(response_id=f"r{i}-{namespace}", tenant_id="t", deadline_at=deadline_in(30),
                                          mode="moe-orchestrator",
                                          messages=[ChatMessage(role="user", content=question)]), bus.topics.requests)
        assert llm.state.scripted.get_calls() == [], "no model call (zero tokens) for a kind of the issue"
        for i, question in enumerate(DISTRACTORS):
            await bus.publish(ChatRequest(response_id=f"d{i}-{namespace}", tenant_id="t", deadline_at=deadline_in(30),
                                          mode="moe-orchestrator",
                                          messages=[ChatMessage(role="user", content=question)]), bus.topics.requests)
    assert [p.source for p in plans[:len(questions)]] == ["preflight"] * len(questions)
    assert all(p.usage.total_tokens == 0 for p in plans[:len(questions)])
    assert len(tools) == len(questions)
    assert len(llm.state.scripted.get_calls()) == len(DISTRACTORS)  # each distractor was planned by the model
    assert [p.source for p in plans[len(questions):]] == ["llm"] * len(DISTRACTORS)
