"""A small MCP server used as mcp-deploy's example and in its tests."""
