from gateway.settings import GatewaySettings
from moe_core.runtime.service import run

if __name__ == "__main__":
    settings = GatewaySettings()
    run("gateway.app:create_app", settings, workers=settings.gateway_workers)
