"""The calibration of the preflight's confidence (issue 53): the thresholds of the intent path, chosen by code.

The preflight answers exactly in two ways. A grammar (core.RULES, the composition grammar) answers only when
every word is bound and the reading is unambiguous: it has no confidence to tune. The intent path (intent.py)
answers from signals: its confidence is the leading family's score (2 for a typed value, 1 per cue word, at
most 5) and its lead over the runner-up. Its thresholds are chosen here, per family:

1. every question of the CALIBRATION sets that no grammar claims is run through the preflight once per point of
   the grid (least score 2-5 x least lead 1-5, every family alike; the family of a question's claim is its
   leader's, so each family's outcome depends on its own thresholds only);
2. per family, the point with the most right exact answers among those with NO wrong exact answer; of equal
   points the strictest (highest least score, then highest least lead): with nothing to tell them apart on
   the data, the one that answers least on new questions;
3. the chosen thresholds go to planner/preflight/calibration.yaml, which the planner reads.

The CALIBRATION sets are the external set's calibration half (the two DeepMind samples read while the grammar
was written) and the sets this project tuned on (the external set has no distractors, so alone it cannot show
a threshold that answers a question no tool should answer). The HELD_OUT sets took no part in any choice:
make precision (evaluate.py) publishes on them the false-exact rate (wrong exact answers / exact answers) per
kind and language with its one-sided 95% Clopper-Pearson upper bound (0 wrong of n: 1 - 0.05^(1/n), about 3/n).

    python tests/data/precision/calibrate.py [--write services/planner/planner/preflight/calibration.yaml]"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script (make precision): the repository root makes `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from moe_core.contracts.tools import select_tools
from planner.preflight.core import claim
from planner.preflight.intent import CUES
from planner.tool_catalogue import ToolCatalogue
from tests.data.precision import evaluate
from tests.data.precision.calibration_report import upper_bound

CALIBRATION_SETS = ("external-deepmind", "external-deepmind-fresh", "tuning", "heldout", "probe", "generated-tuning",
                    "generated-heldout", "generated-heldout2", "generated-heldout3", "generated-heldout4",
                    "generated-heldout5", "compose_heldout")
HELD_OUT = ("external-deepmind-heldout", "generated-heldout6", "german_words")
SCORES, LEADS = (2, 3, 4, 5), (1, 2, 3, 4, 5)
NEVER: dict[str, tuple[int, int]] = {}  # the intent path off: what the grammars claim
LOOSEST = (min(SCORES), min(LEADS))  # a threshold only takes answers away: unclaimed here, unclaimed at any
Tally = dict[tuple[int, int], dict[str, list[int]]]  # (score, lead) -> family -> [right, wrong]


def tally(items: list[dict[str, Any]], catalogue: ToolCatalogue) -> Tally:
    """Right and wrong exact answers of the intent path per grid point and family."""
    out: Tally = {(s, m): defaultdict(lambda: [0, 0]) for s in SCORES for m in LEADS}
    graded: dict[tuple[int, str], str] = {}
    for index, item in enumerate(items):
        if claim(item["q"], NEVER) is not None or claim(item["q"], dict.fromkeys(CUES, LOOSEST)) is None:
            continue  # a grammar claims it whatever the thresholds, or nothing does even at the loosest
        for point in out:
            claimed = claim(item["q"], dict.fromkeys(CUES, point))
            if claimed is None or claimed.intent is None or not catalogue.valid(claimed.tool, claimed.args):
                continue
            key = (index, repr((claimed.tool, sorted(claimed.args.items()))))
            if key not in graded:
                graded[key] = evaluate.grade_call(item, claimed.tool, claimed.args).verdict
            out[point][str(claimed.intent.family)][graded[key] != "right"] += 1
    return out


METHOD = ("Per family of the intent path, the grid point (least score 2-5, least lead 1-5) with the most right exact "
          "answers and no wrong one on the calibration sets; of equal points the strictest. The calibration sets: "
          "the external set's calibration half and the sets this project tuned on; the held-out sets took no part.")


def curve(counts: Tally) -> dict[str, dict[str, list[int]]]:
    """Per family, [right, wrong] at each grid point ("score/lead"): the data the choice was made on."""
    return {family: {f"{s}/{m}": list(counts[(s, m)][family]) for (s, m) in sorted(counts)} for family in CUES}


def choose(counts: Tally) -> dict[str, dict[str, Any]]:
    """Per family: the grid point with the most right answers and none wrong; of equals, the strictest."""
    chosen: dict[str, dict[str, Any]] = {}
    for family in CUES:
        points = [(counts[p][family][0], p) for p in counts if counts[p][family][1] == 0]
        right, (score, lead) = max(points, key=lambda rp: (rp[0], rp[1][0], rp[1][1]))
        chosen[family] = {"min_score": score, "min_lead": lead, "calibration_answered": right,
                          "calibration_wrong": 0, "false_exact_upper_95": round(upper_bound(0, right), 4)}
    return chosen


def calibrate() -> dict[str, Any]:
    catalogue = ToolCatalogue(select_tools())
    items = [item for name in CALIBRATION_SETS for item in evaluate.load(name)]
    counts = tally(items, catalogue)
    return {"method": METHOD, "calibration_sets": list(CALIBRATION_SETS), "held_out_sets": list(HELD_OUT),
            "thresholds": choose(counts), "curve": curve(counts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the intent path's thresholds, calibrated")
    parser.add_argument("--write", type=Path, help="write them here (the planner reads calibration.yaml)")
    args = parser.parse_args(argv)
    result = calibrate()
    for family, t in result["thresholds"].items():
        print(f"{family:10} least score {t['min_score']}, least lead {t['min_lead']}: {t['calibration_answered']} "
              f"right, 0 wrong on the calibration sets (95% upper bound {t['false_exact_upper_95']:.2%})")
    if args.write:
        header = ("# Generated by `make precision` (tests/data/precision/calibrate.py): the intent path's thresholds,\n"
                  "# calibrated. Do not edit by hand; the method is below and in docs/precision.md.\n")
        body = yaml.safe_dump({k: v for k, v in result.items() if k != "curve"}, allow_unicode=True, sort_keys=False,
                              width=110)
        curves = "".join(f"  {family}: {yaml.safe_dump(points, default_flow_style=True, width=1000).strip()}\n"
                         for family, points in result["curve"].items())
        args.write.write_text(header + body + "# per family, [right, wrong] at each least score/least lead\ncurve:\n"
                              + curves)
    return 0


if __name__ == "__main__":
    sys.exit(main())

