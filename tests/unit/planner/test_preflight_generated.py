"""Issue 30, item 4: the generated evaluation measures generalisation. At least 1,000 questions from phrasing
templates, split by TEMPLATE (no template, and so no phrasing, in two parts), the same questions for the same
seed, answers computed without the tools' code; not one wrong exact answer in any part, every distractor
handed to the planner, and the held-apart parts' recall not below what docs/precision.md reports."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import pytest

from tests.data.precision import evaluate, generated

pytestmark = pytest.mark.unit
HERE = Path(evaluate.__file__).parent
TOOLS = {"subnet_calc", "number_base", "prime_factorize", "decimal_finance", "date_diff", "day_of_week", "date_add",
         "unit_convert", "statistics_calc"}
RECALL_FLOOR = {"generated-tuning": 0.99, "generated-heldout": 0.99, "generated-heldout2": 0.99,
                "generated-heldout3": 0.99, "generated-heldout4": 0.99, "generated-heldout5": 0.99,
                "generated-heldout6": 0.91}  # 96.8% with the hand-picked intent thresholds, 91.5% calibrated


@pytest.fixture(scope="module")
def results() -> dict[str, list[evaluate.Graded]]:
    catalogue = evaluate.ToolCatalogue(evaluate.select_tools())
    return {part: [evaluate.grade(item, catalogue) for item in generated.load(part)] for part in generated.PARTS}


def test_at_least_a_thousand_questions_split_by_template() -> None:
    parts = {part: generated.load(part) for part in generated.PARTS}
    assert sum(map(len, parts.values())) >= 1000
    for (a, first), (b, second) in combinations(parts.items(), 2):
        assert not {i["template"] for i in first} & {i["template"] for i in second}, (a, b)
        assert not {i["q"] for i in first} & {i["q"] for i in second}, (a, b)
    for part, items in parts.items():
        assert {i["tool"] for i in items if i["tool"]} == TOOLS, part
        assert sum(i["tool"] is None for i in items) >= 50, f"{part}: distractors"
        assert {i["register"] for i in items} >= {"terse", "chatty", "other-language", "words"}, part


def test_the_same_seed_gives_the_same_questions_and_another_seed_other_values() -> None:
    templates = generated.PARTS["generated-heldout"]
    assert generated.generate(templates) == generated.generate(templates)
    assert generated.generate(templates, seed=31) != generated.generate(templates)


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_answers_are_computed_without_the_tools_or_the_preflight() -> None:
    for name in ("slots.py", "generated.py", "templates_heldout.py", "templates_heldout2.py", "templates_heldout3.py",
                 "templates_heldout4.py", "templates_heldout5.py", "templates_heldout6.py",
                 "templates_tuning.py"):
        modules = set(_imports(HERE / name))
        assert not {m for m in modules if m.split(".")[0] in {"mcp_service", "planner", "pint", "moe_core"}}, name


@pytest.mark.parametrize("part", list(generated.PARTS))
def test_no_wrong_exact_answer_and_distractors_go_to_the_planner(results: dict[str, list[evaluate.Graded]],
                                                                 part: str) -> None:
    graded = results[part]
    assert [(g.item["q"], g.text) for g in graded if g.verdict == "wrong"] == []
    rates = evaluate.rates(graded)
    assert rates["distractors_handed_over"] == rates["distractors"]
    assert rates["recall"] >= RECALL_FLOOR[part], rates
