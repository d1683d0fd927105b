"""python -m gap_healer            run the daemon (consumes ontology gaps and lint requests)
python -m gap_healer once       drain the waiting gaps and lint requests once, then exit"""

from __future__ import annotations

import asyncio
import sys

from gap_healer.settings import GapHealerSettings
from moe_core.observability import configure_logging
from moe_core.service import run

if __name__ == "__main__":
    settings = GapHealerSettings()
    if sys.argv[1:] == ["once"]:
        from gap_healer.once import run_once

        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        done = asyncio.run(run_once(settings))
        print(f"healed {done.gaps} gaps, ran {done.lints} lint requests, {done.dead_letters} dead letters")
    elif sys.argv[1:]:
        sys.exit(__doc__)
    else:
        run("gap_healer.app:create_app", settings)
