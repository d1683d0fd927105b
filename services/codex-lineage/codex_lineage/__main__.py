from codex_lineage.settings import LineageSettings
from moe_core.service import run

if __name__ == "__main__":
    run("codex_lineage.app:create_app", LineageSettings())
