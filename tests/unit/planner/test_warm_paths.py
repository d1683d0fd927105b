"""The planner's start-up runs its per-question paths once (planner.warm_paths, from Planner.warm): what they load
lazily (the preflight's unit registry, pint, and the modules behind it) is loaded then, so a replica's first requests
load nothing more: their memory is in the start level, not growth (issue 52, item 6). Run in a fresh interpreter:
another test's imports would hide what the paths load."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PROBE = """
import json, sys
from planner.cache_text import features, normalise
from planner.complexity import ProtectedDomains, estimate, with_domains
from planner.preflight import recognise
from planner.settings import PlannerSettings
from planner.tool_catalogue import ToolCatalogue
from planner.warm_paths import warm_paths

settings = PlannerSettings()
tools = ToolCatalogue.from_settings(settings)
protected = ProtectedDomains.load(settings.keywords_path(), settings.planner_never_trivial_domains)
cold = set(sys.modules)
warm_paths(tools, protected, settings.planner_trivial_max_words)
warmed = set(sys.modules)
for q in ["Convert 3 feet to metres.", "What is 20% of 75?", "What day is 10 days after 2024-02-20?",
          "How much is 40 GBP in USD?", "Is aspirin safe in pregnancy?", "Translate 'good night' into Dutch."]:
    recognise(q, tools)
    with_domains(estimate(q, settings.planner_trivial_max_words), q, protected)
    features(normalise(q))
print(json.dumps({"by_warm": sorted(warmed - cold), "after": sorted(set(sys.modules) - warmed)}))
"""


def test_questions_after_the_warm_up_load_no_module() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "pint" in loaded["by_warm"]  # the preflight's unit registry: loaded by the warm-up, not by a request
    assert loaded["after"] == []
