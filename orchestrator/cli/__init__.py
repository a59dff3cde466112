"""The `mcp-deploy` command.

Start-up discipline: this module imports nothing beyond the standard library at import time.
`mcp-deploy --help` and `--version` are answered from here without importing click (the help
text is rendered from the click commands and stored next to this file; a test keeps the two
identical). Everything else is handed to `orchestrator.cli.app`.
"""

from __future__ import annotations

import sys

_HELP_FLAGS = (["--help"], ["-h"])


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (see docs/cli.md)."""
    args = sys.argv[1:] if argv is None else argv
    if args in _HELP_FLAGS:
        from pathlib import Path

        sys.stdout.write(Path(__file__).with_name("help.txt").read_text(encoding="utf-8"))
        return 0
    if args == ["--version"]:
        from orchestrator import __version__

        sys.stdout.write(f"mcp-deploy {__version__}\n")
        return 0
    from orchestrator.cli.app import run

    return run(args)
