"""python -m gap_healer                              run the daemon (ontology gaps and lint requests)
python -m gap_healer once                         drain the waiting gaps and lint requests once, then exit
python -m gap_healer lint [--tenant T] [--checks orphans,contradictions,decay]
                                                  publish a lint request (tenant '*' = every tenant)
python -m gap_healer run {lint,heal}              run a graph maintenance run now (the cron job): one runner at
                                                  a time across the fleet, recorded in the run history"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from gap_healer.settings import GapHealerSettings
from moe_core.contracts import LintRequest, deadline_in
from moe_core.contracts.messages import LINT_CHECKS
from moe_core.runtime.observability import configure_logging
from moe_core.runtime.service import run


async def _publish_lint(settings: GapHealerSettings, tenant: str, checks: list[str]) -> str:
    from moe_core.runtime.bus import Bus

    bus = Bus(settings)
    request = LintRequest(response_id=f"lint-{uuid.uuid4().hex[:16]}", tenant_id=tenant, deadline_at=deadline_in(3600),
                          checks=checks)  # type: ignore[arg-type]
    await bus.ensure_topics()
    await bus.broker.start()
    try:
        await bus.publish(request, bus.topics.linting)
    finally:
        await bus.close()
    return request.response_id


async def _run_now(settings: GapHealerSettings, kind: str) -> int:
    from gap_healer.app import build, close
    from gap_healer.schedule import Scheduler
    from moe_core.knowledge.graph.lifecycle import prepare_graph
    from moe_core.runtime.bus import Bus

    bus = Bus(settings)
    healer = build(settings, bus)
    await bus.ensure_topics()
    await bus.broker.start()  # lint deletions are audit events
    try:
        await prepare_graph(healer.db, seed=settings.graph_seed_ontology)
        healer.schedule = Scheduler(healer, settings, healer.memo.redis)
        result = await healer.schedule.run(kind, "cron")
    finally:
        await bus.close()
        await close(healer)
    if result.run_id is None:
        print(f"graph {kind} run not started: another runner holds the lock")
        return 0
    print(f"graph {kind} run {result.run_id}: {result.outcome} {result.counts or result.error}")
    return 0 if result.outcome == "ok" else 1


def main(argv: list[str]) -> int:
    settings = GapHealerSettings()
    if not argv:
        run("gap_healer.app:create_app", settings)
        return 0
    parser = argparse.ArgumentParser(prog="python -m gap_healer", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("once", help="drain the waiting gaps and lint requests, then exit")
    lint = sub.add_parser("lint", help="publish a lint request for the daemon")
    lint.add_argument("--tenant", default="*", help="tenant to lint; '*' = every tenant (default)")
    lint.add_argument("--checks", default=",".join(LINT_CHECKS), help="comma list of " + ", ".join(LINT_CHECKS))
    now = sub.add_parser("run", help="run a graph maintenance run now (recorded in the run history)")
    now.add_argument("kind", choices=["lint", "heal"])
    args = parser.parse_args(argv)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    if args.cmd == "once":
        from gap_healer.once import run_once

        done = asyncio.run(run_once(settings))
        print(f"healed {done.gaps} gaps, ran {done.lints} lint requests, {done.dead_letters} dead letters")
        return 0
    if args.cmd == "run":
        return asyncio.run(_run_now(settings, args.kind))
    checks = [c.strip() for c in args.checks.split(",") if c.strip()]
    unknown = sorted(set(checks) - set(LINT_CHECKS))
    if unknown or not checks:
        parser.error(f"unknown checks {unknown}; choose from {', '.join(LINT_CHECKS)}")
    rid = asyncio.run(_publish_lint(settings, args.tenant, checks))
    print(f"published lint request {rid} for tenant {args.tenant}: {', '.join(checks)} (results on the audit topic)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
