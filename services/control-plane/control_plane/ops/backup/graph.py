"""Neo4j: a logical dump through the driver (the Community server has no online dump): its indexes and constraints
(their create statements), every node (labels, properties) and relationship (type, properties, ends) as JSON lines.
Restored into an emptied graph in batches (UNWIND, parameters; labels and types as dynamic labels), each node
marked with its dumped id under a temporary label until its relationships are made."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from neo4j import AsyncDriver, AsyncGraphDatabase
from neo4j.exceptions import ClientError
from neo4j.time import Date, DateTime

from control_plane.ops.backup.settings import BackupSettings

SCHEMA, NODES, RELS = "neo4j/schema.json", "neo4j/nodes.jsonl", "neo4j/relationships.jsonl"
TEMP = "MoeRestore"  # the temporary label (and index) of a restore


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


async def _rows(drv: AsyncDriver, db: str, query: Any) -> AsyncIterator[dict[str, Any]]:
    async with drv.session(database=db) as session:
        result = await session.run(query)
        async for record in result:
            yield record.data()


async def dump(settings: BackupSettings, folder: Path) -> dict[str, Any]:
    (folder / "neo4j").mkdir(exist_ok=True)
    db = settings.neo4j_database
    counts = {"nodes": 0, "relationships": 0}
    async with driver(settings) as drv:
        schema = [r["statement"] async for r in _rows(drv, db, "SHOW CONSTRAINTS YIELD createStatement AS statement")]
        schema += [r["statement"] async for r in _rows(
            drv, db, "SHOW INDEXES YIELD createStatement AS statement, type, owningConstraint "
                     "WHERE owningConstraint IS NULL AND type <> 'LOOKUP' RETURN statement")]
        (folder / SCHEMA).write_text(json.dumps(schema, indent=1))
        with (folder / NODES).open("w") as out:
            async for r in _rows(drv, db, "MATCH (n) RETURN elementId(n) AS id, labels(n) AS labels, "
                                          "properties(n) AS props"):
                out.write(json.dumps({**r, "props": {k: encode(v) for k, v in r["props"].items()}}) + "\n")
                counts["nodes"] += 1
        with (folder / RELS).open("w") as out:
            async for r in _rows(drv, db, "MATCH (a)-[r]->(b) RETURN elementId(a) AS a, elementId(b) AS b, "
                                          "type(r) AS type, properties(r) AS props"):
                out.write(json.dumps({**r, "props": {k: encode(v) for k, v in r["props"].items()}}) + "\n")
                counts["relationships"] += 1
    return {"files": [SCHEMA, NODES, RELS], **counts}


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


async def _repeat(drv: AsyncDriver, db: str, query: Any) -> None:
    """Run a `... RETURN count(*) AS n` batch query until it touches nothing."""
    while True:
        async with drv.session(database=db) as session:
            n = (await (await session.run(query)).single(strict=True))["n"]
        if n == 0:
            return


async def _schema(drv: AsyncDriver, db: str, statements: list[str]) -> None:
    for statement in statements:
        try:
            async with drv.session(database=db) as session:
                await (await session.run(statement)).consume()
        except ClientError as exc:
            if "AlreadyExists" not in (exc.code or ""):
                raise


async def restore(settings: BackupSettings, folder: Path) -> dict[str, int]:
    """The graph emptied, then the dump's schema, nodes and relationships."""
    db, size = settings.neo4j_database, settings.batch
    counts = {"nodes": 0, "relationships": 0}
    async with driver(settings) as drv:
        await _repeat(drv, db, "MATCH (n) WITH n LIMIT 1000 DETACH DELETE n RETURN count(*) AS n")
        await _schema(drv, db, json.loads((folder / SCHEMA).read_text()))
        await _schema(drv, db, [f"CREATE INDEX moe_restore_id IF NOT EXISTS FOR (n:{TEMP}) ON (n.moe_restore_id)"])
        await _schema(drv, db, ["CALL db.awaitIndexes(300)"])
        for batch in _batches(folder / NODES, size):
            async with drv.session(database=db) as session:
                await (await session.run(
                    f"UNWIND $rows AS r CREATE (n:{TEMP}) SET n = r.props, n.moe_restore_id = r.id "
                    "SET n:$(r.labels)", rows=batch)).consume()
            counts["nodes"] += len(batch)
        for batch in _batches(folder / RELS, size):
            async with drv.session(database=db) as session:
                await (await session.run(
                    f"UNWIND $rows AS r MATCH (a:{TEMP} {{moe_restore_id: r.a}}) MATCH (b:{TEMP} "
                    "{moe_restore_id: r.b}) CREATE (a)-[x:$(r.type)]->(b) SET x = r.props", rows=batch)).consume()
            counts["relationships"] += len(batch)
        await _repeat(drv, db, f"MATCH (n:{TEMP}) WITH n LIMIT 1000 REMOVE n:{TEMP}, n.moe_restore_id "
                               "RETURN count(*) AS n")
        await _schema(drv, db, ["DROP INDEX moe_restore_id IF EXISTS"])
    return counts
