"""The planner's precision preflight (deterministic recogniser -> one tool task, no model call) and the
planner model's tool tasks (schema, prompt, sanitising against the catalogue)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from moe_core.contracts import ChatMessage, ChatRequest, ExpertTask, Plan, ToolTask, deadline_in
from moe_core.contracts.tools import TOOL_SPECS, select_tools
from moe_core.runtime.bus import Bus
from planner import core
from planner.app import create_app
from planner.preflight import recognise
from planner.settings import PlannerSettings
from planner.tool_catalogue import ToolCatalogue
from tests.support.in_memory import collect, scripted_inference
from tests.support.scripted_llm import create_app as scripted_app

pytestmark = pytest.mark.unit
ALL = ToolCatalogue(select_tools())
CATEGORIES = ["general", "math", "science"]

RECOGNISED: list[tuple[str, str, dict[str, Any]]] = [
    ("What is 17% of 2,340?", "calculate", {"expression": "17% of 2340"}),
    ("what's 15 percent of 80", "calculate", {"expression": "15% of 80"}),
    ("What is 12 * (3 + 4)?", "calculate", {"expression": "12 * (3 + 4)"}),
    ("2+2", "calculate", {"expression": "2+2"}),
    ("Calculate 3 squared plus 4 squared", "calculate", {"expression": "3^2 + 4^2"}),
    ("What is the square root of 144?", "calculate", {"expression": "sqrt(144)"}),
    ("what is 10 divided by 4", "calculate", {"expression": "10 / 4"}),
    ("What is 1,234 + 1?", "calculate", {"expression": "1234 + 1"}),
    ("Convert 100 km/h to m/s", "unit_convert", {"value": "100", "from_unit": "km/h", "to_unit": "m/s"}),
    ("What is 5 kg in pounds?", "unit_convert", {"value": "5", "from_unit": "kg", "to_unit": "pounds"}),
    ("How many feet are in a mile?", "unit_convert", {"value": "1", "from_unit": "mile", "to_unit": "feet"}),
    ("Convert 100 °F to °C", "unit_convert", {"value": "100", "from_unit": "°F", "to_unit": "°C"}),
    ("How many days are between 2024-02-01 and 2024-03-01?", "date_diff",
     {"start": "2024-02-01", "end": "2024-03-01"}),
    ("How many days from January 1, 2024 to March 1st 2024?", "date_diff",
     {"start": "2024-01-01", "end": "2024-03-01"}),
    ("What day of the week is 2024-07-04?", "day_of_week", {"date": "2024-07-04"}),
    ("What day was July 4, 1776?", "day_of_week", {"date": "1776-07-04"}),
    ("What date is 30 days after 2024-01-15?", "date_add", {"date": "2024-01-15", "days": 30}),
    ("What date was 2 weeks before 2024-01-15?", "date_add", {"date": "2024-01-15", "weeks": -2}),
    ("Is 2024 a leap year?", "calendar_facts", {"year": 2024}),
    ("When is Easter 2025?", "calendar_facts", {"year": 2025}),
    ("How many days are in February 2024?", "calendar_facts", {"year": 2024, "month": 2}),
    ("Convert 2024-03-10 14:00 from America/New_York to Europe/Berlin", "timezone_convert",
     {"datetime": "2024-03-10T14:00", "from_tz": "America/New_York", "to_tz": "Europe/Berlin"}),
    ('What is the SHA-256 hash of "hello"?', "hash_text", {"text": "hello", "algorithm": "sha256"}),
    ("md5 of hello world", "hash_text", {"text": "hello world", "algorithm": "md5"}),
    ('Base64 encode "hello"', "base64_codec", {"operation": "encode", "text": "hello"}),
    ("decode aGVsbG8= from base64", "base64_codec", {"operation": "decode", "text": "aGVsbG8="}),
    ("What is the broadcast address of 192.168.1.0/24?", "subnet_calc", {"network": "192.168.1.0/24"}),
    ("Is 10.0.0.5 in 10.0.0.0/24?", "subnet_calc", {"network": "10.0.0.0/24", "contains": "10.0.0.5"}),
    ("How many usable hosts are in 10.0.0.0/22?", "subnet_calc", {"network": "10.0.0.0/22"}),
    ("What's the netmask and broadcast address of 172.16.5.4/20?", "subnet_calc", {"network": "172.16.5.4/20"}),
    ("subnet 2001:db8::/48", "subnet_calc", {"network": "2001:db8::/48"}),
    ("What are the prime factors of 360?", "prime_factorize", {"n": "360"}),
    ("Is 97 prime?", "prime_factorize", {"n": "97"}),
    ("What is 1994 in Roman numerals?", "roman_numeral", {"value": 1994}),
    ("What number is MCMXCIV in roman numerals?", "roman_numeral", {"value": "MCMXCIV"}),
    ("gcd of 12, 18 and 30", "gcd_lcm", {"numbers": [12, 18, 30]}),
    ("What is the least common multiple of 4 and 6?", "gcd_lcm", {"numbers": [4, 6]}),
    ("How many r's are in strawberry?", "text_analyze", {"text": "strawberry", "count": "r"}),
    ("Solve 2x + 3 = 7", "solve_equation", {"equation": "2x + 3 = 7"}),
    ("solve x^2 - 4 = 0 for x", "solve_equation", {"equation": "x^2 - 4 = 0", "variable": "x"}),
    ("What is the derivative of x^3 + 2x?", "math", {"operation": "derivative", "expression": "x^3 + 2x"}),
    ("integrate x^2 from 0 to 3", "math", {"operation": "integral", "expression": "x^2", "lower": "0",
                                           "upper": "3"}),
    ("What is the mean of 1, 2, 3, 4?", "statistics_calc", {"values": ["1", "2", "3", "4"]}),
]

NOT_RECOGNISED = [
    "What is 17% of 2,340 and why does it matter?", "Explain photosynthesis", "What is the capital of France?",
    "What is love?", "What is 5?", "2024-03-01", "Call 555-1234", "convert 3 apples to pears",
    "Write a poem about 2+2", "How many days until my birthday?", "Is 10.0.0.0/8 a good idea for my home network "
    "given that I have two routers and a VPN?", "What is the SHA-256 of a file?\nAnd of a folder?", "",
]


@pytest.mark.parametrize(("question", "tool", "args"), RECOGNISED)
def test_recognised_questions_become_one_tool_task(question: str, tool: str, args: dict[str, Any]) -> None:
    task = recognise(question, ALL)
    assert task is not None, question
    assert (task.kind, task.category, task.tool, task.args, task.task_id) == ("tool", "precision", tool, args, "t1")
    assert task.instruction == question.strip()
    assert ALL.valid(tool, task.args)


@pytest.mark.parametrize("question", NOT_RECOGNISED)
def test_other_questions_are_left_to_the_planner(question: str) -> None:
    assert recognise(question, ALL) is None


def test_a_disabled_tool_is_never_routed_to() -> None:
    without = ToolCatalogue(select_tools("all", "calculate,unit_convert"))
    assert recognise("What is 17% of 2,340?", without) is None
    assert recognise("Convert 100 km/h to m/s", without) is None
    assert recognise("Is 2024 a leap year?", without) is not None


class Tripwire:
    """Stands where the Chroma-backed vectors would be: touching it fails the test (preflight comes first)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the semantic cache/router was consulted ({name}) before the preflight")


@pytest.mark.infra  # real stores
async def test_preflight_is_the_first_route_and_calls_no_model(redis, namespace: str) -> None:
    llm = scripted_app({"models": ["p"], "rules": [{"reply": "must not be called"}]})
    settings = PlannerSettings(topic_namespace=namespace, inference_servers='[{"name":"s","url":"http://s",'
                                                                             '"models":["p"]}]')
    inference = scripted_inference(settings, llm)
    bus = Bus(settings)
    create_app(settings, bus=bus, inference=inference, redis=redis, vectors=Tripwire(),  # type: ignore[arg-type]
               manage_broker=False)
    plans = collect(bus, bus.topics.plans, Plan)
    tools = collect(bus, bus.topics.tasks_mcp, ToolTask)
    experts = collect(bus, bus.topics.tasks_expert, ExpertTask)
    request = ChatRequest(response_id=f"r-{namespace}", tenant_id="t", deadline_at=deadline_in(30),
                          mode="moe-orchestrator", messages=[ChatMessage(role="user", content="Hi"),
                                                             ChatMessage(role="assistant", content="Hello"),
                                                             ChatMessage(role="user", content="What is 17% of 2,340?")])
    async with TestKafkaBroker(bus.broker):
        await bus.publish(request, bus.topics.requests)
    assert llm.state.scripted.get_calls() == []
    plan = plans[0]
    assert (plan.source, plan.complexity, plan.planner_model, plan.usage.total_tokens) == ("preflight", "trivial",
                                                                                          None, 0)
    assert [(t.kind, t.tool, t.args) for t in plan.tasks] == [("tool", "calculate", {"expression": "17% of 2340"})]
    assert experts == []
    assert [(t.task_id, t.tool, t.args, t.question) for t in tools] == [
        ("t1", "calculate", {"expression": "17% of 2340"}, "What is 17% of 2,340?")]


def test_plan_schema_and_prompt_offer_the_catalogue() -> None:
    schema = core.plan_schema(CATEGORIES, 4, ALL)
    item = schema["properties"]["tasks"]["items"]["properties"]
    assert item["tool"]["enum"] == list(TOOL_SPECS) and item["kind"]["enum"] == ["expert", "tool"]
    assert item["category"]["enum"] == [*CATEGORIES, "precision"] and item["args"] == {"type": "object"}
    assert "tool" not in core.plan_schema(CATEGORIES, 4)["properties"]["tasks"]["items"]["properties"]
    system = core.planner_messages("q", CATEGORIES, 4, ALL)[0]["content"]
    for spec in TOOL_SPECS.values():
        assert f"- {spec.name} {spec.hint}: {spec.brief}" in system
    only = ToolCatalogue(select_tools("hash_text"))
    assert "calculate" not in core.planner_messages("q", CATEGORIES, 4, only)[0]["content"]


@pytest.mark.parametrize(("question", "helps"), [
    ("What is 17% of 2,340 and who invented percentages?", True), ("Convert a mile to metres", True),
    ("SHA-256 of hello, then explain hashing", True), ("What weekday was the moon landing?", True),
    ("Compare a cello and a walrus: explain their history", False), ("Write a poem about autumn", False),
    ("Why is the sky blue and what makes sunsets red?", False),
    ("Compare a cello and a walrus as they were in the year 1043: explain their history", False),
    ("How many days until 2025-12-25, and what is Christmas about?", True), ("Is 97 a prime?", True),
    ("Convert 30 mph, and explain why speed limits exist", True), ("What happened on March 3 in history?", True),
    ("Explain version 3 of the protocol", False),
])
def test_the_planner_model_sees_the_tool_catalogue_only_when_a_tool_could_help(question: str, helps: bool) -> None:
    assert ToolCatalogue.may_help(question) is helps


def test_sanitise_keeps_valid_tool_tasks_and_turns_bad_ones_into_expert_tasks() -> None:
    raw = json.dumps({"tasks": [
        {"kind": "tool", "category": "precision", "tool": "calculate", "args": {"expression": "17% of 2340"},
         "instruction": "the percentage"},
        {"kind": "tool", "category": "precision", "tool": "calculate", "args": {"expression": "17% of 2340"},
         "instruction": "again"},
        {"kind": "tool", "category": "math", "tool": "teleport", "args": {}, "instruction": "beam me up"},
        {"kind": "tool", "tool": "unit_convert", "args": {"value": 1}, "instruction": "convert it"},
        {"tool": "day_of_week", "args": {"date": "2024-07-04"}},
        {"kind": "expert", "category": "science", "instruction": "why it matters", "tool": "calculate"},
    ]})
    tasks = core.sanitise(raw, CATEGORIES, 8, ALL)
    assert [(t.task_id, t.kind, t.category, t.tool, t.instruction) for t in tasks] == [
        ("t1", "tool", "precision", "calculate", "the percentage"),
        ("t2", "expert", "math", None, "beam me up"),
        ("t3", "expert", "general", None, "convert it"),
        ("t4", "tool", "precision", "day_of_week", 'day_of_week {"date": "2024-07-04"}'),
        ("t5", "expert", "science", None, "why it matters"),
    ]
    without_catalogue = core.sanitise(raw, CATEGORIES, 8)
    assert all(t.kind == "expert" for t in without_catalogue)
