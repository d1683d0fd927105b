"""Neo4j's work per learned answer, deterministically: the db hits of every statement graph-ingest (and the
gap-healer, for a gap) runs, on the local Neo4j, OPA and Redis (running: `make up`), in a tenant of realistic size:

  python -m tests.graph.graph_ingest.ingest_profile [ENTITIES] [TRIPLES] [ANSWERS]

Builds a test tenant of ENTITIES entities (default 3000) and as many relations, then learns ANSWERS answers
(default 3) of TRIPLES triples (default 2: one new entity and one the tenant knows each) with GraphIngest.on_ingest
(their extraction remembered: no model call), and heals a gap of a term the tenant knows and of two new ones (their
classification remembered). Every statement runs under PROFILE (the same statement, the same rows): printed per
answer with its db hits, named by the constant it is. Removes the tenant afterwards. For a before/after, run the same
command on the older tree (issue 52)."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from neo4j import AsyncManagedTransaction

from bench.infra import endpoints
from moe_core.knowledge.graph.driver import GraphDB, Work
from tests.graph.graph_ingest.ingest_costs import _Serialised, build_tenant
from tests.graph.graph_ingest.test_learning_journey import ingest_event

# the modules whose statements graph-ingest and the gap-healer run: a statement is named by its constant
MODULES = ("moe_core.knowledge.graph.checks", "moe_core.knowledge.graph.store", "moe_core.knowledge.graph.measure",
           "moe_core.knowledge.graph.synthesis", "moe_core.knowledge.graph.write_many",
           "moe_core.knowledge.graph.plan_read",
           "moe_core.knowledge.graph.quarantine",
           "moe_core.knowledge.graph.gaps", "moe_core.knowledge.graph.alias_nodes", "moe_core.policy.domains",
           "gap_healer.app", "gap_healer.aliases")


def _flat(query: str) -> str:
    return " ".join(query.split())


def statement_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for module in MODULES:
        for name, value in vars(importlib.import_module(module)).items():
            if name.isupper() and isinstance(value, str) and len(value) > 20:
                names.setdefault(_flat(value), f"{module.rsplit('.', 1)[1]}.{name}")
    return names


def db_hits(plan: Any) -> int:
    if not plan:
        return 0
    return int(plan.get("dbHits", 0)) + sum(db_hits(c) for c in plan.get("children", []))


class ProfiledDB(GraphDB):
    """GraphDB running every statement under PROFILE, noting (statement, db hits) in `seen`."""

    seen: list[tuple[str, int]]

    def note(self, query: str, profile: Any) -> None:
        self.seen.append((query, db_hits(profile)))

    async def read(self, query: Any, **params: Any) -> list[dict[str, Any]]:
        async with self.driver.session(database=self.database) as session:
            result = await session.run("PROFILE " + query, params)
            rows = await result.data()
            self.note(query, (await result.consume()).profile)
        return rows

    async def write(self, query: Any, **params: Any) -> list[dict[str, Any]]:
        records, summary, _ = await self.driver.execute_query("PROFILE " + query, parameters_=params,
                                                              database_=self.database)
        self.note(query, summary.profile)
        return [r.data() for r in records]

    async def transaction(self, work: Work[Any]) -> Any:
        async with self.driver.session(database=self.database) as session:
            return await session.execute_write(lambda tx: work(_ProfiledTx(tx, self)))  # type: ignore[arg-type]


class _ProfiledTx:
    def __init__(self, tx: AsyncManagedTransaction, db: ProfiledDB) -> None:
        self.tx, self.db = tx, db

    async def run(self, query: Any, params: dict[str, Any] | None = None, **kw: Any) -> _Rows:
        result = await self.tx.run("PROFILE " + query, params, **kw)
        rows = await result.data()
        self.db.note(query, (await result.consume()).profile)
        return _Rows(rows)


class _Rows:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def data(self) -> list[dict[str, Any]]:
        return self.rows


def report(title: str, seen: Iterable[tuple[str, int]], names: dict[str, str]) -> None:
    per: dict[str, list[int]] = defaultdict(list)
    for query, n in seen:
        per[names.get(_flat(query), _flat(query)[:60])].append(n)
    print(f"{title}: {sum(sum(h) for h in per.values())} db hits")
    for name, hits in sorted(per.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {sum(hits):7d}  {name}  {hits}")


async def profile(entities: int, per_answer: int, answers: int) -> None:
    from gap_healer.app import GapHealer
    from gap_healer.settings import GapHealerSettings
    from graph_ingest.app import GraphIngest
    from graph_ingest.settings import GraphIngestSettings
    from moe_core.contracts import OntologyGap, deadline_in
    from moe_core.knowledge.graph.lifecycle import prepare_graph
    from moe_core.knowledge.graph.names import normalize
    from moe_core.runtime.idempotency import Memo
    from moe_core.runtime.stores import redis_client
    neo4j_auth = importlib.import_module("tests.support.store_auth").neo4j_auth

    eps = endpoints()
    ns = f"p{uuid.uuid4().hex[:6]}"
    settings = GraphIngestSettings(topic_namespace=ns, neo4j_url=eps["neo4j"], redis_url=eps["redis"],
                                   opa_url=eps["opa"], graph_trust_recompute_s=0)
    redis, db = redis_client(settings.redis_url), ProfiledDB(settings.neo4j_url, *neo4j_auth())
    db.seen = []
    await prepare_graph(db, seed=True)
    memo = Memo(redis, f"graph-ingest:triples:{ns}", 3600)
    ingest = GraphIngest(settings, _Serialised(), db, None, memo)  # type: ignore[arg-type]
    healer_settings = GapHealerSettings(topic_namespace=ns, neo4j_url=eps["neo4j"], redis_url=eps["redis"],
                                        opa_url=eps["opa"])
    healer_memo = Memo(redis, f"gap-healer:class:{ns}", 3600)
    healer = GapHealer(healer_settings, _Serialised(), db, None, healer_memo)  # type: ignore[arg-type]
    tenant, names = f"prof-{ns}", statement_names()
    try:
        known = await build_tenant(db, tenant, entities)
        for round_ in range(answers + 1):  # the first plans the statements: not reported
            m = f"{ns}{round_}"
            event = ingest_event(tenant, m, knowledge_type="technical", source_expert="technical")
            triples = [{"subject": f"Frobnik {m} {k}", "relation": "PART_OF", "object": known[round_ * 7 + k],
                        "confidence": 0.9} for k in range(per_answer)]
            await memo.put_first(event.response_id, json.dumps(triples))
            db.seen = []
            await ingest.on_ingest(event)
            if round_:
                report(f"answer {round_} ({per_answer} triples, tenant of {entities} entities)", db.seen, names)
        for label, term in (("a known term", known[1]), ("a new term", f"Zorblat {ns}"),
                            ("another new term", f"Quibbit {ns}")):
            classification = {"is_entity": True, "name": term, "parent": "Software", "domain": "technical",
                              "confidence": 0.9, "aliases": [f"{term} alias"]}
            await healer_memo.put_first(f"{tenant}:{normalize(term)}", json.dumps({"content": json.dumps(
                classification), "asked_by": None}))
            db.seen = []
            outcome = await healer.heal(OntologyGap(response_id=f"gap-{ns}", tenant_id=tenant, term=term,
                                                    deadline_at=deadline_in(60), context="what is it"))
            report(f"gap-healer, {label} ({outcome})", db.seen, names)
    finally:
        await GraphDB.write(db, "MATCH (n) WHERE n.tenant = $tenant DETACH DELETE n", tenant=tenant)
        await redis.delete(*[k async for k in redis.scan_iter(f"*{ns}*")] or ["-"])
        await redis.aclose()
        await ingest.close()
        await healer.close()
        await db.close()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(profile(*(args + [3000, 2, 3][len(args):])))
