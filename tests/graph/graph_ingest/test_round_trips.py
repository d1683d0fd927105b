"""What learning costs Neo4j and the policy engine per message, counted on the real ones: graph-ingest asks the
same number of queries, transactions and OPA requests for an answer of four triples as for one of two (its
triples' domains, conflicts and reach in one query each, the policy's decisions in one request, the writes in one
transaction of as many statements), so the count per message cannot grow back with the triples unnoticed (issue 52);
and how many each is, so it cannot grow back at all unnoticed."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from moe_core.knowledge.graph import GraphDB
from tests.conftest import Scripted
from tests.graph.conftest import GraphServices
from tests.graph.graph_ingest.test_learning_journey import extraction_rule, ingest_event, learn
from tests.graph.helpers import relations, titles

pytestmark = pytest.mark.infra


class _CountingTx:
    """A transaction that counts its statements."""

    def __init__(self, tx: Any, counts: Counter[str]) -> None:
        self.tx, self.counts = tx, counts

    async def run(self, query: Any, parameters: Any = None, **kw: Any) -> Any:
        self.counts["statements in transactions"] += 1
        return await self.tx.run(query, parameters, **kw)


@pytest.fixture
def counted(graph_services: GraphServices, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """graph-ingest's round trips to Neo4j (auto-commit reads and writes, transactions and their statements) and
    to OPA (HTTP requests), counted while the test runs."""
    service = graph_services.apps["graph-ingest"].state.graph_ingest
    db, counts = service.db, Counter[str]()
    read, write, transaction = db.read, db.write, db.transaction

    async def counting_read(query: Any, **params: Any) -> list[dict[str, Any]]:
        counts["reads"] += 1
        return await read(query, **params)

    async def counting_write(query: Any, **params: Any) -> list[dict[str, Any]]:
        counts["writes"] += 1
        return await write(query, **params)

    async def counting_transaction(work: Any) -> Any:
        counts["transactions"] += 1
        return await transaction(lambda tx: work(_CountingTx(tx, counts)))

    async def on_request(request: httpx.Request) -> None:
        counts["OPA requests"] += 1

    monkeypatch.setattr(db, "read", counting_read)
    monkeypatch.setattr(db, "write", counting_write)
    monkeypatch.setattr(db, "transaction", counting_transaction)
    http = service.learning.client._client
    hooks = http.event_hooks
    http.event_hooks = {**hooks, "request": [*hooks.get("request", []), on_request]}
    yield counts
    http.event_hooks = hooks


async def _learned(svc: GraphServices, scripted: Scripted, tenant: str, counts: Counter[str], known: str,
                   technical: int) -> tuple[dict[str, int], dict[str, Any]]:
    """Learn one answer of `technical` technical triples and one medical triple (held for review), all touching
    the entities the warm-up wrote (`known`: so the conflicts and the reach are asked); its counts."""
    m = uuid.uuid4().hex[:8]
    triples = [(f"Frobnik {m} {i}", "PART_OF", f"Kubernetes Cluster {known}", 0.9) for i in range(technical)]
    scripted.script([extraction_rule(m, [*triples, (f"Warm {known}", "TREATS", f"Kubernetes Cluster {known}", 0.9)])])
    counts.clear()
    done = await learn(svc, ingest_event(tenant, m, knowledge_type="technical", source_expert="technical"))
    return dict(counts), done


async def test_an_answer_of_four_triples_costs_neo4j_and_opa_what_one_of_two_does(
        graph_services: GraphServices, graph_db: GraphDB, scripted: Scripted, tenant: str,
        counted: Counter[str]) -> None:
    # a first answer, not counted, warms Neo4j's and OPA's paths (a cold Neo4j on a loaded machine can time out a
    # query, and a redelivered answer asks again)
    m = uuid.uuid4().hex[:8]
    scripted.script([extraction_rule(m, [(f"Warm {m}", "PART_OF", f"Kubernetes Cluster {m}", 0.9)])])
    warm = ingest_event(tenant, m, knowledge_type="technical", source_expert="technical")
    await graph_services.publish(warm, "ingest")
    await graph_services.tap.wait(graph_services.bus.topics.audit, lambda r: r["response_id"] == warm.response_id
                                  and r["action"] == "ingested", timeout_s=180)
    small, small_done = await _learned(graph_services, scripted, tenant, counted, m, technical=1)
    large, large_done = await _learned(graph_services, scripted, tenant, counted, m, technical=3)
    print(f"\nround trips per message: 2 triples {small}; 4 triples {large}")
    assert (len(small_done["details"]["relations"]), len(large_done["details"]["relations"])) == (1, 3)
    assert len(titles(await relations(graph_db, tenant))) == 5  # the medical ones wait for review
    assert small["transactions"] >= 1 and small["OPA requests"] >= 1  # the counting reached the service
    # the names with the tenant's size before, the conflicts, the reach and the domains' entities (plan_read; 2 before:
    # the domains apart; 4 before that: the conflicts and the reach apart; 6 before that: the size before and after
    # were reads of their own)
    assert small["reads"] == 1, small
    # inside the transaction: the held triple; the new entities, the relations (with their learned_from), their
    # trust, the version bump and the tenant's size after in one statement (5 before: entities, relations, trust and
    # bump, size apart; 7 before that: the names resolved again, trust and bump apart, learned_from apart; 8 and 20
    # before GraphStore.write_many_in)
    assert small["statements in transactions"] == 2, small
    assert small["OPA requests"] == 2, small  # the decisions, and the policies' version after them
    for what in ("reads", "writes", "transactions", "statements in transactions", "OPA requests"):
        assert large.get(what, 0) == small.get(what, 0), (what, small, large)
