"""`mcp-deploy verify`: the official MCP conformance suite and the auth discovery chain
against a deployment (or any MCP URL).

- `toolchain`: the pinned `@modelcontextprotocol/conformance` and Node.js 22, from npm, cached;
- `probe`: initialize with the token and read what the server advertises;
- `scenarios`: which of the suite's server scenarios apply, and why the others do not;
- `proxy`: a loopback proxy adding the token (the suite cannot send one);
- `conformance`: run scenarios with the suite and read their checks.json;
- `challenge`, `discovery`: WWW-Authenticate parsing and the OAuth discovery chain;
- `limits`: failures a target's platform cannot avoid;
- `report`: the outcome; `run.verify`: all of it; `gate`: verify as part of a deploy's gate.

Like `orchestrator.smoke`, it knows no target package: a target is a name here.
"""
