"""Every curl in the docs that sends a JSON body says so (-H 'Content-Type: application/json'): the admin API reads
JSON only, and a new operator copies these commands as they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def _commands(text: str) -> list[str]:
    """Each curl command with its continuation lines joined."""
    out, current = [], None
    for line in text.splitlines():
        if current is not None:
            current += " " + line.strip()
            if not line.rstrip().endswith("\\"):
                out.append(current)
                current = None
        elif re.search(r"\bcurl\b", line) and not line.lstrip().startswith(("#", "|", ">")):
            if line.rstrip().endswith("\\"):
                current = line.strip()
            else:
                out.append(line.strip())
    return out


def test_every_documented_curl_with_a_json_body_sends_its_content_type() -> None:
    missing = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for command in _commands(doc.read_text()):
            if re.search(r"\s-d\s+'[{\[]", command) and "Content-Type: application/json" not in command:
                missing.append(f"{doc.relative_to(REPO)}: {command[:100]}")
    assert not missing, "\n".join(missing)
