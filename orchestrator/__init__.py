"""mcp-deploy's core: spec, environments, build pipeline, records and the command line.

Importing this package must stay cheap: the command line's start-up path imports it.
"""

__version__ = "0.1.0"
