"""Settling the requests whose edge replica died: housekeeping, off the request path (it was the edge's).

A request's hold (moe_core.access.settlement) is indexed by when its owner must have settled it: its deadline
plus the edge's MOE_DEADLINE_GRACE_S, MOE_RESUME_GRACE_S and MOE_SETTLE_ORPHAN_AFTER_S. Every
MOE_SETTLE_SWEEP_INTERVAL_S a control plane replica takes the sweep's turn (a Redis key with NX: one replica per
interval), reads up to MOE_SETTLE_SWEEP_BATCH due holds, looks their Answers up on the answers topic (one
consumer for the batch, moe_core.runtime.topic_reads; read back from MOE_SETTLE_LOOKBACK_S before each request's
creation) and settles each through the same claim as the edge (moe_core.access.settler): an Answer that was
published, signed by a declared producer of the answers topic (as the edge checks it), is charged its usage, a
request without one what its model calls used (its budget is closed). The charge goes out on the `usage` topic
like the edge's. With nothing due a sweep is two Redis commands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from moe_core.access.settler import Settler
from moe_core.runtime.observability import bind_response_id
from moe_core.runtime.periodic import Periodic
from moe_core.runtime.settings import FleetSettings
from moe_core.runtime.topic_reads import published_answers

log = logging.getLogger(__name__)
LOOKUP_TIMEOUT_S = 20.0


class SweepSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    settle_sweep_interval_s: float = Field(default=15.0, gt=0, le=3600, description="Usage: how often a replica "
                                          "looks for requests whose edge replica died before settling them (one "
                                          "replica per interval sweeps)")
    settle_sweep_batch: int = Field(default=50, ge=1, le=1000, description="Usage: at most this many such "
                                    "requests settled per sweep")
    settle_lookback_s: float = Field(default=30.0, ge=0, description="Usage: a swept request's Answer is read "
                                     "back from this long before its creation (clock skew between hosts)")


class SettleSweeper:
    def __init__(self, settings: FleetSettings, sweep: SweepSettings, settler: Settler,
                 proven: Callable[[Any, str], Awaitable[bool]] | None = None) -> None:
        """proven: whether a declared producer signed an Answer read back (Bus.proven_record): only such an Answer's
        usage is charged (the rest is counted and dead-lettered, as by every consumer that checks)."""
        self.settings = settings
        self.sweep_settings = sweep
        self.settler = settler
        self.proven = proven
        self.loop = Periodic(self._turn, lambda: sweep.settle_sweep_interval_s, first=False, what="settle sweep")
        self.start, self.close = self.loop.start, self.loop.close

    async def _turn(self) -> None:
        """Redis or Kafka away: the step fails and the holds wait for the next sweep."""
        if await self.settler.settlements.sweep_turn(self.sweep_settings.settle_sweep_interval_s * 0.9):
            await self.sweep()

    async def sweep(self, now: float | None = None) -> int:
        """Settle what is due; returns how many requests this sweep settled."""
        settlements = self.settler.settlements
        rids = await settlements.due(time.time() if now is None else now, self.sweep_settings.settle_sweep_batch)
        if not rids:
            return 0
        holds = await settlements.holds(rids)
        if not holds:
            return 0
        answers = await published_answers(self.settings, {rid: h.created for rid, h in holds.items()},
                                          lookback_s=self.sweep_settings.settle_lookback_s,
                                          timeout_s=LOOKUP_TIMEOUT_S, proven=self.proven)
        settled = 0
        for rid in holds:
            answer = answers.get(rid)
            with bind_response_id(rid):
                if await self.settler.settle_orphan(rid, answer):
                    settled += 1
                    log.info("usage settled by the sweeper (%s)", "answered" if answer else "abandoned")
        return settled
