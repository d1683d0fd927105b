from critic.settings import CriticSettings
from moe_core.runtime.service import run

if __name__ == "__main__":
    run("critic.app:create_app", CriticSettings())
