from moe_core.runtime.service import run
from research.settings import ResearchSettings

if __name__ == "__main__":
    run("research.app:create_app", ResearchSettings())
