from mcp_service.runner import prestart
from mcp_service.settings import McpSettings
from moe_core.runtime.service import run

if __name__ == "__main__":
    prestart()
    run("mcp_service.app:create_app", McpSettings())
