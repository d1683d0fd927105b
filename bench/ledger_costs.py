"""The overhead ledger's meter of a run's tasks, its own cost (moe_core.runtime.observability.ledger.charge_tasks):
one metered run starts N tasks of 10 steps each (gather), with the task factory that charges them to the run and
without it; the process CPU per task step, min and median of 10 alternated rounds. No infrastructure.
`.venv/bin/python -m bench.ledger_costs [N]`."""

from __future__ import annotations

import asyncio
import sys
import time

from moe_core.runtime.observability import ledger


async def _steps() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def _handler(n: int) -> None:
    await asyncio.gather(*(_steps() for _ in range(n)))  # the tasks are made inside the run


async def _round(charged: bool, n: int) -> float:
    """CPU seconds per task step of one run that gathers n tasks."""
    run = ledger.RunLedger()
    token = ledger.RUN_LEDGER.set(run)
    try:
        handler = _handler(n)
        started = time.process_time()
        if charged:
            await ledger.metered(handler, run)
        else:
            asyncio.get_running_loop().set_task_factory(None)
            await ledger._Metered(handler, run)
        return (time.process_time() - started) / (n * 11)  # 10 awaits and the end: 11 steps per task
    finally:
        ledger.RUN_LEDGER.reset(token)


async def main(n: int) -> None:
    rounds: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(10):
        for charged in (False, True):
            rounds[charged].append(await _round(charged, n))
    for charged, seconds in rounds.items():
        seconds.sort()
        print(f"{'charged' if charged else 'plain'}: {seconds[0] * 1e6:.2f}-{seconds[5] * 1e6:.2f} us CPU per task "
              f"step (min-median of 10 rounds of {n} tasks)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
