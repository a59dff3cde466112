"""Stdio MCP servers for the stdio bridge's tests (`python -m tests.support.stdio_servers MODE`).

- `sdk`: a real server on the project's `mcp` SDK (`MCPServer`, `run("stdio")`) with tools
  `pid()` (its process id) and `env_value(name)` (an environment variable).
- `raw`: a hand-written newline-delimited JSON-RPC server (standard library only) that the
  SDK would not let a test misbehave with: it answers concurrently and out of order, logs and
  sends notifications, asks its client for sampling, records what reached it (ids, cancellations)
  and can crash. Options: `--version V` (the protocolVersion it answers initialize with),
  `--exit-unless PATH` (exit 3 at start unless PATH exists).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any


def sdk_main() -> None:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("pid-env", instructions="Process id and environment probes.")

    @server.tool()
    def pid() -> int:
        """This server's process id."""
        return os.getpid()

    @server.tool()
    def env_value(name: str) -> str:
        """The value of environment variable `name` ('' when unset)."""
        return os.environ.get(name, "")

    server.run("stdio")


class RawServer:
    TOOLS = ("echo", "sleep", "seen", "notify", "ask_client", "crash", "pid", "env", "cwd")

    def __init__(self, version: str) -> None:
        self.version = version
        self.lock = threading.Lock()
        self.seen: list[list[Any]] = []  # [method, id] of every request and notification
        self.cancelled: list[Any] = []
        self.answers: dict[Any, threading.Event] = {}
        self.replies: dict[Any, Any] = {}

    def write(self, message: dict[str, Any]) -> None:
        with self.lock:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    def result(self, request_id: Any, value: Any) -> None:
        content = [{"type": "text", "text": json.dumps(value)}]
        payload = {"content": content, "structuredContent": {"value": value}, "isError": False}
        self.write({"jsonrpc": "2.0", "id": request_id, "result": payload})

    def serve(self) -> None:
        for line in sys.stdin:
            if not line.strip():
                continue
            message = json.loads(line)
            method = message.get("method")
            if method is None:  # a reply to one of our requests
                self.replies[message.get("id")] = message
                event = self.answers.get(message.get("id"))
                if event is not None:
                    event.set()
                continue
            self.seen.append([method, message.get("id")])
            if method == "notifications/cancelled":
                self.cancelled.append(message["params"]["requestId"])
            elif "id" in message:
                threading.Thread(target=self.answer, args=(message,), daemon=True).start()

    def answer(self, message: dict[str, Any]) -> None:
        request_id, method = message["id"], message["method"]
        params = message.get("params") or {}
        if method == "initialize":
            info = {"name": "raw", "version": "0.1"}
            result = {"protocolVersion": self.version, "capabilities": {"tools": {}}}
            self.write(
                {"jsonrpc": "2.0", "id": request_id, "result": {**result, "serverInfo": info}}
            )
        elif method == "ping":
            self.write({"jsonrpc": "2.0", "id": request_id, "result": {}})
        elif method == "tools/list":
            tools = [{"name": n, "inputSchema": {"type": "object"}} for n in self.TOOLS]
            self.write({"jsonrpc": "2.0", "id": request_id, "result": {"tools": tools}})
        elif method == "tools/call":
            self.call(request_id, params["name"], params.get("arguments") or {})
        else:
            error = {"code": -32601, "message": "Method not found", "data": method}
            self.write({"jsonrpc": "2.0", "id": request_id, "error": error})

    def call(self, request_id: Any, name: str, args: dict[str, Any]) -> None:
        if name == "echo":
            time.sleep(float(args.get("delay", 0)))
            self.result(request_id, {"value": args.get("value"), "request_id": request_id})
        elif name == "sleep":
            deadline = time.monotonic() + float(args["seconds"])
            while time.monotonic() < deadline:
                if request_id in self.cancelled:
                    return  # a cancelled request gets no reply
                time.sleep(0.02)
            self.result(request_id, "slept")
        elif name == "seen":
            self.result(request_id, {"seen": self.seen, "cancelled": self.cancelled})
        elif name == "notify":
            log = {"level": "info", "logger": "raw", "data": "a log line from the raw server"}
            self.write({"jsonrpc": "2.0", "method": "notifications/message", "params": log})
            progress = {"progressToken": "t-1", "progress": 1, "total": 2}
            self.write({"jsonrpc": "2.0", "method": "notifications/progress", "params": progress})
            self.result(request_id, "notified")
        elif name == "ask_client":
            ask_id = f"ask-{request_id}"
            event = self.answers[ask_id] = threading.Event()
            sampling = {"messages": [], "maxTokens": 1}
            self.write(
                {
                    "jsonrpc": "2.0",
                    "id": ask_id,
                    "method": "sampling/createMessage",
                    "params": sampling,
                }
            )
            event.wait(10)
            self.result(request_id, self.replies.get(ask_id))
        elif name == "crash":
            sys.stderr.write("raw server: crashing on request\n")
            sys.stderr.flush()
            os._exit(int(args.get("code", 7)))
        elif name == "pid":
            self.result(request_id, os.getpid())
        elif name == "env":
            self.result(request_id, os.environ.get(str(args["name"])))
        elif name == "cwd":
            self.result(request_id, os.getcwd())
        else:
            self.result(request_id, None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["sdk", "raw"])
    parser.add_argument("--version", default="2025-06-18")
    parser.add_argument("--exit-unless")
    options = parser.parse_args()
    if options.mode == "sdk":
        sdk_main()
        return
    if options.exit_unless and not os.path.exists(options.exit_unless):
        sys.stderr.write(f"raw server: {options.exit_unless} is missing, giving up\n")
        sys.exit(3)
    sys.stderr.write(f"raw server {os.getpid()} ready\n")
    sys.stderr.flush()
    RawServer(options.version).serve()


if __name__ == "__main__":
    main()
