"""Client CPU of one Redis round trip, by reply parser:

  python -m bench.redis_costs [N] [REDIS_URL]

Against the local fleet's Redis (started if it is not running; its password from .data/secrets.json) or
REDIS_URL: N GETs of a 200-byte value and N pipelines of four commands (GET, HGETALL of ten fields, INCR,
EXPIRE), through redis-py's asyncio client on uvloop (the services' loop), with each parser in turn, twice:
redis-py's pure-Python RESP3 parser and hiredis (what the services use: redis-py picks it when it is
installed). Reports this process's CPU milliseconds per round trip.
"""

from __future__ import annotations

import sys
import time
import uuid

import uvloop
from redis._parsers import _AsyncHiredisParser, _AsyncRESP3Parser
from redis.asyncio import Redis

from bench.infra import connect


async def _measure(url: str, parser: type, n: int) -> tuple[float, float]:
    client = Redis.from_url(url, decode_responses=True, parser_class=parser)  # RESP3, redis-py 8's default
    key = f"bench:redis-costs:{uuid.uuid4().hex}"
    try:
        await client.set(key, "v" * 200, ex=300)
        await client.hset(f"{key}:h", mapping={f"f{i}": "x" * 50 for i in range(10)})
        await client.expire(f"{key}:h", 300)
        for _ in range(200):
            await client.get(key)
        start = time.process_time()
        for _ in range(n):
            await client.get(key)
        get = (time.process_time() - start) * 1000 / n
        start = time.process_time()
        for _ in range(n):
            pipe = client.pipeline(transaction=False)
            for command, args in (("GET", (key,)), ("HGETALL", (f"{key}:h",)), ("INCR", (f"{key}:n",)),
                                  ("EXPIRE", (f"{key}:n", 300))):
                pipe.execute_command(command, *args)
            await pipe.execute()
        return get, (time.process_time() - start) * 1000 / n
    finally:
        await client.delete(key, f"{key}:h", f"{key}:n")
        await client.aclose()


def main(n: int, url: str) -> None:
    parsers = (("pure Python (RESP3)", _AsyncRESP3Parser), ("hiredis", _AsyncHiredisParser))
    for name, parser in (*parsers, *reversed(parsers)):  # both orders: a warmer second run shows
        get, pipeline = uvloop.run(_measure(url, parser, n))
        print(f"{name}: GET {get:.3f} ms CPU per round trip, pipeline of four {pipeline:.3f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000,
         sys.argv[2] if len(sys.argv) > 2 else connect(["redis"])["redis"])
