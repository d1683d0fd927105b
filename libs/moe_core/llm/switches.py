"""Operator switches kept in Redis (set from the admin console): inference servers and expert models taken
out of service without a restart.

    inference:<ns>:disabled    set of server names: a disabled server is treated as unhealthy by the
                               fleet (moe_core.llm.inference.fleet.views): calls go to the other servers first
                               and it is tried only when none of them answers (drain, not a hard stop);
                               with a single configured server there is no choice and the switch has no effect
    expert:disabled:<ns>       set of "<category>:<model>": the expert-worker leaves the model out of that
                               category (expert_worker.scoring.ScoreBoard.usable); never the category's last
                               model (the console refuses that, and the worker keeps all if all are off)
    mcp:disabled:<ns>          set of tool names: the mcp stage refuses a call of a disabled tool through every
                               front door (Kafka, REST, MCP) with `tool_disabled` and leaves it out of its tool
                               lists (mcp_service.registry); the planner's plans may still name it, and such a
                               task is answered as not answered (the merger goes on without it)
"""

from __future__ import annotations

from typing import Literal

from redis.asyncio import Redis

Kind = Literal["server", "expert", "tool"]


def servers_key(namespace: str) -> str:
    return f"inference:{namespace}:disabled"


def experts_key(namespace: str) -> str:
    return f"expert:disabled:{namespace}"


def tools_key(namespace: str) -> str:
    return f"mcp:disabled:{namespace}"


def expert_member(category: str, model: str) -> str:
    return f"{category}:{model}"


class Switches:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.keys: dict[Kind, str] = {"server": servers_key(namespace), "expert": experts_key(namespace),
                                      "tool": tools_key(namespace)}

    async def disabled(self, kind: Kind) -> set[str]:
        return {m.decode() if isinstance(m, bytes) else str(m) for m in await self.redis.smembers(self.keys[kind])}

    async def set(self, kind: Kind, member: str, *, enabled: bool) -> bool:
        """Enable or disable one server, expert model or tool; True if that changed anything."""
        if enabled:
            return bool(await self.redis.srem(self.keys[kind], member))
        return bool(await self.redis.sadd(self.keys[kind], member))
