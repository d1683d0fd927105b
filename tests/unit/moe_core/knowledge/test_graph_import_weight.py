"""The knowledge graph's light parts load without the Neo4j driver (issue 52): the gateway and the planner import
the guardrails' audit (moe_core.knowledge.graph.audit) and the domain resolver (moe_core.policy.domains), never
open the graph, and each of their processes paid ~0.6-1.2 s of CPU for neo4j (and numpy, which it loads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def loads_neo4j(statement: str) -> bool:
    """Whether `statement`, run in a fresh interpreter, leaves the neo4j package loaded."""
    probe = f"{statement}\nimport sys\nprint('neo4j' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize(
    "statement",
    [
        "import moe_core.knowledge.graph.audit",
        "import moe_core.policy.domains",
        "import gateway.app",
        "import planner.app",
    ],
)
def test_light_modules_do_not_load_the_driver(statement: str) -> None:
    assert not loads_neo4j(statement)


def test_the_package_still_offers_the_driver_on_use() -> None:
    assert loads_neo4j("from moe_core.knowledge.graph import GraphDB, GraphStore, Triple")
