"""The mcp service."""
