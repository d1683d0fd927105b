from mcp_service.settings import McpSettings
from moe_core.service import run

if __name__ == "__main__":
    run("mcp_service.app:create_app", McpSettings())
