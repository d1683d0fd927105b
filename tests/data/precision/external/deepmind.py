"""The external set (deepmind_mathematics.yaml) as the evaluation reads it: each question as DeepMind wrote it,
its answer turned into what a right tool sentence must contain, by the answer's form, not by our tools:
a terminating fraction as its decimal ("-383/2" -> "-191.5"), other fractions as written ("(exactly 3871/6)");
a yes/no primality answer as "is prime" or "not prime" (a question about "composite" flips it); a list of prime
factors as each factor; a number in another base as "= DIGITS (", the tool's way of naming a result."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent


def _expected(item: dict[str, Any]) -> dict[str, Any]:
    answer, module, q = str(item["answer"]), item["module"], item["q"]
    out: dict[str, Any] = {"answer": answer}
    if module == "numbers__is_prime":
        prime = (answer == "True") != bool(re.search(r"composite", q, re.I))
        out["answer"] = "is prime" if prime else "not prime"
    elif module == "numbers__list_prime_factors":
        out["answers"] = [a.strip() for a in answer.split(",")]
    elif module == "numbers__base_conversion":
        out.update(answer=f"= {answer} (", ignore_case=True)
    elif re.fullmatch(r"-?\d+/\d+", answer):
        value = Fraction(answer)
        den = value.denominator
        while den % 2 == 0:
            den //= 2
        while den % 5 == 0:
            den //= 5
        if den == 1:
            out["answer"] = format(value.numerator / value.denominator, "f").rstrip("0").rstrip(".")
            if len(out["answer"].replace("-", "").replace(".", "")) > 12:
                out["answer"] = answer
    return out


def load(name: str = "deepmind_mathematics.yaml") -> list[dict[str, Any]]:
    items = yaml.safe_load((HERE / name).read_text(encoding="utf-8"))["items"]
    return [{**item, "tool": "any", "source_answer": item["answer"], **_expected(item)} for item in items]
