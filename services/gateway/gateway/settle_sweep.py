"""Settling the requests whose gateway replica died: every replica runs this sweeper, one per interval sweeps.

A request's hold (gateway.settlement) is indexed by when its owner must have settled it: its deadline plus
MOE_DEADLINE_GRACE_S, MOE_RESUME_GRACE_S and MOE_SETTLE_ORPHAN_AFTER_S. Every MOE_SETTLE_SWEEP_INTERVAL_S a
replica takes the sweep's turn (a Redis key with NX: one replica per interval), reads up to
MOE_SETTLE_SWEEP_BATCH due holds, looks their Answers up on the answers topic (one consumer for the batch),
and settles each through the same claim as everyone else: an Answer that was published is charged its usage,
a request without one what its model calls used (its budget is closed). With nothing due a sweep is two
Redis commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from gateway.metering import Metering
from gateway.stream_replay import published_answers
from moe_core.observability import bind_response_id

log = logging.getLogger(__name__)
LOOKUP_TIMEOUT_S = 20.0


class SettleSweeper:
    def __init__(self, metering: Metering) -> None:
        self.metering = metering
        self.settings = metering.settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        interval = self.settings.settle_sweep_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.metering.settlements.sweep_turn(interval * 0.9):
                    await self.sweep()
            except Exception as exc:  # Redis, Kafka or Postgres away: the holds wait for the next sweep
                log.warning("settle sweep failed: %s", exc)

    async def sweep(self, now: float | None = None) -> int:
        """Settle what is due; returns how many requests this sweep settled."""
        settlements = self.metering.settlements
        rids = await settlements.due(time.time() if now is None else now, self.settings.settle_sweep_batch)
        if not rids:
            return 0
        holds = await settlements.holds(rids)
        if not holds:
            return 0
        answers = await published_answers(self.settings, {rid: h.created for rid, h in holds.items()},
                                          lookback_s=self.settings.resume_lookback_s, timeout_s=LOOKUP_TIMEOUT_S)
        settled = 0
        for rid in holds:
            answer = answers.get(rid)
            with bind_response_id(rid):
                if await self.metering.settle_orphan(rid, answer):
                    settled += 1
                    log.info("usage settled by the sweeper (%s)", "answered" if answer else "abandoned")
        return settled
