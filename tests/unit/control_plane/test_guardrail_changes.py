"""What a guardrail proposal changes (control_plane.policy.guardrail_changes): the tenants whose rules differ, with
their rules before and after, and the rules file replaced whole (a reader sees the old file or the new one)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from control_plane.policy.guardrail_changes import changes, write_rules
from moe_core.llm.guardrails import GuardrailBook, parse

pytestmark = pytest.mark.unit

BASE = """version: 1
tenants:
  acme:
    input:
      - {id: no-cards, detector: credit_card}
  zeta:
    output:
      - {id: no-iban, detector: iban, action: redact}
"""


def test_only_the_tenants_whose_rules_differ_are_changed() -> None:
    candidate = BASE.replace("no-cards, detector: credit_card", "no-cards, detector: credit_card, reason: new") + (
        "  fresh:\n    input:\n      - {id: no-x, keywords: [x]}\n")
    found = changes(parse(BASE, "base"), parse(candidate, "candidate"))
    assert sorted(found) == ["acme", "fresh"]  # zeta's rules are the same
    assert found["fresh"]["before"] is None and found["fresh"]["after"]["input"][0]["id"] == "no-x"
    assert found["acme"]["after"]["input"][0]["reason"] == "new"
    assert changes(parse(BASE, "a"), parse(BASE + "# a comment\n", "b")) == {}
    removed = changes(parse(BASE, "a"), parse("version: 1\ntenants: {}\n", "b"))
    assert sorted(removed) == ["acme", "zeta"] and removed["zeta"]["after"] is None


def test_the_file_is_replaced_and_a_book_reads_it_again(tmp_path: Path) -> None:
    path = tmp_path / "guardrails.yaml"
    path.write_text(BASE)
    book = GuardrailBook(str(path), reload_s=0.001)
    assert book.guards("zeta") and not book.guards("fresh", "input")
    write_rules(path, BASE + "  fresh:\n    input:\n      - {id: no-x, keywords: [x]}\n")
    time.sleep(0.01)  # past the book's reload interval (1 ms)
    assert book.guards("fresh", "input")  # read again: no restart
    assert [p.name for p in tmp_path.iterdir()] == ["guardrails.yaml"]  # no temporary file left behind


def test_a_file_that_cannot_be_written_leaves_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "missing-folder" / "guardrails.yaml"
    with pytest.raises(FileNotFoundError):
        write_rules(path, BASE)
    assert not path.parent.exists()
