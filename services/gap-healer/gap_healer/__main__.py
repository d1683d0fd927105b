"""python -m gap_healer                              run the daemon (ontology gaps and lint requests)
python -m gap_healer once                         drain the waiting gaps and lint requests once, then exit
python -m gap_healer lint [--tenant T] [--checks orphans,contradictions,decay]
                                                  publish a lint request (tenant '*' = every tenant)"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from gap_healer.settings import GapHealerSettings
from moe_core.contracts import LintRequest, deadline_in
from moe_core.contracts.messages import LINT_CHECKS
from moe_core.observability import configure_logging
from moe_core.service import run


async def _publish_lint(settings: GapHealerSettings, tenant: str, checks: list[str]) -> str:
    from moe_core.bus import Bus

    bus = Bus(settings)
    request = LintRequest(response_id=f"lint-{uuid.uuid4().hex[:16]}", tenant_id=tenant, deadline_at=deadline_in(3600),
                          checks=checks)  # type: ignore[arg-type]
    await bus.ensure_topics()
    await bus.broker.start()
    try:
        await bus.publish(request, bus.topics.linting)
    finally:
        await bus.broker.stop()
    return request.response_id


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
    args = parser.parse_args(argv)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    if args.cmd == "once":
        from gap_healer.once import run_once

        done = asyncio.run(run_once(settings))
        print(f"healed {done.gaps} gaps, ran {done.lints} lint requests, {done.dead_letters} dead letters")
        return 0
    checks = [c.strip() for c in args.checks.split(",") if c.strip()]
    unknown = sorted(set(checks) - set(LINT_CHECKS))
    if unknown or not checks:
        parser.error(f"unknown checks {unknown}; choose from {', '.join(LINT_CHECKS)}")
    rid = asyncio.run(_publish_lint(settings, args.tenant, checks))
    print(f"published lint request {rid} for tenant {args.tenant}: {', '.join(checks)} (results on the audit topic)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
