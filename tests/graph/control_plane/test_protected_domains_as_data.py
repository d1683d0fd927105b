"""Protected contexts are data (issue 50): an operator marks a domain protected in policy/domain-keywords.yaml
(`protected`, `approvers`) and the control plane, on the real Neo4j, Postgres, Kafka and OPA, asks two people for
a change in it, with no Rego edited; a domain unmarked needs one. The shipped file's medical/legal behaviour is
tests/graph/control_plane/test_four_eyes_by_content.py's (the Qx-7 bundle)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from control_plane.app import create_app as control_plane_app
from control_plane.settings import ControlPlaneSettings
from moe_core.knowledge.graph import GraphDB
from moe_core.knowledge.graph.bundles import BundleEntity, BundleRelation
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices, _common
from tests.graph.control_plane.test_four_eyes_by_content import bundle, imported
from tests.graph.graph_ingest.test_quarantine_and_api import bearer
from tests.graph.helpers import relations
from tests.support.keys import person_key
from tests.support.namespaces import new_namespace

pytestmark = pytest.mark.infra
SHIPPED = Path(__file__).resolve().parents[3] / "policy" / "domain-keywords.yaml"


def operators_file(tmp: Path) -> Path:
    """The shipped file with "finance" added as protected and "legal" unmarked."""
    text = SHIPPED.read_text()
    edited = text.replace("  legal:\n    protected: true\n    approvers: 2\n", "  legal:\n") + (
        "  finance:\n    protected: true\n    words: [loan, credit, iban, mortgage]\n")
    assert edited != text
    path = tmp / "domain-keywords.yaml"
    path.write_text(edited)
    return path


@pytest.fixture
async def bank_plane(infra: dict[str, str], neo4j_url: str, scripted_server: Scripted, graph_services: GraphServices,
                     tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    common = _common(infra, new_namespace("gb"), neo4j_url, scripted_server.url)
    app = control_plane_app(ControlPlaneSettings(**common, domain_keywords=operators_file(tmp_path)))
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://control-plane")
        stack.push_async_callback(client.aclose)
        yield client


def pair(a: str, b: str) -> bytes:
    return bundle([BundleEntity(name=a, domain="general"), BundleEntity(name=b, domain="general")],
                  [BundleRelation(subject=a, relation="RELATED_TO", object=b, domain="general")])


async def test_a_domain_marked_protected_in_the_file_needs_two_people(
        bank_plane: httpx.AsyncClient, graph_services: GraphServices, graph_db: GraphDB, tenant: str) -> None:
    services = GraphServices(**{**graph_services.__dict__, "gateway": bank_plane})
    admin = await graph_services.admin_key_for(tenant)
    cs = await imported(services, admin, pair("Zorbel Loan", "Quarn Credit Line"))
    assert (cs["status"], cs["approvals_required"]) == ("pending", 2) and "finance" in cs["domains"]
    approve = f"/v1/knowledge/imports/{cs['id']}/approve"
    first = await bank_plane.post(approve, headers=bearer(await graph_services.second_approver_for(tenant)))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "pending" and await relations(graph_db, tenant) == []
    third = (await person_key(graph_services.keystore, "graph admin c", "admin", [tenant]))[1]
    second = await bank_plane.post(approve, headers=bearer(third))
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "applied" and len(await relations(graph_db, tenant)) == 1

    legal = await imported(services, admin, pair("Zorbel Statute", "Quarn Clause"))  # unmarked: one person
    assert legal["approvals_required"] == 1 and "legal" in legal["domains"] and "finance" not in legal["domains"]
    medical = await imported(services, admin, pair("Zorbel Drug", "Quarn Dose"))  # unchanged
    assert medical["approvals_required"] == 2
