"""python -m graph_ingest                                   run the service
python -m graph_ingest recompute-trust                   recompute every relation's trust once, in pages
python -m graph_ingest blast-radius-report [--tenant T]  2-hop reach of every entity the tenant sees
                                                         (default: the shared ontology), to choose
                                                         MOE_GRAPH_BLAST_RADIUS_MAX"""

from __future__ import annotations

import argparse
import asyncio
import sys

from graph_ingest.settings import GraphIngestSettings
from moe_core.knowledge.graph import SHARED_TENANT, GraphDB
from moe_core.knowledge.graph.feedback import recompute_trust
from moe_core.knowledge.graph.reach import reach_distribution
from moe_core.runtime.service import run


async def _recompute(settings: GraphIngestSettings) -> None:
    db = GraphDB.from_settings(settings)
    try:
        done = await recompute_trust(db, settings.trust_policy(), settings.graph_trust_page_size)
        print(f"scanned {done.scanned} relations in {done.pages} pages, {done.changed} changed")
    finally:
        await db.close()


async def _report(settings: GraphIngestSettings, tenant: str) -> None:
    db = GraphDB.from_settings(settings)
    try:
        report = await reach_distribution(db, tenant)
    finally:
        await db.close()
    if not report.reaches:
        print(f"tenant {tenant} sees no entities")
        return
    limit = settings.graph_blast_radius_max
    print(f"{len(report.reaches)} entities; 2-hop reach: " + ", ".join(f"{k} {v}" for k, v in report.summary().items()))
    print(f"above MOE_GRAPH_BLAST_RADIUS_MAX={limit}: {report.above(limit) or 'none'}")


def main(argv: list[str]) -> int:
    settings = GraphIngestSettings()
    if not argv:
        run("graph_ingest.app:create_app", settings)
        return 0
    parser = argparse.ArgumentParser(prog="python -m graph_ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("recompute-trust", help="recompute every relation's trust once")
    report = sub.add_parser("blast-radius-report", help="the 2-hop reach distribution")
    report.add_argument("--tenant", default=SHARED_TENANT)
    args = parser.parse_args(argv)
    if args.cmd == "recompute-trust":
        asyncio.run(_recompute(settings))
    else:
        asyncio.run(_report(settings, args.tenant))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
