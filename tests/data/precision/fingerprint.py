"""The preflight's outcome on every question we have, against a recorded fingerprint (issue 52): a change meant to
make the preflight cheaper must not change what it claims. The questions: every set of the precision evaluation
(evaluate.SETS), the bench's planner questions, every string literal of the planner's unit tests and the precision
end-to-end test, and the clauses of all of these (planner.rescue looks at a question's clauses too). The outcome of
a question: its `claim` (tool, arguments, the intent path's confidence) or the error it raised. The record
(preflight_fingerprint.tsv) keeps a short hash of each question and of its outcome, so a check names the
questions whose outcome changed; questions added to the tests since the record are not checked until it is
written again.

    python tests/data/precision/fingerprint.py            # check: exit 1 and list the changed questions
    python tests/data/precision/fingerprint.py --write    # record (only when a change of outcome is intended)
    python tests/data/precision/fingerprint.py --dump F   # every question and its outcome, to diff two checkouts
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root makes `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from bench.scenarios import full_question, trivial_question
from planner.preflight.core import claim
from planner.rescue import clauses
from tests.data.precision import evaluate

ROOT = Path(__file__).resolve().parents[3]
RECORD = Path(__file__).with_name("preflight_fingerprint.tsv")
TEST_MODULES = ("tests/unit/planner/test_*.py", "tests/e2e/planner/test_precision.py")
BENCH_QUESTIONS = 500


def _literals(paths: Iterable[Path]) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and 0 < len(node.value) <= 400:
                found.append(node.value)
    return found


def questions() -> list[str]:
    """Every question, once, in a stable order."""
    asked = [item["q"] for name in evaluate.SETS for item in evaluate.load(name)]
    asked += [ask(i) for i in range(BENCH_QUESTIONS) for ask in (full_question, trivial_question)]
    asked += _literals(sorted(p for pattern in TEST_MODULES for p in ROOT.glob(pattern)))
    asked += [part for q in list(asked) for part in clauses(q)]
    return list(dict.fromkeys(asked))


def outcome(question: str) -> str:
    try:
        claimed = claim(question)
    except Exception as exc:  # an error is an outcome too: it must stay the same error
        return f"error {type(exc).__name__}"
    if claimed is None:
        return "none"
    return json.dumps([claimed.tool, claimed.args, claimed.intent and vars(claimed.intent)], sort_keys=True,
                      default=str)


def _hash(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def fingerprint(asked: Iterable[str]) -> dict[str, str]:
    return {_hash(q, 12): _hash(outcome(q), 8) for q in asked}


def changed(asked: list[str], recorded: dict[str, str]) -> list[str]:
    """The questions whose outcome is not the recorded one."""
    return [q for q in asked if (key := _hash(q, 12)) in recorded and recorded[key] != _hash(outcome(q), 8)]


def covered(asked: list[str], recorded: dict[str, str]) -> int:
    """How many of the questions the record has an outcome for."""
    return sum(_hash(q, 12) in recorded for q in asked)


def read_record() -> dict[str, str]:
    return dict(line.split("\t") for line in RECORD.read_text().splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="record the current outcomes")
    parser.add_argument("--dump", type=Path, help="write every question and its outcome to this file")
    args = parser.parse_args(argv)
    asked = questions()
    if args.dump:
        args.dump.write_text("".join(f"{q!r}\t{outcome(q)}\n" for q in asked))
        return 0
    if args.write:
        RECORD.write_text("".join(f"{k}\t{v}\n" for k, v in sorted(fingerprint(asked).items())))
        print(f"recorded {len(asked)} questions in {RECORD.name}")
        return 0
    recorded = read_record()
    diff = changed(asked, recorded)
    checked = covered(asked, recorded)
    print(f"{checked} questions checked ({len(asked) - checked} not in the record), {len(diff)} changed")
    for q in diff[:40]:
        print(f"  {q!r}: {outcome(q)}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
