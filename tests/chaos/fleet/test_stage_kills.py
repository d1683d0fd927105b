"""SIGKILL of each stage while a request is in flight, then a restart: the request is answered, once.

Stages that call a model or the web are killed while the scripted server holds their call (a rule with a
long delay, used once; the restarted stage gets the quick rule). graph-rag and mcp call nothing we can hold:
they are frozen (SIGSTOP) before the request and killed once their task is on their topic, uncommitted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from moe_core.contracts import Topics
from tests.conftest import Scripted
from tests.e2e.helpers import plan_reply
from tests.e2e.research_fixtures import Searx
from tests.lineage.conftest import LineageFleet
from tests.support.chaos import Background, Outcome
from tests.support.chaos_infra import PrivateInfra
from tests.support.fleet import Fleet
from tests.support.record_check import assert_complete
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.chaos
HOLD = {"delay_ms": 300_000, "times": 1}  # far longer than the deadline: only the kill ends it


def _expert(m: str, reply: str) -> list[dict[str, Any]]:
    return [{"model": "expert-model", "contains": m, "reply": f"{reply}\nCONFIDENCE: high"},
            {"model": "judge-model", "contains": m, "reply": reply}]


@dataclass
class Case:
    stage: str
    rules: Callable[[str, str], list[dict[str, Any]]]  # (marker, expected reply) -> scripted rules
    held: Callable[[Scripted, Searx, str], bool] | None = None  # the stage's call is held; None: frozen
    question: str = "Explain {m} in one line"
    model: str = "moe-orchestrator"
    web: list[dict[str, Any]] = field(default_factory=list)  # scripted SearXNG rules (their hold)


def _model_call(model: str, system: str = "") -> Callable[[Scripted, Searx, str], bool]:
    return lambda scripted, _, m: any(m in json.dumps(c["messages"]) and system in json.dumps(c["messages"])
                                      for c in scripted.calls(model))


CASES = [
    Case("planner", lambda m, r: [{"model": "planner-model", "contains": m, "reply": "{}", **HOLD},
                                  {"model": "planner-model", "contains": m, "reply": plan_reply(("general", m))},
                                  *_expert(m, r)],
         _model_call("planner-model")),
    Case("expert-worker", lambda m, r: [{"model": "planner-model", "contains": m, "reply": plan_reply(("general", m))},
                                        {"model": "expert-model", "contains": m, "reply": "late", **HOLD},
                                        *_expert(m, r)],
         _model_call("expert-model")),
    Case("merger", lambda m, r: [{"model": "planner-model", "contains": m,
                                  "reply": plan_reply(("general", f"one {m}"), ("science", f"two {m}"))},
                                 {"model": "judge-model", "contains": m, "reply": "late", **HOLD}, *_expert(m, r)],
         _model_call("judge-model")),
    Case("critic", lambda m, r: [{"model": "planner-model", "contains": m,
                                  "reply": plan_reply(("medical_consult", m))},
                                 {"model": "judge-model", "system_contains": "You review", "reply": "CONFIRMED",
                                  **HOLD},
                                 {"model": "judge-model", "system_contains": "You review", "reply": "CONFIRMED"},
                                 *_expert(m, r)],
         _model_call("judge-model", "You review"), question="Is {m} safe to take with water?"),
    Case("research", lambda m, r: [{"model": "planner-model", "contains": m, "reply": plan_reply(("general", m))},
                                   *_expert(m, r)],
         lambda _, searx, m: any(m in c.get("q", "") for c in searx.calls()), model="moe-orchestrator-research",
         web=[{"contains": "{m}", "results": [{"title": "T", "url": "https://example.org/t", "content": "{m}"}]}]),
    Case("graph-rag", lambda m, r: [{"model": "planner-model", "contains": m, "reply": plan_reply(("general", m))},
                                    *_expert(m, r)]),
    Case("mcp", lambda m, r: [{"model": "planner-model", "contains": m, "reply": json.dumps({"tasks": [
        {"kind": "tool", "category": "precision", "tool": "subnet_calc", "args": {"network": "10.9.0.0/24"},
         "instruction": f"subnet facts {m}"}]})}, *_expert(m, r)],
         question="Give the subnet facts of 10.9.0.0/24 ({m})"),
]
INPUT_TOPIC = {"graph-rag": "tasks_graph", "mcp": "tasks_mcp"}


def _web(rules: list[dict[str, Any]], m: str, held: bool) -> list[dict[str, Any]]:
    text = json.dumps(rules).replace("{m}", m)
    return [{**rule, **({"delay_ms": HOLD["delay_ms"]} if held else {})} for rule in json.loads(text)]


def answers_of(reader: TopicReader, topic: str, outcome: Outcome) -> list[dict[str, Any]]:
    response_id = str(outcome.body["id"]).removeprefix("chatcmpl-")
    return reader.on(topic, lambda a: a.get("response_id") == response_id)


async def until(check: Callable[[], Any], what: str, timeout_s: float = 60) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not check():
        assert loop.time() < end, f"timed out after {timeout_s}s waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("case", CASES, ids=[c.stage for c in CASES])
async def test_a_stage_killed_mid_request_and_restarted_answers_it(
        case: Case, chaos_fleet: Fleet, chaos_url: str, chaos_key: str, private_infra: PrivateInfra,
        scripted: Scripted, searxng: Searx, chaos_record: LineageFleet) -> None:
    m = f"K{uuid.uuid4().hex[:8]}"
    reply = f"Answered after the {case.stage} came back ({m})."
    scripted.script(case.rules(m, reply))
    searxng.script(_web(case.web, m, held=True))
    stage = chaos_fleet[case.stage]
    topics = Topics.for_namespace(chaos_fleet["gateway"].env["MOE_TOPIC_NAMESPACE"])
    input_topic = getattr(topics, INPUT_TOPIC.get(case.stage, "requests"))
    async with TopicReader(private_infra.endpoints()["kafka"], topics.answers, input_topic) as reader:
        if case.held is None:
            assert stage.proc is not None
            os.killpg(stage.proc.pid, signal.SIGSTOP)  # frozen: its task will wait on its topic
        asking = Background(chaos_url, chaos_key, case.question.format(m=m), model=case.model)
        if case.held is not None:
            await until(lambda: case.held(scripted, searxng, m), f"the {case.stage}'s call to be held")  # type: ignore[misc]
        else:
            await reader.wait(input_topic, lambda body: m in json.dumps(body), timeout_s=60)
        stage.kill()  # SIGKILL: nothing is committed, nothing said goodbye
        searxng.script(_web(case.web, m, held=False))
        stage.start()
        await asyncio.to_thread(stage.wait_ready)
        outcome = await asyncio.to_thread(asking.result)
        assert outcome.status == 200, (outcome.status, outcome.body, outcome.failure)
        if case.stage != "mcp":
            assert outcome.content == reply
        else:
            assert "10.9.0" in outcome.content
        answers = await asyncio.wait_for(_answers(reader, topics.answers, outcome), 30)
        assert {a["content"] for a in answers} == {outcome.content}  # a republished answer is the same answer
    # the request is recorded once; its answer as often as it was published (a redelivered input after the kill can
    # make the merger publish its remembered answer again: 4 times for the planner in one CI run), each the same
    # answer (asserted on the topic above), and the client got it once
    await asyncio.to_thread(assert_complete, chaos_record, [outcome.response_id], once=("ChatRequest",))


async def _answers(reader: TopicReader, topic: str, outcome: Outcome) -> list[dict[str, Any]]:
    while not (found := answers_of(reader, topic, outcome)):
        await asyncio.sleep(0.05)
    return found
