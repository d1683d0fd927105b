from moe_core.runtime.service import run
from planner.settings import PlannerSettings

if __name__ == "__main__":
    run("planner.app:create_app", PlannerSettings())
