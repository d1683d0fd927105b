"""The generated precision sets (issue 30): phrasing templates (templates_heldout.py, templates_tuning.py) whose
slots a seeded generator fills (slots.py), each answer computed independently of the tools. The split is by
TEMPLATE: a template of the tuning part never appears in the held-apart part, so the held-apart numbers
measure how the preflight generalises to phrasings it was not tuned on."""

from __future__ import annotations

import random
import re
from typing import Any

from tests.data.precision import (
    slots,
    templates_heldout,
    templates_heldout2,
    templates_heldout3,
    templates_heldout4,
    templates_heldout5,
    templates_heldout6,
    templates_tuning,
)

SEED = 30
PER_TEMPLATE = 10
PARTS = {"generated-tuning": templates_tuning.TEMPLATES, "generated-heldout": templates_heldout.TEMPLATES,
         "generated-heldout2": templates_heldout2.TEMPLATES, "generated-heldout3": templates_heldout3.TEMPLATES,
         "generated-heldout4": templates_heldout4.TEMPLATES,
         "generated-heldout5": templates_heldout5.TEMPLATES,
         "generated-heldout6": templates_heldout6.TEMPLATES}
CATEGORY = {"subnet_calc": "subnets", "number_base": "bases", "prime_factorize": "primes",
            "decimal_finance": "finance", "date_diff": "dates", "day_of_week": "dates", "date_add": "dates",
            "unit_convert": "units", "statistics_calc": "statistics"}
CASELESS = {"to_hex", "small_hex"}


def generate(templates: list[templates_heldout.Template], seed: int = SEED,
             per_template: int = PER_TEMPLATE) -> list[dict[str, Any]]:
    """`per_template` questions from each template; the same seed gives the same questions (each template
    has its own stream, so adding a template changes no other template's questions)."""
    items: list[dict[str, Any]] = []
    for tool, maker, key, register, text in templates:
        rng = random.Random(f"{seed}:{text}")
        seen: set[str] = set()
        for _ in range(per_template * 5):
            values, answers = slots.MAKERS[maker](rng)
            question = text.format(**values)
            if question in seen:
                continue
            seen.add(question)
            items.append({"q": question, "tool": tool, "answer": _plain(answers[key]) if tool else None,
                          "category": CATEGORY[tool] if tool else "distractor", "register": register,
                          "template": text, "ignore_case": key in CASELESS})
            if len(seen) == per_template:
                break
    return items


def load(part: str) -> list[dict[str, Any]]:
    return generate(PARTS[part])


def _plain(answer: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3})", "", answer)  # the evaluation reads "1,234" in a tool's sentence as 1234
