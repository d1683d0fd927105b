from graph_rag.settings import GraphRagSettings
from moe_core.runtime.service import run

if __name__ == "__main__":
    run("graph_rag.app:create_app", GraphRagSettings())
