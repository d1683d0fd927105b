"""The preflight claims on every question we have what it claimed when its fingerprint was recorded
(tests/data/precision/fingerprint.py): a change meant to make it cheaper (issue 52) must not change an outcome, and a
word added to arithmetic's patterns but not to `arith.CONSUMED` shows here as the questions it stops reading. A
change of outcome that is meant is recorded with `python tests/data/precision/fingerprint.py --write`."""

from __future__ import annotations

import pytest

from tests.data.precision import fingerprint

pytestmark = pytest.mark.unit


def test_every_recorded_question_gets_the_recorded_outcome() -> None:
    asked = fingerprint.questions()
    recorded = fingerprint.read_record()
    assert fingerprint.covered(asked, recorded) > 9000  # the record covers the questions
    changed = fingerprint.changed(asked, recorded)
    assert not changed, [f"{q!r}: {fingerprint.outcome(q)}" for q in changed[:20]]
