"""The merger's handlers on FastStream's in-memory broker (Redis is real, models are scripted): thinking and
judge streamed as deltas, provenance, drafts for the critic, tool calls, research fallback, learning, cancel."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from merger.app import create_app
from merger.settings import MergerSettings
from moe_core.contracts import (
    Answer,
    AnswerDelta,
    Cancel,
    Draft,
    IngestEvent,
    Plan,
    PlannedTask,
    Progress,
    ResearchTask,
    Source,
    TaskResult,
    Usage,
    deadline_in,
)
from moe_core.llm.inference import InferenceClient, InferenceConfig
from moe_core.runtime.bus import Bus
from tests.support.scripted_core import completion_tokens, prompt_tokens
from tests.support.scripted_llm import create_app as scripted_llm

pytestmark = pytest.mark.infra  # real Redis (and Kafka where named)
MODELS = '[{"name":"s","url":"http://s","models":["judge-model","think-model"],"max_retries":0}]'
TOPICS = {"answers": Answer, "deltas": AnswerDelta, "drafts": Draft, "ingest": IngestEvent,
          "tasks_research": ResearchTask, "progress": Progress}


class Harness:
    def __init__(self, namespace: str, redis: Any, rules: list[dict[str, Any]], **settings: Any) -> None:
        self.llm = scripted_llm({"models": ["judge-model", "think-model"], "rules": rules})
        config = MergerSettings(topic_namespace=namespace, inference_servers=MODELS,
                                model_assignments='{"judge": ["judge-model"], "thinking": ["think-model"]}',
                                **settings)
        inference = InferenceClient(InferenceConfig.from_settings(config),
                                    httpx.AsyncClient(transport=httpx.ASGITransport(app=self.llm)))
        self.bus = Bus(config)
        self.app = create_app(config, bus=self.bus, inference=inference, redis=redis, manage_broker=False,
                              sweeper=False)
        self.out: dict[str, list[Any]] = {name: [] for name in TOPICS}
        for name, model in TOPICS.items():
            self.bus.broker.subscriber(getattr(self.bus.topics, name))(self._collector(name, model))
        self.rid = f"r-{namespace}"

    def _collector(self, name: str, model: type) -> Any:
        def collect(message: dict[str, Any]) -> None:
            self.out[name].append(model.model_validate(message))
        return collect

    def calls(self, model: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.llm.state.scripted.get_calls() if model is None or c["model"] == model]

    def plan(self, *tasks: tuple[str, str, str], mode: str = "moe-orchestrator") -> Plan:
        planned = [PlannedTask(task_id=tid, kind=kind, category=cat, instruction=f"do {cat}")  # type: ignore[arg-type]
                   for tid, kind, cat in tasks]
        return Plan(response_id=self.rid, tenant_id="t", deadline_at=deadline_in(60), mode=mode,
                    question="What about tides?", tasks=planned, planner_model="planner-model",
                    usage=Usage(prompt_tokens=11, completion_tokens=3))

    def result(self, tid: str, cat: str, content: str, conf: str = "medium", kind: str = "expert",
               **kw: Any) -> TaskResult:
        return TaskResult(response_id=self.rid, tenant_id="t", deadline_at=deadline_in(60), task_id=tid,
                          kind=kind, category=cat, content=content, confidence=conf,  # type: ignore[arg-type]
                          model="expert-model", server="s", usage=Usage(prompt_tokens=5, completion_tokens=2), **kw)

    async def send(self, *messages: Plan | TaskResult | Cancel | Answer) -> None:
        topics = {Plan: "plans", TaskResult: "results", Cancel: "cancel", Answer: "answers"}
        for message in messages:
            await self.bus.publish(message, getattr(self.bus.topics, topics[type(message)]))

    def streamed(self, channel: str) -> str:
        return "".join(d.content for d in self.out["deltas"] if d.channel == channel)


async def test_the_graph_facts_the_judge_did_not_tag_are_the_answers_graph_context(redis, namespace: str) -> None:
    """A judge that tags no fact (the local model never does): the facts it was given are still on the answer, as
    `graph_context` sources, so a clinician sees which reviewed knowledge it was written with."""
    judge = {"model": "judge-model", "reply": "Do not give Vexotrin with severe kidney disease."}
    h = Harness(namespace, redis, [judge], thinking=False, research_fallback=False)
    facts = [Source(kind="graph", ref="rel-9", title="Vexotrin CONTRAINDICATES Severe kidney disease")]
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "medical_consult"), ("g1", "graph", "knowledge_graph")),
                     h.result("t1", "medical_consult", "It is safe.", "medium"),
                     h.result("g1", "knowledge_graph", "Vexotrin CONTRAINDICATES Severe kidney disease", kind="graph",
                              sources=facts))
    [out] = h.out["answers"] or [d.answer for d in h.out["drafts"]]  # a medical answer goes to the critic first
    assert [(s.kind, s.ref) for s in out.sources] == [("expert", "medical_consult:expert-model@s"),
                                                      ("graph_context", "rel-9")]


def _usage_of(calls: list[dict[str, Any]]) -> tuple[int, int]:
    return (sum(prompt_tokens(c["messages"]) for c in calls), sum(completion_tokens(c["reply"]) for c in calls))


async def test_thinking_and_judge_stream_as_deltas_and_add_up(redis, namespace: str) -> None:
    h = Harness(namespace, redis, [
        {"model": "think-model", "reply": "Both say the Moon. The graph confirms it."},
        {"model": "judge-model", "reply": "The Moon's gravity [REF:Moon] causes tides [REF:Earth] twice a day. "
                                          '<SYNTHESIS_INSIGHT>{"summary": "Tides follow the Moon\'s gravity.", '
                                          '"entities": ["Moon", "Tide"], "insight_type": "causal"}'
                                          "</SYNTHESIS_INSIGHT>"},
    ])
    graph_sources = [Source(kind="graph", ref="rel-7", title="Moon CAUSES Tide")]
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general"), ("t2", "expert", "science"),
                            ("g1", "graph", "knowledge_graph")),
                     h.result("t1", "general", "The Moon pulls."), h.result("t2", "science", "Gravity.", "high"),
                     h.result("g1", "knowledge_graph", "Moon CAUSES Tide", kind="graph", sources=graph_sources))
    [answer] = h.out["answers"]
    assert answer.content == "The Moon's gravity causes tides twice a day."
    assert answer.reasoning == "Both say the Moon. The graph confirms it."
    assert h.streamed("content") == answer.content and h.streamed("reasoning") == answer.reasoning
    assert [d.seq for d in h.out["deltas"]] == list(range(len(h.out["deltas"])))
    channels = [d.channel for d in h.out["deltas"]]
    assert channels == sorted(channels, key=lambda c: c != "reasoning")  # all reasoning before the content
    assert [(s.kind, s.ref) for s in answer.sources] == [
        ("expert", "science:expert-model@s"), ("expert", "general:expert-model@s"),
        ("graph", "rel-7"), ("graph", "Earth")]
    judge = h.calls("judge-model")[0]
    assert "Thinking so far:\nBoth say the Moon." in judge["messages"][1]["content"]
    prompt, completion = _usage_of(h.calls())
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11 + 3 * 5 + prompt, 3 + 3 * 2 + completion)
    assert answer.model_calls == 1 + 3 + 2
    assert [p.event for p in h.out["progress"]] == ["thinking", "judging"]
    [learned] = h.out["ingest"]
    assert (learned.answer, learned.source_expert, learned.confidence) == (answer.content, "science", "high")
    assert learned.question == "What about tides?" and "SYNTHESIS" not in h.streamed("content")
    assert learned.synthesis is not None and learned.synthesis_insight == "Tides follow the Moon's gravity."
    assert (learned.synthesis.entities, learned.synthesis.insight_type) == (["Moon", "Tide"], "causal")
    assert "<SYNTHESIS_INSIGHT>" in judge["messages"][0]["content"]  # three results: the judge may emit one


async def test_single_confident_expert_is_the_fast_path_and_still_learned(redis, namespace: str) -> None:
    h = Harness(namespace, redis, [])
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general"), ("g1", "graph", "knowledge_graph")),
                     h.result("t1", "general", "Paris.", "high"), h.result("g1", "knowledge_graph", "", kind="graph"))
    assert [a.content for a in h.out["answers"]] == ["Paris."]
    assert h.calls() == [] and h.out["deltas"] == []
    assert h.out["answers"][0].missing == []  # an empty graph result is not a gap
    assert [(e.answer, e.confidence, e.synthesis_insight) for e in h.out["ingest"]] == [("Paris.", "high", None)]


async def test_a_fast_path_answer_cut_at_max_tokens_says_length(redis, namespace: str) -> None:
    """A direct expert's answer cut at the client's max_tokens is the answer as it is: finish_reason length (a real
    user's max_tokens=2 got "Lis" with finish_reason stop), and so it is never cached as a whole answer."""
    h = Harness(namespace, redis, [])
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general")),
                     h.result("t1", "general", "Lis", "high", finish_reason="length"))
    assert [(a.content, a.finish_reason) for a in h.out["answers"]] == [("Lis", "length")]
    assert h.calls() == []  # the fast path: no judge


async def test_medical_answers_go_to_the_critic_without_content_deltas(redis, namespace: str) -> None:
    h = Harness(namespace, redis, [{"model": "think-model", "reply": "Check the dose."},
                                   {"model": "judge-model", "reply": "Take 500 mg."}])
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "medical_consult"), ("t2", "expert", "general")),
                     h.result("t1", "medical_consult", "500 mg."), h.result("t2", "general", "Some."))
        await h.send(h.result("t2", "general", "Some."))  # redelivery: the draft again, no new model call
    assert h.out["answers"] == [] and h.out["ingest"] == []
    assert h.streamed("content") == "" and h.streamed("reasoning") == "Check the dose."
    assert len(h.out["drafts"]) == 2 and len(h.calls()) == 2
    draft = h.out["drafts"][0]
    assert (draft.answer.content, draft.question, draft.categories) == (
        "Take 500 mg.", "What about tides?", ["medical_consult", "general"])
    assert draft.ingest is not None and draft.ingest.knowledge_type in ("medical", "general")
    assert h.out["progress"][-1].event == "critic"


async def test_tool_calls_of_an_agent_expert_come_back_without_a_judge(redis, namespace: str) -> None:
    calls = [{"id": "call_0", "type": "function", "function": {"name": "read_file", "arguments": '{"p": "a"}'}}]
    h = Harness(namespace, redis, [])
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "code_reviewer"), ("t2", "expert", "technical_support"),
                            mode="moe-orchestrator-agent"),
                     h.result("t1", "code_reviewer", "", tool_calls=calls), h.result("t2", "technical_support", "Hm."))
    [answer] = h.out["answers"]
    assert answer.tool_calls == calls and answer.content == ""
    assert h.calls() == []


async def test_low_confidence_triggers_one_research_fallback_and_waits_for_it(redis, namespace: str) -> None:
    web = [Source(kind="web", ref="web:1", title="Tides", url="https://tides.example")]
    h = Harness(namespace, redis, [{"model": "judge-model", "reply": "Tides come from the Moon [1]."}], thinking=False)
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general")), h.result("t1", "general", "Not sure.", "low"))
        await h.send(h.result("t1", "general", "Not sure.", "low"))  # redelivery: still one fallback
        assert h.out["answers"] == [] and len(h.out["tasks_research"]) == 1
        task = h.out["tasks_research"][0]
        assert (task.task_id, task.queries, task.category) == ("rf1", ["do general"], "research")
        await h.send(TaskResult(**task.child_fields(), task_id="rf1", kind="research", category="research",
                                content="[1] Tides\nhttps://tides.example\nThe Moon.", sources=web))
    [answer] = h.out["answers"]
    assert answer.content == "Tides come from the Moon [1]."
    assert ("web", "web:1", "https://tides.example") in [(s.kind, s.ref, s.url) for s in answer.sources]
    assert "The Moon." in h.calls("judge-model")[0]["messages"][1]["content"]
    assert h.out["progress"][0].event == "researching"


async def test_modes_shape_the_judged_answer(redis, namespace: str) -> None:
    words = " ".join(f"w{i}" for i in range(200))
    h = Harness(namespace, redis, [{"model": "judge-model", "reply": words}], thinking=False)
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general"), ("t2", "expert", "math"), mode="moe-orchestrator-concise"),
                     h.result("t1", "general", "a"), h.result("t2", "math", "b"))
    [answer] = h.out["answers"]
    assert len(answer.content.split()) == 120 and h.streamed("content") == answer.content
    assert "at most 120 words" in h.calls("judge-model")[0]["messages"][0]["content"]


async def test_plan_mode_shows_the_plan_before_the_answer(redis, namespace: str) -> None:
    """The plan mode forces the thinking step (as in the original): even one confident result goes through
    thinking and the judge."""
    h = Harness(namespace, redis, [{"model": "think-model", "reply": "One source."},
                                   {"model": "judge-model", "reply": "Paris."}])
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general"), mode="moe-orchestrator-plan"),
                     h.result("t1", "general", "Paris.", "high"))
    [answer] = h.out["answers"]
    assert answer.content == "Plan:\n1. [expert] general: do general\n\nParis."
    assert answer.reasoning == "One source." and len(h.calls("think-model")) == len(h.calls("judge-model")) == 1


async def test_a_cancelled_request_ends_without_any_model_call(redis, namespace: str) -> None:
    h = Harness(namespace, redis, [{"model": "judge-model", "reply": "never"}])
    plan = h.plan(("t1", "expert", "general"), ("t2", "expert", "math"))
    async with TestKafkaBroker(h.bus.broker):
        await h.send(plan, h.result("t1", "general", "a"))
        await h.send(Cancel(**plan.child_fields()))
        await h.send(h.result("t2", "math", "b"))  # a late result: new to the request, it publishes nothing
        late = len(h.out["answers"])
        await h.send(h.result("t1", "general", "a"))  # a redelivery: the stored answer again (its publish may be lost)
    assert h.calls() == []
    assert late == 1  # the audit timeline showed the same Answer twice
    assert [a.error.code if a.error else None for a in h.out["answers"]] == ["cancelled", "cancelled"]
    first, again = h.out["answers"]
    assert (again.content, again.error, again.usage) == (first.content, first.error, first.usage)
    assert h.out["ingest"] == []


async def test_a_judge_failure_falls_back_to_the_best_result(redis, namespace: str) -> None:
    h = Harness(namespace, redis, [{"model": "judge-model", "status": 500}], thinking=False, research_fallback=False)
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general"), ("t2", "expert", "math")),
                     h.result("t1", "general", "low answer", "low"), h.result("t2", "math", "4", "high"))
    assert h.out["answers"][0].content == "4"


async def test_context_alone_is_never_the_answer_when_the_experts_and_the_judge_fail(redis, namespace: str) -> None:
    """Every model down: the expert failed, the graph task found facts, the judge failed. The facts are context
    for a judge, not an answer: the request fails with what could not answer (found by stopping the model server
    under `make up`: the client got "blue IS_A Software [0.72]" as its answer)."""
    h = Harness(namespace, redis, [{"model": "judge-model", "status": 500}], thinking=False, research_fallback=False)
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "science"), ("t2", "graph", "knowledge_graph")),
                     h.result("t1", "science", "", error="connect: refused"),
                     h.result("t2", "knowledge_graph", "Knowledge graph facts:\n- blue IS_A Software [0.72]",
                              kind="graph"))
    [answer] = h.out["answers"]
    assert answer.error is not None and answer.error.code == "inference_unavailable"
    assert "science" in answer.error.message and "IS_A" not in answer.content


async def test_a_failed_expert_is_named_as_a_gap_not_as_late(redis, namespace: str) -> None:
    h = Harness(namespace, redis, [{"model": "judge-model", "status": 500}], thinking=False, research_fallback=False)
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general"), ("t2", "expert", "math")),
                     h.result("t1", "general", "", error="connect: refused"), h.result("t2", "math", "4", "high"))
    assert h.out["answers"][0].content == "4\n\n(Incomplete: no usable answer from: general.)"


async def test_a_source_header_the_judge_copies_is_not_shown(redis, namespace: str) -> None:
    """Seen with the embedded model under `make up`: an answer began "#3 expert/creative_writer, medium:", the
    header the judge's sources are listed under (merger.synthesis)."""
    h = Harness(namespace, redis, [{"model": "judge-model",
                                    "reply": "#1 expert/science, high:\nTides come from the Moon."}], thinking=False)
    async with TestKafkaBroker(h.bus.broker):
        await h.send(h.plan(("t1", "expert", "general"), ("t2", "expert", "science")),
                     h.result("t1", "general", "The Moon pulls."), h.result("t2", "science", "Gravity.", "high"))
    [answer] = h.out["answers"]
    assert answer.content == "Tides come from the Moon."
    assert h.streamed("content") == answer.content
