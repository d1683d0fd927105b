from merger.settings import MergerSettings
from moe_core.runtime.service import run

if __name__ == "__main__":
    run("merger.app:create_app", MergerSettings())
