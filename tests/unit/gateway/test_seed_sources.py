"""moe.sources in the original's shape beside the fleet's: each entry carries `type` and `label` (a graph fact
is {"type": "neo4j", "label": <the fact>}, as the original's documentation shows) and keeps kind, ref, title, url."""

from __future__ import annotations

import pytest

from gateway.protocols.openai.api import moe_body
from moe_core.contracts import Answer, Source, deadline_in

pytestmark = pytest.mark.unit


def test_every_source_has_the_originals_type_and_label_beside_the_fleets_fields() -> None:
    answer = Answer(response_id="r1", tenant_id="t", deadline_at=deadline_in(30), mode="moe-orchestrator",
                    sources=[Source(kind="graph", ref="rel-1", title="PostgreSQL USES TLS_1.3"),
                             Source(kind="graph", ref="TLS_1.3", title="TLS_1.3"),
                             Source(kind="web", ref="web:1", title="Kafka docs", url="https://kafka.apache.org"),
                             Source(kind="expert", ref="general:expert-model@gpu1"),
                             Source(kind="tool", ref="percent@1")])
    assert moe_body(answer)["sources"] == [
        {"kind": "graph", "ref": "rel-1", "title": "PostgreSQL USES TLS_1.3", "type": "neo4j",
         "label": "PostgreSQL USES TLS_1.3"},
        {"kind": "graph", "ref": "TLS_1.3", "title": "TLS_1.3", "type": "neo4j", "label": "TLS_1.3"},
        {"kind": "web", "ref": "web:1", "title": "Kafka docs", "url": "https://kafka.apache.org", "type": "web",
         "label": "Kafka docs"},
        {"kind": "expert", "ref": "general:expert-model@gpu1", "type": "expert", "label": "general:expert-model@gpu1"},
        {"kind": "tool", "ref": "percent@1", "type": "mcp", "label": "percent@1"}]
