"""One way to talk to Neo4j: an async driver from settings, constant queries with parameters only,
and driver outages turned into ConnectionError (the bus redelivers a message on those)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, LiteralString, Protocol, TypeVar

from neo4j import READ_ACCESS, AsyncGraphDatabase, AsyncManagedTransaction, RoutingControl, TrustCustomCAs
from neo4j.exceptions import ConnectionPoolError, ServiceUnavailable, SessionExpired, TransientError

from moe_core.runtime.observability.stores import store_call

T = TypeVar("T")
QUERY_TIMEOUT_S = 10.0  # one query (read, write, ping); transactions (imports, bundles) are not bounded here
Work = Callable[[AsyncManagedTransaction], Awaitable[T]]


class GraphUnavailable(ConnectionError):
    """Neo4j could not be reached or asked to retry: a transient failure."""


class Neo4jSettings(Protocol):
    neo4j_url: str
    neo4j_user: str
    neo4j_password: str
    neo4j_database: str


@asynccontextmanager
async def _transient(timeout_s: float | None = None) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except (ServiceUnavailable, SessionExpired, TransientError, ConnectionPoolError) as exc:
        raise GraphUnavailable(f"{type(exc).__name__}: {exc}") from exc
    except TimeoutError as exc:  # a hung Neo4j (open connection, no answer) is an outage too
        raise GraphUnavailable(f"Neo4j did not answer within {timeout_s} s") from exc


class GraphDB:
    """Async access to one Neo4j database. Queries are constants (LiteralString); values go in params."""

    def __init__(self, url: str, user: str = "", password: str = "", database: str = "neo4j",
                 ca_file: str = "") -> None:
        auth = (user, password) if user else None
        # a private CA (MOE_NEO4J_CA_FILE): encrypted and verified against it; the driver allows this only with
        # the bolt:// and neo4j:// schemes (+s/+ssc name their own trust)
        tls: dict[str, Any] = {"encrypted": True, "trusted_certificates": TrustCustomCAs(ca_file)} if ca_file else {}
        # UNRECOGNIZED: a property key no node has yet (e.g. `expires_at` on a fresh graph) is not a fault of the
        # query; Neo4j would warn about it on every run until the first node carries it.
        self.driver = AsyncGraphDatabase.driver(url, auth=auth, connection_timeout=5, max_transaction_retry_time=10,
                                                notifications_disabled_classifications=["UNRECOGNIZED"], **tls)
        self.database = database

    @classmethod
    def from_settings(cls, settings: Neo4jSettings) -> GraphDB:
        return cls(settings.neo4j_url, settings.neo4j_user, settings.neo4j_password, settings.neo4j_database,
                   getattr(settings, "neo4j_ca_file", ""))

    async def close(self) -> None:
        await self.driver.close()

    async def ping(self) -> None:
        async with _transient(QUERY_TIMEOUT_S):
            records, _, _ = await self.driver.execute_query("RETURN 1 AS one", database_=self.database)
        if records[0]["one"] != 1:
            raise RuntimeError("Neo4j did not return 1")

    async def probe(self, timeout_s: float = 5.0) -> None:
        """One attempt at `RETURN 1`, without the driver's retries (execute_query's retry loop sleeps up to seconds
        between tries): a circuit breaker's probe (moe_core.stage.breaker), which tries again itself. A connection
        the pool kept from before an outage fails this attempt and leaves the pool; the next attempt opens one."""
        async with _transient(timeout_s), self.driver.session(database=self.database) as session:
            record = await (await session.run("RETURN 1 AS one")).single()
        if record is None or record["one"] != 1:
            raise RuntimeError("Neo4j did not return 1")

    async def read(self, query: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """One read as an auto-commit query: one round trip (RUN and PULL together), where a managed transaction
        takes two (BEGIN with RUN and PULL, then COMMIT) and costs Neo4j about 0.7 ms more CPU
        (`python -m bench.graph_task_costs`). It carries the bookmarks of execute_query (the writes), so it sees
        this driver's writes in a cluster too. A transient failure is retried once as a managed transaction (the
        driver's own retries with backoff, as before)."""
        async with _transient(QUERY_TIMEOUT_S):
            with store_call("neo4j", "read"):
                try:
                    async with self.driver.session(database=self.database, default_access_mode=READ_ACCESS,
                                                   bookmark_manager=self.driver.execute_query_bookmark_manager) as s:
                        return await (await s.run(query, params)).data()
                except (ServiceUnavailable, SessionExpired, TransientError):
                    records, _, _ = await self.driver.execute_query(
                        query, parameters_=params, routing_=RoutingControl.READ, database_=self.database)
        return [record.data() for record in records]

    async def write(self, query: LiteralString, **params: Any) -> list[dict[str, Any]]:
        async with _transient(QUERY_TIMEOUT_S):
            with store_call("neo4j", "write"):
                records, _, _ = await self.driver.execute_query(
                    query, parameters_=params, routing_=RoutingControl.WRITE, database_=self.database)
        return [record.data() for record in records]

    async def transaction(self, work: Work[T]) -> T:
        """Run `work` in one write transaction (retried by the driver on transient errors)."""
        async with _transient(), self.driver.session(database=self.database) as session:
            return await session.execute_write(work)


async def tx_data(tx: AsyncManagedTransaction, query: LiteralString, **params: Any) -> list[dict[str, Any]]:
    """Inside a transaction: run one constant query and return its rows."""
    result = await tx.run(query, params)
    return await result.data()
