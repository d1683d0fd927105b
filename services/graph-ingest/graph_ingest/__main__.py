"""python -m graph_ingest            run the service
python -m graph_ingest recompute-trust   recompute every relation's trust once, in pages, and exit"""

from __future__ import annotations

import asyncio
import sys

from graph_ingest.settings import GraphIngestSettings
from moe_core.graph import GraphDB
from moe_core.graph.feedback import recompute_trust
from moe_core.service import run


async def _recompute(settings: GraphIngestSettings) -> None:
    db = GraphDB.from_settings(settings)
    try:
        done = await recompute_trust(db, settings.trust_policy(), settings.graph_trust_page_size)
        print(f"scanned {done.scanned} relations in {done.pages} pages, {done.changed} changed")
    finally:
        await db.close()


if __name__ == "__main__":
    settings = GraphIngestSettings()
    if sys.argv[1:] == ["recompute-trust"]:
        asyncio.run(_recompute(settings))
    elif sys.argv[1:]:
        sys.exit(__doc__)
    else:
        run("graph_ingest.app:create_app", settings)
