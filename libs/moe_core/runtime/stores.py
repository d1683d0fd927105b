"""Clients of the fleet's stores, made one way everywhere. Every Redis command and pipeline is timed and
counted (`moe_store_seconds{store="redis"}`, moe_core.runtime.observability.stores)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from moe_core.runtime.observability.stores import store_call


class TimedPipeline(Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        with store_call("redis", "pipeline"):
            return await super().execute(raise_on_error)


class TimedRedis(Redis):
    """A Redis client whose round trips show in `moe_store_seconds` (one per command, one per pipeline)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        with store_call("redis", str(args[0]).lower() if args else "?"):
            return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> TimedPipeline:
        return TimedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


REDIS_MAX_CONNECTIONS = 256  # per process
REDIS_TIMEOUT_S = 5.0  # a hung Redis (no answer on an open connection) fails the command, never the request


def redis_client(url: str, ca_file: str = "", max_connections: int = REDIS_MAX_CONNECTIONS) -> Redis:
    """Pub/sub listeners are not cut by the socket timeout (redis-py reads them without one). A connection
    Redis closed (it restarted) is retried on a new one; a timeout is not (a hung Redis fails fast). With TLS
    (rediss://), `ca_file` is the CA its certificate is verified against (MOE_REDIS_CA_FILE). The pool keeps every
    connection it ever opened, up to `max_connections`: a process that serves bursts (the gateway) keeps that many."""
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), 2, supported_errors=(RedisConnectionError,))
    # A blocking pool: past `max_connections` commands in flight, the next one waits (up to the timeout) for a
    # connection; redis-py's default pool (100) raised "Too many connections" at once, so a burst of streams
    # (bench/streams.py: 256 at once) failed its key checks.
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=REDIS_TIMEOUT_S,
                                           decode_responses=True, socket_connect_timeout=3,
                                           socket_timeout=REDIS_TIMEOUT_S, health_check_interval=30, retry=retry,
                                           **tls_options(url, ca_file))
    client = TimedRedis(connection_pool=pool)
    client.auto_close_connection_pool = True  # as from_url does: closing the client closes its pool
    return client


def tls_options(url: str, ca_file: str) -> dict[str, str]:
    """redis-py's TLS options for a rediss:// URL verified against `ca_file` (a plain redis:// URL takes none)."""
    return {"ssl_ca_certs": ca_file} if ca_file and url.startswith("rediss://") else {}


async def redis_ready(client: Redis) -> None:
    if not await client.ping():
        raise RuntimeError("Redis did not answer PING")
