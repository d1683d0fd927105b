"""Neo4j: a logical dump through the driver (the Community server has no online dump): every node (labels,
properties) and relationship (type, properties, ends) as JSON lines. Restored into an emptied graph in batches
(UNWIND, parameters; labels and types as dynamic labels), each node marked with its dumped id under a temporary
label until its relationships are made. Every query is a constant (tests/graph/house/test_no_cypher_from_text.py): the
indexes and constraints are not taken from the dump (a backup file must not carry Cypher to run) but made by the
services when they start (moe_core.knowledge.graph.schema.ensure_schema)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, LiteralString

from neo4j import AsyncDriver, AsyncGraphDatabase
from neo4j.time import Date, DateTime

from control_plane.ops.backup.settings import BackupSettings

NODES, RELS = "neo4j/nodes.jsonl", "neo4j/relationships.jsonl"
# the temporary label MoeRestore (and its index) marks a restored node with its dumped id until its relationships
# are made
ALL_NODES = "MATCH (n) RETURN elementId(n) AS id, labels(n) AS labels, properties(n) AS props"
ALL_RELS = ("MATCH (a)-[r]->(b) RETURN elementId(a) AS a, elementId(b) AS b, type(r) AS type, "
            "properties(r) AS props")
EMPTY = "MATCH (n) WITH n LIMIT 1000 DETACH DELETE n RETURN count(*) AS n"
TEMP_INDEX = "CREATE INDEX moe_restore_id IF NOT EXISTS FOR (n:MoeRestore) ON (n.moe_restore_id)"
AWAIT_INDEXES = "CALL db.awaitIndexes(300)"
CREATE_NODES = ("UNWIND $rows AS r CREATE (n:MoeRestore) SET n = r.props, n.moe_restore_id = r.id "
                "SET n:$(r.labels)")
CREATE_RELS = ("UNWIND $rows AS r MATCH (a:MoeRestore {moe_restore_id: r.a}) MATCH (b:MoeRestore "
               "{moe_restore_id: r.b}) CREATE (a)-[x:$(r.type)]->(b) SET x = r.props")
UNMARK = "MATCH (n:MoeRestore) WITH n LIMIT 1000 REMOVE n:MoeRestore, n.moe_restore_id RETURN count(*) AS n"
DROP_TEMP_INDEX = "DROP INDEX moe_restore_id IF EXISTS"


def encode(value: Any) -> Any:
    """A property value as JSON (temporal values tagged)."""
    if isinstance(value, DateTime):
        return {"$datetime": value.iso_format()}
    if isinstance(value, Date):
        return {"$date": value.iso_format()}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"a graph property of type {type(value).__name__} cannot be backed up yet")


def decode(value: Any) -> Any:
    if isinstance(value, dict) and "$datetime" in value:
        return DateTime.from_iso_format(value["$datetime"])
    if isinstance(value, dict) and "$bytes" in value:
        return base64.b64decode(value["$bytes"])
    if isinstance(value, dict) and "$date" in value:
        return Date.from_iso_format(value["$date"])
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def driver(settings: BackupSettings) -> AsyncDriver:
    password = settings.neo4j_password.get_secret_value()
    auth = (settings.neo4j_user, password) if settings.neo4j_user else None
    return AsyncGraphDatabase.driver(settings.neo4j_url, auth=auth, connection_timeout=10)


async def _rows(drv: AsyncDriver, db: str, query: LiteralString) -> AsyncIterator[dict[str, Any]]:
    async with drv.session(database=db) as session:
        result = await session.run(query)
        async for record in result:
            yield record.data()


async def dump(settings: BackupSettings, folder: Path) -> dict[str, Any]:
    (folder / "neo4j").mkdir(exist_ok=True)
    db = settings.neo4j_database
    counts = {"nodes": 0, "relationships": 0}
    async with driver(settings) as drv:
        with (folder / NODES).open("w") as out:
            async for r in _rows(drv, db, ALL_NODES):
                print(json.dumps({**r, "props": {k: encode(v) for k, v in r["props"].items()}}), file=out)
                counts["nodes"] += 1
        with (folder / RELS).open("w") as out:
            async for r in _rows(drv, db, ALL_RELS):
                print(json.dumps({**r, "props": {k: encode(v) for k, v in r["props"].items()}}), file=out)
                counts["relationships"] += 1
    return {"files": [NODES, RELS], **counts}


def _batches(path: Path, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    with path.open() as f:
        for line in f:
            row = json.loads(line)
            batch.append({**row, "props": {k: decode(v) for k, v in row["props"].items()}})
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


async def _repeat(drv: AsyncDriver, db: str, query: LiteralString) -> None:
    """Run a `... RETURN count(*) AS n` batch query until it touches nothing."""
    while True:
        async with drv.session(database=db) as session:
            n = (await (await session.run(query)).single(strict=True))["n"]
        if n == 0:
            return


async def _statement(drv: AsyncDriver, db: str, statement: LiteralString) -> None:
    async with drv.session(database=db) as session:
        await (await session.run(statement)).consume()


async def _batched(drv: AsyncDriver, db: str, query: LiteralString, path: Path, size: int) -> int:
    done = 0
    for batch in _batches(path, size):
        async with drv.session(database=db) as session:
            await (await session.run(query, rows=batch)).consume()
        done += len(batch)
    return done


async def restore(settings: BackupSettings, folder: Path) -> dict[str, int]:
    """The graph emptied, then the dump's nodes and relationships (the services make the schema at start)."""
    db, size = settings.neo4j_database, settings.batch
    async with driver(settings) as drv:
        await _repeat(drv, db, EMPTY)
        await _statement(drv, db, TEMP_INDEX)
        await _statement(drv, db, AWAIT_INDEXES)
        counts = {"nodes": await _batched(drv, db, CREATE_NODES, folder / NODES, size),
                  "relationships": await _batched(drv, db, CREATE_RELS, folder / RELS, size)}
        await _repeat(drv, db, UNMARK)
        await _statement(drv, db, DROP_TEMP_INDEX)
    return counts
