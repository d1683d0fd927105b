"""The service lists inside the Grafana dashboards (JSON has no comments to mark a section: the list is
rewritten where it stands). The knowledge-graph dashboard's panels select the graph stages: the stages whose
declaration needs Neo4j."""

from __future__ import annotations

import re
from pathlib import Path

import moe_core.stage.registry as stage_registry
from moe_core.stage.spec import Stage

KNOWLEDGE_GRAPH = "grafana/dashboards/knowledge-graph.json"
_SELECTOR = re.compile(r'\b(service|app_name)=~\\"[a-z|-]+\\"')  # the stage runtime's and FastStream's labels


def graph_stages() -> list[str]:
    return [e.name for e in stage_registry.FLEET
            if isinstance(d := e.declaration(), Stage) and "neo4j" in d.needs]


def knowledge_graph(repo: Path, text: str) -> str:
    """The dashboard with every `service=~"…"` (and FastStream's `app_name=~"…"`) selector naming the graph
    stages."""
    if not _SELECTOR.search(text):
        raise ValueError(f"{KNOWLEDGE_GRAPH}: no service=~ selector left to write the graph stages into")
    names = "|".join(graph_stages())
    return _SELECTOR.sub(lambda match: f'{match.group(1)}=~\\"{names}\\"', text)
