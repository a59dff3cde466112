module mcp-deploy.dev/launcher

go 1.22
