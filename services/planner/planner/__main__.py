import gc

import planner.app  # noqa: F401 - imported here, before the freeze: the app uvicorn builds takes it from sys.modules
from moe_core.runtime.service import run
from planner.settings import PlannerSettings

if __name__ == "__main__":
    # What the imports made (modules, pydantic schemas, the preflight's compiled grammars: ~170k objects) lives as
    # long as the process: out of the collector's way, a full collection walks only what came later (issue 52: one
    # such collection, ~130 ms of CPU, sat on a line of planner.rescue in make bench's profile). In the service
    # process only: a test process starts and drops many planners.
    gc.collect()
    gc.freeze()
    run("planner.app:create_app", PlannerSettings())
