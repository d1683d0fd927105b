"""What is measured: the two baselines and the fleet's three paths, each a configuration (which
question, which scripted replies) plus the checks that prove a request really took that path.

Every fleet request is checked twice: from its HTTP response right away, and from its own Kafka
messages after the run (``kafka_check``). A request that took another path counts as an error.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EXPERT_MODEL = "expert-model"
FLEET_MODEL = "moe-orchestrator"
PLAN = {"tasks": [
    {"category": "general", "instruction": "Give the general picture asked for in the question."},
    {"category": "science", "instruction": "Give the scientific detail asked for in the question."},
]}
# What learning extracts from every answer (graph-ingest's `triples` call): two facts about new entities, as a fresh
# question's answer teaches, so learning's graph writes are measured
LEARNED = {"triples": [
    {"subject": "bench subject {seq}", "relation": "IS_A", "object": "bench kind {seq}", "confidence": 0.9},
    {"subject": "bench subject {seq}", "relation": "PART_OF", "object": "bench whole {seq}", "confidence": 0.9},
]}
# gap-healer's answer for each new term of a question (its `classification` call, one or a batch keyed by term:
# bench/llm_server.py `{key}`): an entity of a seeded class in a domain the write policy does not hold, so each
# classification is written as a usable one is (the expert's reply, which it got before, is no JSON: every term was
# rejected, nothing learned)
CLASSIFIED = {"is_entity": True, "name": "{key}", "parent": "Chemical Element", "domain": "science", "aliases": [],
              "confidence": 0.9}
# The zero-latency server's replies: per model, and per schema for the learning stages' structured calls, which go
# to the model their roles fall back to (`ingest`, `gap_healer`: the default, as shipped) and get what a model
# answers when asked for that schema. Every answer is a new one (`{seq}`, in place of a word: as many words as
# before), as real answers are.
SCRIPT: dict[str, Any] = {
    "replies": {
        "planner-model": json.dumps(PLAN),
        EXPERT_MODEL: "A short, precise expert answer to task {seq}.\nCONFIDENCE: high",
        "judge-model": "Merged answer {seq} drawn from both experts.",
    },
    "schemas": {"triples": json.dumps(LEARNED), "classification": json.dumps(CLASSIFIED)},
    "default": "ok",
}
# One sentence of an answer's body (bench.token_stages --answer-words: answers as long as real ones)
_BODY = "Each further sentence of the answer explains one more detail of the subject in plain words."


def script(answer_words: int = 0) -> dict[str, Any]:
    """SCRIPT, with the experts' and the judge's answers `answer_words` words longer: the scripted answers are a
    dozen words, a real one a few hundred, and the token overhead against a direct call depends on that length
    (every call of the fleet repeats the question; the direct answer's own length weighs against it)."""
    if answer_words <= 0:
        return SCRIPT
    words = _BODY.split()
    body = " ".join(words[i % len(words)] for i in range(answer_words))
    replies = dict(SCRIPT["replies"])
    expert, confidence = replies[EXPERT_MODEL].rsplit("\n", 1)
    replies[EXPERT_MODEL] = f"{expert} {body}\n{confidence}"
    replies["judge-model"] = f"{replies['judge-model']} {body}"
    return {**SCRIPT, "replies": replies}


CACHE_QUESTION = "What is the boiling point of water at sea level in degrees Celsius?"

_SUBJECTS = [
    "lithium", "osmium", "a violin", "a glacier", "the Danube", "Kyoto", "a honeybee", "granite", "a lighthouse",
    "the Sahara", "a transistor", "a sequoia", "Reykjavik", "an octopus", "copper", "a steam engine", "coral reefs",
    "the Andes", "a pipe organ", "basalt", "a comet", "Lisbon", "a tardigrade", "tungsten", "a windmill",
    "the Mekong", "a harpsichord", "an axolotl", "Marrakesh", "a geyser", "silicon", "a suspension bridge",
    "the Baltic Sea", "a barn owl", "obsidian", "a sundial", "Quito", "a jellyfish", "helium", "a canal lock",
    "a cello", "the Nile", "Hanoi", "a chameleon", "marble", "a printing press", "the Alps", "a walrus",
    "mercury", "a cathedral", "Nairobi", "a mangrove", "a telescope", "the Arctic Ocean", "quartz", "a lynx",
    "a hot-air balloon", "Montevideo", "a sea turtle", "the Rhine",
]
_ASPECTS = [
    "their history, their physics and their everyday use",
    "how each one formed or was made, and what threatens it today",
    "their chemistry, their economic value and their cultural meaning",
    "how scientists study them and what is still unknown about them",
    "their role in the nineteenth century and their role today",
]


def full_question(i: int) -> str:
    """Distinct multi-part questions, so neither the semantic cache nor the router short-cuts them: the
    planner model must split them. Every request has its own year: the cache never takes a question with
    other numbers for a hit (two of these questions that differ in one common noun only are closer than
    the cache's hard threshold, see docs/performance.md)."""
    pairs = _pairs()
    a, b = pairs[i % len(pairs)]
    aspect = _ASPECTS[i % len(_ASPECTS)]
    return f"Compare {a} and {b} as they were in the year {1000 + i}: explain in detail {aspect}."


_LANGUAGES = ["French", "German", "Spanish", "Italian", "Portuguese", "Dutch", "Swedish", "Polish"]


def trivial_question(i: int) -> str:
    """A short one-expert question (trivial: no planner model), different for every request."""
    return f"Translate 'room number {100 + i}' into {_LANGUAGES[i % len(_LANGUAGES)]}."


def cache_question(_: int) -> str:
    return CACHE_QUESTION


def _pairs() -> list[tuple[str, str]]:
    if not _PAIRS:
        pairs = list(itertools.combinations(_SUBJECTS, 2))
        random.Random(7).shuffle(pairs)
        _PAIRS.extend(pairs)
    return _PAIRS


_PAIRS: list[tuple[str, str]] = []


ResponseCheck = Callable[[dict[str, Any]], str | None]
KafkaCheck = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class Path:
    name: str
    description: str
    question: Callable[[int], str]
    fleet: bool = True
    check: ResponseCheck = field(default=lambda body: None)
    kafka_check: KafkaCheck | None = None


def _content(body: dict[str, Any]) -> str:
    choices = body.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "")


def _meta(body: dict[str, Any]) -> dict[str, Any]:
    return body.get("moe") or {}


def check_baseline(body: dict[str, Any]) -> str | None:
    return None if _content(body) else "empty content"


def check_full(body: dict[str, Any]) -> str | None:
    meta = _meta(body)
    if meta.get("cache_hit"):
        return "answered from the cache"
    if len(meta.get("experts_used") or []) < 2:
        return f"experts_used={meta.get('experts_used')} (expected two experts)"
    return None if _content(body) else "empty content"


def check_trivial(body: dict[str, Any]) -> str | None:
    meta = _meta(body)
    if meta.get("cache_hit"):
        return "answered from the cache"
    if len(meta.get("experts_used") or []) != 1:
        return f"experts_used={meta.get('experts_used')} (expected one expert)"
    return None if _content(body) else "empty content"


def check_cache(body: dict[str, Any]) -> str | None:
    if not _meta(body).get("cache_hit"):
        return "moe.cache_hit is not true"
    used = (body.get("usage") or {}).get("total_tokens")
    return None if used == 0 else f"a cache hit used {used} tokens"


def kafka_full(trace: dict[str, Any]) -> str | None:
    plan, answer = trace.get("plan"), trace.get("answer")
    if answer is None:
        return "no Answer on the answers topic"
    if plan is None:
        return "no Plan on the plans topic"
    if plan["source"] != "llm" or plan["tasks"] < 2:
        return f"plan source={plan['source']} tasks={plan['tasks']} (expected the planner model, >= 2 tasks)"
    # the planner, each expert and the judge (the thinking step only where there is something to weigh; the
    # graph task calls no model)
    if answer["cache_hit"] or answer["model_calls"] < plan.get("experts", plan["tasks"]) + 2:
        return f"answer cache_hit={answer['cache_hit']} model_calls={answer['model_calls']} (expected a judge call)"
    return None


def kafka_trivial(trace: dict[str, Any]) -> str | None:
    plan, answer = trace.get("plan"), trace.get("answer")
    if answer is None:
        return "no Answer on the answers topic"
    if plan is None:
        return "no Plan on the plans topic"
    if plan["source"] != "router" or plan["tasks"] != 1:
        return f"plan source={plan['source']} tasks={plan['tasks']} (expected the router, one task)"
    if answer["cache_hit"] or answer["model_calls"] != 1:
        return f"answer cache_hit={answer['cache_hit']} model_calls={answer['model_calls']} (expected one call)"
    return None


def kafka_cache(trace: dict[str, Any]) -> str | None:
    answer = trace.get("answer")
    if answer is None:
        return "no Answer on the answers topic"
    if not answer["cache_hit"] or answer["model_calls"] != 0:
        return f"answer cache_hit={answer['cache_hit']} model_calls={answer['model_calls']}"
    return None


PATHS: dict[str, Path] = {
    "direct": Path("direct", "load generator -> zero-latency inference server (no gateway)", full_question,
                   fleet=False, check=check_baseline),
    "litellm": Path("litellm", "load generator -> LiteLLM proxy -> the same inference server", full_question,
                    fleet=False, check=check_baseline),
    "full": Path("full", "gateway -> planner (LLM) -> 2 experts -> merger with judge (LLM)", full_question,
                 check=check_full, kafka_check=kafka_full),
    "trivial": Path("trivial", "gateway -> router (no planner LLM) -> 1 expert -> merger fast path",
                    trivial_question, check=check_trivial, kafka_check=kafka_trivial),
    "cache": Path("cache", "gateway -> semantic cache hit (no LLM call)", cache_question,
                  check=check_cache, kafka_check=kafka_cache),
}
BASELINES = ("direct", "litellm")
FLEET_PATHS = ("full", "trivial", "cache")
