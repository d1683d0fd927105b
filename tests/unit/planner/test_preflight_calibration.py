"""Issue 53: the intent path's thresholds are calibrated by code (tests/data/precision/calibrate.py, run by
`make precision`), not typed in: the planner reads them from calibration.yaml, the selection rule keeps the
false-exact count at 0 on the calibration data, and the bound is the exact Clopper-Pearson one."""

from __future__ import annotations

from collections import defaultdict

import pytest
import yaml

from planner.preflight import match
from planner.preflight.intent import CALIBRATION, CUES, calibrated, score
from tests.data.precision import calibrate
from tests.data.precision.calibration_report import upper_bound

pytestmark = pytest.mark.unit


def test_the_planner_reads_the_calibrated_thresholds_for_every_family() -> None:
    data = yaml.safe_load(CALIBRATION.read_text(encoding="utf-8"))
    assert set(calibrated()) == set(CUES) and data["method"] and set(data["held_out_sets"]) == set(calibrate.HELD_OUT)
    assert not set(data["calibration_sets"]) & set(data["held_out_sets"])
    for family, t in data["thresholds"].items():
        assert calibrated()[family] == (t["min_score"], t["min_lead"])
        assert t["calibration_wrong"] == 0
        curve = data["curve"][family][f"{t['min_score']}/{t['min_lead']}"]
        assert curve == [t["calibration_answered"], 0]  # the file's thresholds are the curve's chosen point


def test_a_threshold_decides_whether_the_intent_path_answers() -> None:
    text = "what's 255 in hex"  # a typed value and a cue word: bases scores 3 with a lead of 3
    assert score(text, dict.fromkeys(CUES, (3, 1))).family == "bases"
    assert score(text, dict.fromkeys(CUES, (4, 1))).family is None
    assert score(text, {}).family is None  # a family the calibration does not name is never answered


def test_the_choice_is_the_most_right_answers_with_none_wrong_and_the_strictest_of_equals() -> None:
    counts: calibrate.Tally = {(s, m): defaultdict(lambda: [0, 0]) for s in calibrate.SCORES for m in calibrate.LEADS}
    for (s, m), families in counts.items():
        families["bases"] = [50 if s <= 3 else 10, 2 if s == 2 and m == 1 else 0]  # loosest: more, but 2 wrong
    chosen = calibrate.choose(counts)["bases"]
    assert (chosen["min_score"], chosen["min_lead"], chosen["calibration_answered"]) == (3, 5, 50)
    assert chosen["false_exact_upper_95"] == pytest.approx(1 - 0.05 ** (1 / 50), abs=1e-4)


def test_the_upper_bound_is_clopper_pearson() -> None:
    assert upper_bound(0, 300) == pytest.approx(0.00994, abs=1e-4)  # the rule of three: about 3/n
    assert upper_bound(1, 10) == pytest.approx(0.3942, abs=1e-3)  # one-sided 95%, the exact binomial bound
    assert upper_bound(0, 0) == 1.0


def test_the_calibrated_preflight_still_answers_a_clear_intent() -> None:
    assert match("what's 255 in hex") is not None
