"""The precision evaluation (issues 15 and 30): every question of the written sets (tuning.yaml, heldout.yaml,
probe.yaml) and of the generated parts (generated.py: phrasing templates filled by a seeded generator) through
the planner's preflight and, when it claims one, through the tool itself (in process, the mcp service's code).
An answer is right when the tool's sentence contains the expected answer (a generated question: from its own
tool); a distractor that reaches a tool, a tool error, or a sentence without the expected answer is a wrong
exact answer.

    python tests/data/precision/evaluate.py [--write docs/precision.md]

precision = right / answered (goal 100%); recall = right / questions a tool should answer (goal >= 95%)."""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script (make precision): the repository root makes `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from mcp_service.tools import IMPLEMENTATIONS, ToolError
from moe_core.contracts.tools import select_tools
from planner.preflight import recognise
from planner.preflight.core import claim
from planner.tool_catalogue import ToolCatalogue
from tests.data.precision import calibration_report, generated
from tests.data.precision.external import deepmind

HERE = Path(__file__).parent
WRITTEN = ("tuning", "heldout", "probe")
# issue 53: the held-apart sets in English and German; the three external samples (written elsewhere)
COMPOSE = ("compose_heldout", "german_words", "external-deepmind", "external-deepmind-fresh",
           "external-deepmind-heldout")
SETS = (*WRITTEN, *generated.PARTS, *COMPOSE)
MAX_LISTED = 40  # misses listed per set in the report
HISTORY = [
    "How the numbers came about (recorded by hand, not regenerated): with the preflight as it was before",
    "issue 15 (per-phrasing rules), the same questions gave tuning precision 92.9% (10 wrong of 140 answered),",
    "recall 58.6%, and held-out precision 87.5% (6 wrong of 48 answered), recall 46.7% - among the wrong ones",
    "a hash of the wrong part of a sentence and a Base64 of the whole question. The first held-out run of the",
    "grammars (before any fix driven by the tuning set) gave held-out precision 100% and recall 94.4%. Caveat:",
    "both sets were written by the engineer who wrote the grammars (the held-out set first, without looking at",
    "the code's phrasings); an independently written set would be a stronger test of how the grammars",
    "generalise. The probe's first run: precision 100% (29 answered), recall 96.7%, distractors 10/10.",
    "Issue 30 (subnet, base, money and prime-factor phrasings found missed by independent question sets):",
    "17 held-out and 20 tuning questions of new templates (none in both sets) and 12 distractors; the",
    "held-out ones written first. With the preflight before issue 30: held-out 3 of 17 right, tuning 1 of",
    "20 (precision 100%, recall 85.0% and 90.2%); the first run after: held-out 16 of 17, precision 100%.",
    "",
    "Issue 30, generated parts (2,210 questions from 221 phrasing templates, 10 each; slots filled by a seeded",
    "generator, answers computed with ipaddress, Decimal, datetime, fractions and statistics, never the tools'",
    "code; split by template, so no phrasing is in two parts). All templates were written by the engineer who",
    "tuned the preflight, in this order, each held-apart part before the tuning round it measures:",
    "- generated-heldout (63 templates) and generated-tuning (59), before any tuning. First run, the preflight as",
    "  it was: held-apart precision 100% (350 answered), recall 66.0%; tuning recall 82.0%.",
    "- Round 1, tuned on generated-tuning alone (German dates, units, bases, primes, money, subnet words; typed",
    "  readers for dates and statistics): generated-heldout recall 86.8%, precision 100%.",
    "- generated-heldout2 (48 templates), before round 2. First run: precision 97.7% - 7 wrong answers ('2%",
    "  compound interest compounded quarterly on $p' read as compounded yearly; fixed, with a test) - recall 73.2%",
    "  (75.0% after the fix).",
    "- Round 2, tuned on six tuning templates of the KINDS of generated-heldout's misses (abbreviations, 'how does",
    "  N look in hex', 'goes into', 'put it in the bank'): generated-heldout 96.2% - no longer held apart, so",
    "  that number says little - while generated-heldout2 stayed at 75.0%: tuning on kinds did not generalise.",
    "- generated-heldout3 (45 templates), before round 3. First run: precision 100% (268 answered), recall 72.4%.",
    "- Round 3, general: the typed readers skip a shared list of words that change nothing they bind (articles,",
    "  pronouns, auxiliaries, courtesy and request verbs; never not/without/per/each/total/by/then ...), and 'do",
    "  you know' is a lead-in. generated-heldout3 75.1%, generated-heldout2 80.0% (its misses had been listed",
    "  once after its first run, so it is not quite clean; none of them was fixed one by one).",
    "The honest result: precision 100% on every part (one wrong answer kind found by a held-apart part and",
    "fixed), but recall on phrasings never seen stays at 75-80%, below the issue's 95% goal. The rule that every",
    "other word be known keeps precision and is what misses new words and frames. What the preflight misses the",
    "planner's rescue (planner/rescue.py: instructions and clauses) and the planner model take.",
    "",
    "Issue 30, second round: a second path beside the strict grammars (planner/preflight/intent.py and",
    "preflight/intent_bind.py; the grammars answer first): which tool from signals (typed values 2 points,",
    "cue words 1 each; a leader needs a typed value, a cue and a lead of 2; refusal markers of the earlier",
    "distractor sets, another tool's distinctive words and words that change a computation hand over), which",
    "arguments from the typed readers (one candidate per argument, handed to round 1's readers in a canonical",
    "phrasing, so the same range and validity checks apply). In this order:",
    "- generated-heldout4 (49 templates, 8 distractors) written and committed before the path. First run, with",
    "  the preflight as it was: precision 99.5% (1 wrong of 190) - on inspection a grading artefact: an 8-digit",
    "  truncated expected value (1125328 of 1125328.08...) read as an exact integer; slots.approx now keeps its",
    "  point - and recall 46.1%.",
    "- First run of the intent path (before any tuning of it): heldout4 precision 100% (374 answered), recall",
    "  91.2%, distractors 80/80; heldout3 94.1%; tuning.yaml 2 wrong ('Factorize 1000 in binary', 'the total",
    "  bill with a 20% tip').",
    "- Tuning, on the written sets, generated-tuning, generated-heldout and generated-heldout2 only (never on",
    "  heldout3's or heldout4's misses): conflict signals and computation-changing words (added for the two wrong",
    "  answers, they cost recall: heldout4 83.9%), then general fixes (a hex numeral named by its base word,",
    "  '= ?' as a conversion, a list ended by a comma, no function word as a unit, the strict readers' refusals",
    "  mirrored: 'last address' without 'usable', a payment per what). heldout3 91.4%, heldout4 88.8%.",
    "- generated-heldout5 (43 templates, 6 distractors) written after that tuning, before its run. First run:",
    "  precision 100% (305 answered), recall 82.4%, distractors 60/60. Afterwards only a precision fix found by",
    "  probing by hand ('the median of 3, 5, 7, doubled': word stems of computations); no number above changed.",
    "Caveat: the cue lists were written in the same session, by the engineer who had just written heldout4, so",
    "some of its words (devices, highest, Monatsrate, umgerechnet) are in them; heldout5 is the fairer number.",
    "The honest result: precision 100% on every part, the held-apart recall rose from 72-75% to 82-91%, still",
    "below the 95% goal; the tightening for precision (conflict and computation words) costs the most recall.",
    "",
    "Issue 30, third round (general readings of the intent path, each with its refusal; no template's wording in",
    "the code). Measured with `make precision` (python tests/data/precision/evaluate.py --write docs/precision.md).",
    "- generated-heldout6 (40 templates, 6 distractors) written and committed before the round, by the engineer",
    "  who then tuned it (eight more templates it held duplicated earlier parts and were dropped, not replaced).",
    "  Its first run, with the preflight as it was: precision 100% (319 answered), recall 93.8%, distractors",
    "  60/60.",
    "- The round studied the misses of heldout3, heldout4 and heldout5 by template (so those three are no longer",
    "  held apart) and changed readings, not phrasings: an arrow is the terse 'to'; 'after 6 years' is a",
    "  duration's own preposition and 'worth' asked as a value ('worth it' stays a judgement, now on the strict",
    "  money reader too, which answered it); a base named as the result ('when written in decimal') when the",
    "  other base word is the numeral's own; 'one' as a pronoun; a number before ': ' is no time; a full stop",
    "  ends a list; 'how would N be written in X' asks for a value; 'per second' is no ordinal; 'or' hands over",
    "  only before a value; one-letter unit symbols (g m s h l L J) and capitalised unit names; pounds converted",
    "  to a mass are a weight; a subnet's 'in total'. Probing by hand for wrong answers found one of the round",
    "  ('total hosts across two /24 blocks' read as one /24: a number word now hands a subnet question over) and",
    "  four older ones ('is a 15% tip on $80 generous?', 'is it worth it to invest ...', '5 km to miles to feet',",
    "  'weekday or weekend, and is it a holiday?'): a yes/no question is answered only for a fact the tool",
    "  reports (membership, weekday), 'or' only between two such facts, two targets and a second question hand",
    "  over. Each fixed with a test before the numbers below; none of them changed a number.",
    "- After it: heldout3 91.4% -> 99.5%, heldout4 88.8% -> 99.5%, heldout5 82.4% -> 99.7% (tuned on, so these",
    "  say little about new phrasings); heldout6 93.8% -> 96.8% (not tuned on: the fairer number); precision",
    "  100% and every distractor handed over on every part. What is left: German 'Pfund' (500 g or a pound?)",
    "  and 'in' as the inch symbol stay with the planner by design.",
    "",
    "Issue 53: the composition grammar (planner/preflight/compose.py). A question is a formula's phrase or",
    "terms joined by the language's infix operators; a phrase's {x:q} slots are quantities read recursively, so",
    "formulas compose ('the square root of the sum of 9 and 16'); typed slots (int, ord, pct, money, date, roman,",
    "matrix3, digits: planner/preflight/quantities.py) bind as a whole. The formulas and their wordings are data",
    "(planner/preflight/formulas.yaml: arithmetic words, percentages, roots, remainders, logarithms, combinations,",
    "permutations, hypotenuse, circle area and circumference, Fibonacci, 3x3 determinant, price before a",
    "discount, VAT, fuel per 100 km, speed, dates in weeks and days, days between and weekday of German dates,",
    "Roman numerals both ways, monthly compounding, gcd, lcm, common denominator, rounding, base conversion,",
    "primality), and so are the languages (planner/preflight/languages.yaml: number format, lead-ins, tails,",
    "infix operators, currencies; English and German). Every reading of every language is collected and the",
    "question answered only when all agree ('the cube root of 2 to the power of 9': two readings, the planner).",
    "It runs after the older readers, so what they answered stays as it was. A new kind: an entry in",
    "formulas.yaml (an expression for calculate, or a tool and its arguments, and phrases per language); a new",
    "language: a block in languages.yaml and its phrases under the formulas. Units with kinds",
    "(moe_core/contracts/unit_kinds.yaml; the unit_convert tool refuses them too): torque and energy, gray and",
    "sievert, W, VA and var, Hz and Bq are never",
    "converted into each other (pint would); such a question goes to the planner.",
    "In this order:",
    "- compose_heldout.yaml (82 questions, 45 English, 37 German; the issue's missed kinds in new phrasings, 12",
    "  must-refuse unit questions, 8 distractors) written and committed before the grammar, by the engineer who",
    "  then wrote it (so its phrasings were in mind: not a clean measure of new phrasings). Its first run, with",
    "  the preflight as it was: 10 of 62 right (German 4 of 30) and 10 wrong exact answers: 'Was ergibt 1.250",
    "  minus 375?' as 1.25 - 375 = -373.75, and 9 of the 12 must-refuse unit questions converted (50 N*m = 50 J).",
    "  After the grammar: precision 100%, 60 of 62 (German 29 of 30; one answer key corrected: 5 km = 3.10685596 mi",
    "  had been written rounded as 3.10686, which the grader reads as another value); the two misses ('What price",
    "  did a shirt have before ...', 'Wie viele Millisievert sind 0,5 Sievert?') left as they are, not tuned on.",
    "- external-deepmind: 280 questions written by DeepMind's mathematics-dataset generator (PyPI",
    "  mathematics-dataset 1.0.1, Apache 2.0; 14 modules a precision tool can answer, 20 each, train-easy, seed 53;",
    "  answers computed by its own sympy code), drawn and committed before the grammar. First run, the preflight",
    "  as it was: 165 of 280 (58.9%), no wrong answer. Its phrasings WERE read when the lexicon was written (the",
    "  remainder, distance, 'take away', base-conversion, composite, common-denominator and rounding phrases come",
    "  from it), so after the grammar its 94.3% is partly tuned.",
    "- external-deepmind-fresh: a second sample of the same generator (seed 2026), drawn after the grammar and",
    "  run once, never read before: precision 100%, recall 93.6% (176 of 280 before the grammar); then 92.9%, after a",
    "  precision fix to the older arithmetic reader ('1.250' with a point and three digits hands over: a German",
    "  thousands point?). Its misses: unit fractions ('7/2 of a decade",
    "  in years', years and months are ambiguous units here by design), 'to the nearest integer', 'one decimal",
    "  place', and numbers such as 5.435 (1-3 digits, a point, three digits: a decimal, or a German thousands",
    "  point?) that the grammar hands over on purpose.",
    "Caveat: the external questions come from templates of one generator, so the fresh sample measures new values",
    "and the generator's wordings, not the breadth of what people ask; no public German set was found in the",
    "registries, so German recall is measured on the sets written here (compose_heldout, german_words).",
    "",
    "Issue 53, second round (German number words; the calibration of the intent path's confidence), in this order:",
    "- external-deepmind-heldout: a third sample of the same generator (seed 5303), drawn and committed before any",
    "  change of this round and never read: the calibration's held-out half. First run, the preflight as it was:",
    "  precision 100%, 264 of 280 (94.3%).",
    "- german_words.yaml (42 German questions: 33 for a tool with number words, fractions and ordinal dates, 3",
    "  must-refuse unit questions in words, 6 distractors with number words) written as a user would, committed",
    "  before the preflight read German number words. First run, the preflight as it was: 0 of 33 (9/9 handed",
    "  over). After number words as data (planner/preflight/numwords.py, languages.yaml number_words and",
    "  fractions: integers and ordinals by text2num 3.1.0, MIT; halves, 'dreimal', fractions as a typed slot):",
    "  33 of 33, 9/9, no other figure changed; not tuned on. Probing by hand found two older wrong exact answers,",
    "  fixed with tests (no figure changed): German 'bin' ('Ich bin 1990 geboren') read as binary by the intent",
    "  path, and two numbers side by side ('2 3 times 4') sent to calculate, which could not read them.",
    "- The intent path's thresholds (hand-picked until now: least score 3, least lead 2 for every family)",
    "  calibrated by calibrate.py (method and figures in the calibration section below): least lead 3 for most",
    "  families, least score and lead 5 for finance (every finance answer of the calibration sets scored 5).",
    "  The calibration sets' figures did not change; held-out generated-heldout6 fell from 96.8% to 91.5% (10",
    "  finance questions scoring 4 and 8 prime questions leading by 2 now go to the planner: the calibration saw",
    "  no such question, so the strictest of the equal points does not answer them), precision 100%. The rule was",
    "  fixed before the held-out run and not changed after it. The semantic router (planner/router.py) picks an",
    "  expert model, never an exact answer: the exact answers' confidence is the intent path's.",
]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


@dataclass(frozen=True)
class Graded:
    item: dict[str, Any]
    tool: str | None  # the tool the preflight chose (None: handed to the planner)
    text: str
    verdict: str  # right | wrong | handed_over (a miss for a tool question, right for a distractor)
    path: str = ""  # who answered: "grammar" (every word bound) or "intent:<family>" (the intent path)


def load(name: str) -> list[dict[str, Any]]:
    if name in generated.PARTS:
        return generated.load(name)
    if name == "external-deepmind":
        return deepmind.load()
    if name == "external-deepmind-fresh":
        return deepmind.load("deepmind_fresh.yaml")
    if name == "external-deepmind-heldout":
        return deepmind.load("deepmind_heldout.yaml")
    return list(yaml.safe_load((HERE / f"{name}.yaml").read_text())["items"])


def contains(text: str, expected: str, ignore_case: bool = False) -> bool:
    """The expected answer in the text: numbers compare by value (thousands separators ignored; a longer
    decimal expansion of an expected value with 6+ significant digits counts), anything else as text."""
    plain = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    if ignore_case:
        plain, expected = plain.lower(), expected.lower()
    if NUMBER.fullmatch(expected):
        want = Decimal(expected)
        digits = len(expected.replace("-", "").replace(".", "").lstrip("0"))
        for token in NUMBER.findall(plain):
            try:
                if Decimal(token) == want or (digits >= 6 and "." in expected and token.startswith(expected)):
                    return True
            except InvalidOperation:
                continue
        return False
    return expected in plain


def grade(item: dict[str, Any], catalogue: ToolCatalogue) -> Graded:
    task = recognise(item["q"], catalogue)
    if task is None:
        return Graded(item, None, "", "handed_over")
    assert task.tool is not None
    claimed = claim(item["q"])
    path = f"intent:{claimed.intent.family}" if claimed and claimed.intent else "grammar"
    return grade_call(item, task.tool, task.args, path)


def grade_call(item: dict[str, Any], tool: str, args: dict[str, Any], path: str = "") -> Graded:
    """The tool's answer to the call, right or wrong for the item."""
    try:
        text = IMPLEMENTATIONS[tool](args).text
    except ToolError as exc:
        text = f"No exact result: {exc.message}"
    # a generated question names its tool (its answers, such as a smallest prime factor, are short numbers that
    # another tool's sentence may hold too); a written one may be answered by another tool ("sum of 12 and 30")
    tool_ok = item.get("tool") == tool if "template" in item else item.get("tool") is not None
    expected = item.get("answers") or [str(item.get("answer", ""))]
    ok = tool_ok and not text.startswith("No exact result") and \
        all(contains(text, str(e), bool(item.get("ignore_case"))) for e in expected)
    return Graded(item, tool, text, "right" if ok else "wrong", path)


def rates(graded: list[Graded]) -> dict[str, Any]:
    answerable = [g for g in graded if g.item.get("tool")]
    answered = [g for g in graded if g.tool is not None]
    right = sum(g.verdict == "right" for g in answered)
    distractors = [g for g in graded if not g.item.get("tool")]
    return {"questions": len(graded), "answerable": len(answerable), "answered": len(answered), "right": right,
            "wrong": len(answered) - right,
            "precision": right / len(answered) if answered else 1.0,
            "recall": right / len(answerable) if answerable else 1.0,
            "distractors_handed_over": sum(g.tool is None for g in distractors), "distractors": len(distractors)}


def evaluate() -> dict[str, list[Graded]]:
    catalogue = ToolCatalogue(select_tools())
    return {name: [grade(item, catalogue) for item in load(name)] for name in SETS}


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _table(graded: list[Graded], key: str) -> list[str]:
    groups: dict[str, list[Graded]] = defaultdict(list)
    for g in graded:
        groups[str(g.item.get(key) or "distractor (none)")].append(g)
    lines = [f"| {key} | questions | answered | right | wrong | precision | recall |", "|---|---|---|---|---|---|---|"]
    for name in sorted(groups):
        r = rates(groups[name])
        recall = _pct(r["recall"]) if r["answerable"] else "-"
        lines.append(f"| {name} | {r['questions']} | {r['answered']} | {r['right']} | {r['wrong']} | "
                     f"{_pct(r['precision'])} | {recall} |")
    return lines


def _false_exact(graded: list[Graded]) -> list[str]:
    """Wrong exact answers / exact answers per kind and language, with the 95% upper bound (a distractor answered
    counts as wrong)."""
    groups: dict[tuple[str, str], list[Graded]] = defaultdict(list)
    for g in graded:
        groups[(str(g.item.get("category")), str(g.item.get("language")))].append(g)
    return ["| kind | language | questions | exact answers | wrong | false-exact rate | 95% upper bound |",
            "|---|---|---|---|---|---|---|", *calibration_report.false_exact_rows(groups, lambda k: list(k))]


def report(results: dict[str, list[Graded]]) -> str:
    lines = ["# Precision of the exact answers", "",
             "Generated by `make precision` (tests/data/precision/evaluate.py); do not edit by hand. Every question",
             "goes through the planner's preflight and, when the preflight claims it, through the tool itself.",
             "**Precision** = right exact answers / exact answers given (goal 100%: not one wrong exact answer).",
             "**Recall** = right exact answers / questions a tool should answer (goal >= 95%). A distractor (a",
             "question about hashing, subnets ... that no tool answers, or numbers in a non-mathematical question)",
             "must go to the planner; reaching a tool counts as a wrong exact answer.", "",
             "The held-out set (tests/data/precision/heldout.yaml) was written before the preflight was changed and",
             "is kept out of the tuning loop; the tuning set (tuning.yaml) is what the preflight was tuned against;",
             "the probe (probe.yaml) was written after the tuning, as a fresh check, and is not tuned against either.",
             "The generated parts (issue 30) are split by phrasing template: tests/data/precision/templates_*.py,",
             "slots.py (values and independently computed answers), generated.py (seed 30, 10 per template);",
             "generated-heldout6 is the clean held-apart part; heldout3-5 were tuned on in the third round (below).",
             "Issue 53 adds compose_heldout.yaml (English and German, with must-refuse unit questions),",
             "german_words.yaml (German number words) and three samples of a set written elsewhere (external/:",
             "DeepMind's mathematics-dataset): two to calibrate on, one held out; see the history and the",
             "calibration below.",
             "", "Run: `make precision` (it calibrates first: calibrate.py -> planner/preflight/calibration.yaml, then",
             "evaluates -> this file; about 4 minutes on a loaded machine). Beside other test infrastructure, in a",
             "network namespace of its own: `unshare -n bash -c 'ip link set lo up && make precision'`.", "",
             "What the composition grammar covers: the formulas of planner/preflight/formulas.yaml (arithmetic words,",
             "percentages, fractions in words, roots, remainders, logarithms, combinatorics, geometry, sequences, a",
             "3x3 determinant, reverse percentages, VAT, consumption and speed, dates with weeks and days, Roman",
             "numerals, monthly compounding, gcd/lcm, rounding, bases, primality), composed through their {x:q}",
             "slots and the languages' infix operators, in English and German. How to add a kind: an entry in",
             "formulas.yaml (an expression for calculate or a tool and its arguments, phrases per language, limits);",
             "no code. How to add a language: a block in planner/preflight/languages.yaml (number format, lead-ins,",
             "tails, operators, currencies; `number_words` with its text2num code for number words, `fractions`)",
             "and its phrases under each formula; tests/unit/planner/test_preflight_compose.py and",
             "test_preflight_numwords.py show both done as data alone.",
             "", *HISTORY, "",
             "| set | questions | tool questions | distractors handed over | answered | wrong | precision | recall |",
             "|---|---|---|---|---|---|---|---|"]
    for name in SETS:
        r = rates(results[name])
        lines.append(f"| {name} | {r['questions']} | {r['answerable']} | {r['distractors_handed_over']}/"
                     f"{r['distractors']} | {r['answered']} | {r['wrong']} | {_pct(r['precision'])} | "
                     f"{_pct(r['recall'])} |")
    written = [g for name in ("compose_heldout", "german_words") for g in results[name]]
    external = [g for name in COMPOSE if name.startswith("external") for g in results[name]]
    lines += ["", "## Issue 53's sets written here (compose_heldout, german_words): by language", "",
              *_table(written, "language"), "", "## The external set (all three samples): by kind", "",
              *_table(external, "category")]
    lines += calibration_report.section(results)
    for name in SETS:
        if name in COMPOSE:
            lines += ["", f"## {name}: by kind", "", *_table(results[name], "category"), "",
                      f"## {name}: by language", "", *_table(results[name], "language"), "",
                      f"## {name}: false-exact rate by kind and language", "", *_false_exact(results[name])]
        lines += ["", f"## {name}: by tool", "", *_table(results[name], "tool"), "",
                  f"## {name}: by category", "", *_table(results[name], "category"), "",
                  f"## {name}: by register", "", *_table(results[name], "register")]
        wrong = [g for g in results[name] if g.verdict == "wrong"]
        missed = [g for g in results[name] if g.verdict == "handed_over" and g.item.get("tool")]
        lines += ["", f"### {name}: wrong exact answers ({len(wrong)})", ""]
        lines += [f"- {g.item['q']!r} -> {g.tool}: {g.text[:160]!r}" for g in wrong[:MAX_LISTED]] or ["None."]
        lines += ["", f"### {name}: tool questions handed to the planner ({len(missed)})", ""]
        lines += [f"- {g.item['q']!r} (expected {g.item['tool']})" for g in missed[:MAX_LISTED]] or ["None."]
        if len(missed) > MAX_LISTED:
            lines.append(f"- ... and {len(missed) - MAX_LISTED} more")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path, help="write the Markdown report to this file")
    args = parser.parse_args(argv)
    results = evaluate()
    for name in SETS:
        r = rates(results[name])
        print(f"{name:8} {r['questions']:4} questions: precision {_pct(r['precision'])} ({r['wrong']} wrong of "
              f"{r['answered']} answered), recall {_pct(r['recall'])}, distractors handed over "
              f"{r['distractors_handed_over']}/{r['distractors']}")
    if args.write:
        args.write.write_text(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
