"""docs/performance.md stays a reference (how it is measured, the latest results, the targets, where each stands,
under 500 lines) and the dated journal of runs lives in docs/performance-history.md, which it links: the page
`bench render` writes from bench/doc_intro.md, the latest results and bench/analysis.md."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def test_the_reference_is_short_and_links_its_history() -> None:
    page = (REPO / "docs" / "performance.md").read_text()
    assert len(page.splitlines()) < 500
    for heading in ("## How it is measured", "## Latest results", "### Targets", "## Where each target stands"):
        assert heading in page
    assert "performance-history.md" in page
    history = (REPO / "docs" / "performance-history.md").read_text()
    assert "## LiteLLM set-up and published figures" in history
    assert "## Found and fixed on the way" in history


def test_the_sources_hold_no_journal() -> None:
    """bench/analysis.md (rendered into the page) holds no dated run: those go to the history."""
    analysis = (REPO / "bench" / "analysis.md").read_text()
    headings = [line for line in analysis.splitlines() if line.startswith("#")]
    assert headings == ["## Reading these numbers", "## Where each target stands"]
