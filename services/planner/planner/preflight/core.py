"""Precision preflight: a deterministic recogniser for questions a tool answers exactly, with no LLM call.

Correct before complete: a question is claimed only when one small grammar reads the whole of it and
extracts every argument unambiguously; quoted text is taken exactly as quoted; anything else (a mixed
question, a question about a topic, a relative date, an ambiguous unit) is left to the planner. The
grammars live in the package's other modules; compound questions become one `chain` task."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moe_core.contracts import PlannedTask
from moe_core.contracts.tools import PRECISION_CATEGORY
from planner.preflight import numwords
from planner.preflight.algebra import calculus, solve
from planner.preflight.arith import arithmetic
from planner.preflight.bases import number_base
from planner.preflight.chain import compound
from planner.preflight.compose import compose
from planner.preflight.dates import calendar, current_time, date_add, date_diff, timezone, today_free, weekday
from planner.preflight.dates_typed import dates_typed
from planner.preflight.intent import Intent, Limits, intent_claim
from planner.preflight.lexicon import Question, take_quotes
from planner.preflight.money import finance_typed
from planner.preflight.netfacts import subnet_typed
from planner.preflight.numbers import finance, gcd_lcm, in_words, primes, roman, statistics, subnet
from planner.preflight.stats_typed import statistics_typed
from planner.preflight.text import base64, checksum, compare, hashing, json_valid, text_measure
from planner.preflight.units import convert
from planner.tool_catalogue import ToolCatalogue

Hit = tuple[str, dict[str, Any]]
Rule = Callable[[Question], Hit | None]
I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
MAX_QUESTION = 400
# questions about a thing, not requests to compute it: never a tool answer
# ("how does 255 look in hex", "how would 255 be written in octal" ask for a value, not about one)
ABOUT = re.compile(r"^(?:why|how (?:do|does|did|can|could|should|would|is|are)(?! [\w.]+ (?:be )?(?:look|written|"
                   r"expressed|represented|shown|displayed)\b)|explain|describe|"
                   r"should|who|where|"
                   r"what (?:is|are) (?:a|an|the) (?:difference|purpose|point|use)|tell me about|warum|pourquoi|"
                   r"wie (?:funktioniert|geht|kann|macht|hei\u00dft)|comment|qu'est)\b", I)

# Order matters: compound and specific shapes first, the general arithmetic grammar last.
RULES: list[Rule] = [compound, date_diff, weekday, date_add, calendar, timezone, hashing, base64, checksum,
                     text_measure, compare, subnet, primes, roman, number_base, in_words, gcd_lcm, finance, statistics,
                     subnet_typed, finance_typed, dates_typed, statistics_typed, solve, calculus, convert, arithmetic,
                     compose]  # the composition grammar last: what the older readers answer stays as it was


COURTESY = re.compile(r"^(?:please|hey|hi)[,!]?\s+|\s+please$", I)
END_MARKS = re.compile(r"^\u00bf\s*|\s*[?.]+$")
BANGS = re.compile(r"(?<![\d)])!+$")  # "10!" is a factorial, "hi!" is not


def normalise(question: str) -> Question:
    """Quoted spans out (kept exactly), whitespace collapsed, courtesy words and end punctuation off."""
    text, quoted = take_quotes(question.strip())
    text = " ".join(text.split())
    text = COURTESY.sub("", text)
    text = END_MARKS.sub("", text).strip()
    text = BANGS.sub("", text).strip()
    return Question(raw=question, text=text.rstrip("?. ").strip(), quoted=quoted)


@dataclass(frozen=True)
class Claim:
    """A question claimed for a tool; `intent` is the intent path's confidence (its scores and lead) when that
    path claimed it, None when a grammar bound every word (no confidence: bound and unambiguous, or nothing)."""

    tool: str
    args: dict[str, Any]
    intent: Intent | None = None


def match(question: str) -> Hit | None:
    """The (tool, arguments) a question asks for, or None; no catalogue check."""
    claimed = claim(question)
    return (claimed.tool, claimed.args) if claimed else None


def claim(question: str, limits: Limits | None = None) -> Claim | None:
    """The claim on a question, with the intent path's thresholds `limits` (None: the calibrated ones)."""
    if not question or len(question) > MAX_QUESTION or "\n" in question.strip():
        return None
    json_hit = json_valid(question)
    if json_hit:
        return Claim(*json_hit)
    q = normalise(question)
    if not q.text or ABOUT.match(q.text):
        return None
    now = current_time(q)  # the one question about "now" a tool answers exactly: it reads the clock
    if now is not None or not today_free(q.text):
        return Claim(*now) if now else None
    claimed = _read(q, limits)
    for lang in numwords.configured():  # not answered as written: its number words as digits, if it has any
        spelled = None if claimed is not None else numwords.as_digits(q.text, lang)
        if spelled is not None:
            claimed = _read(Question(raw=q.raw, text=spelled, quoted=q.quoted), limits)
    return claimed


def _read(q: Question, limits: Limits | None) -> Claim | None:
    for rule in RULES:
        hit = rule(q)
        if hit is not None:
            return Claim(*hit)
    intent = intent_claim(q, limits)  # the second path: intent from signals, arguments from typed readers
    return Claim(*intent[0], intent=intent[1]) if intent else None


def recognise(question: str, tools: ToolCatalogue) -> PlannedTask | None:
    """One tool task for a tool-answerable question, or None (the question takes the usual routes)."""
    hit = match(question)
    if hit is None:
        return None
    tool, args = hit
    if not tools.valid(tool, args):
        return None  # the tool is off or the arguments do not fit its schema: no shortcut
    if tool == "chain" and not all(step["tool"] in tools for step in args["steps"]):
        return None
    return PlannedTask(task_id="t1", kind="tool", category=PRECISION_CATEGORY, instruction=question.strip()[:2000],
                       tool=tool, args=args)
