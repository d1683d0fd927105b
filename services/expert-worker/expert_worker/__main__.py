from expert_worker.settings import ExpertSettings
from moe_core.runtime.service import run

if __name__ == "__main__":
    run("expert_worker.app:create_app", ExpertSettings())
