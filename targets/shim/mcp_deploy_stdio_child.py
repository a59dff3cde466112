"""One stdio MCP server process behind the stdio bridge (`mcp_deploy_stdio`): starting it and
its initialize handshake, writing to it, reading its stdout and matching replies to requests by
id, answering its server-to-client requests, logging its notifications and stderr, noticing its
exit (the requests in flight then fail) and stopping it. Which child serves a request, and when
a new one starts, is the bridge's business. Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_deploy_stdio_jsonrpc import (
    REQUEST_CANCELLED,
    REQUEST_TIMEOUT,
    SERVER_UNAVAILABLE,
    BridgeError,
    NotDelivered,
    as_bridge_id,
    cancellation,
    clip,
    encode,
    initialize_request,
    initialize_result,
    log,
    notification_text,
    refusal,
    same_id,
)

LINE_LIMIT = 64 * 1024 * 1024
"""Longest line read from the child (one JSON-RPC message)."""
STOP_GRACE = 2.0
"""Seconds the child gets after its stdin closes, and again after SIGTERM."""


def _exit_words(returncode: int | None) -> str:
    if returncode is None:
        return "closed its output"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _has_exited(pid: int) -> bool:
    """Whether child `pid` has exited, without reaping it (asyncio's watcher does that)."""
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return False
    try:
        return waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True
    except OSError:
        return False


@dataclass
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    client_id: Any


class Child:
    """One running stdio server: its pipes, the requests in flight and the tasks reading it."""

    def __init__(
        self, proc: asyncio.subprocess.Process, loop: asyncio.AbstractEventLoop, ids: Iterator[int]
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.loop = loop
        self.ids = ids
        self.pending: dict[int, _Pending] = {}
        self.dead = False
        self.returncode: int | None = None
        self.initialize_result: dict[str, Any] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader = self._spawn(self._read_stdout())
        self._spawn(self._copy_stderr())
        self._watcher = self._spawn(self._watch())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def stop_soon(self) -> None:
        """Stop the child in the background."""
        self.dead = True
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._spawn(self.stop())

    # --- state ---

    def alive(self) -> bool:
        if not self.dead and (self.proc.returncode is not None or _has_exited(self.pid)):
            self.dead = True
        return not self.dead

    def exit_words(self) -> str:
        return _exit_words(self.returncode)

    async def wait_gone(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until the exit is recorded and in-flight requests failed."""
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._watcher), timeout)

    # --- writing ---

    async def send(self, message: Mapping[str, Any]) -> None:
        stdin = self.proc.stdin
        if self.dead or stdin is None:
            raise NotDelivered
        try:
            stdin.write(encode(message))
            await stdin.drain()
        except (ConnectionError, OSError, RuntimeError) as error:
            self.dead = True
            raise NotDelivered from error
        if stdin.transport.is_closing():  # the write met a closed pipe (EPIPE): nobody read it
            self.dead = True
            raise NotDelivered

    def send_nowait(self, message: Mapping[str, Any]) -> None:
        """Write without waiting for the pipe to drain (best effort)."""
        stdin = self.proc.stdin
        if self.dead or stdin is None:
            return
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            stdin.write(encode(message))

    async def request(
        self, message: Mapping[str, Any], client_id: Any, timeout: float
    ) -> dict[str, Any]:
        """Send `message` under a new bridge id; the child's reply (with the bridge id)."""
        bridge_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self.pending[bridge_id] = _Pending(future, client_id)
        try:
            await self.send({**message, "id": bridge_id})
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.send_nowait(cancellation(bridge_id, "timed out in the stdio bridge"))
            log(f"request {bridge_id} ({message.get('method')}) timed out after {timeout:g} s")
            raise BridgeError(
                REQUEST_TIMEOUT,
                f"the MCP server did not answer within {timeout:g} s; the request was "
                "cancelled (the server keeps running)",
            ) from None
        except asyncio.CancelledError:
            if not future.done():
                self.send_nowait(cancellation(bridge_id, "the HTTP request was abandoned"))
            raise
        finally:
            self.pending.pop(bridge_id, None)

    def cancel(self, client_id: Any, params: Mapping[str, Any]) -> None:
        """Forward a client's cancellation of its request `client_id`, if unambiguous."""
        matches = [bid for bid, p in self.pending.items() if same_id(p.client_id, client_id)]
        if len(matches) != 1:
            log(
                f"cancellation of request {client_id!r} dropped: "
                f"{'no' if not matches else len(matches)} requests in flight carry that id"
            )
            return
        bridge_id = matches[0]
        forwarded = {**params, "requestId": bridge_id}
        self.send_nowait(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": forwarded}
        )
        pending = self.pending.pop(bridge_id)
        if not pending.future.done():
            pending.future.set_exception(
                BridgeError(REQUEST_CANCELLED, "the request was cancelled by the client")
            )

    # --- reading ---

    async def _read_stdout(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        while True:
            try:
                line = await stdout.readline()
            except ValueError:  # one line longer than LINE_LIMIT: framing is lost
                log(f"server {self.pid} wrote a line over {LINE_LIMIT} bytes; stopping it")
                break
            if not line:
                break
            self._on_line(line)
        # Its stdout is closed: the child is no use any more, even if it still runs.
        self.dead = True
        if self.proc.returncode is None:
            self.stop_soon()

    def _on_line(self, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").strip()
        if not text:
            return
        try:
            parsed = json.loads(text)
        except ValueError:
            log(f"server {self.pid} wrote a non-JSON line on stdout: {clip(text)}")
            return
        for message in parsed if isinstance(parsed, list) else [parsed]:
            if isinstance(message, dict):
                self._on_message(message)
            else:
                log(f"server {self.pid} wrote a non-JSON-RPC value: {clip(text)}")

    def _on_message(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        message_id = message.get("id")
        if isinstance(method, str):
            if message_id is None:
                log(f"server {self.pid} {notification_text(method, message.get('params'))}")
            else:
                self._answer_server_request(method, message_id)
            return
        if "result" in message or "error" in message:
            key = as_bridge_id(message_id)
            pending = self.pending.pop(key, None) if key is not None else None
            if pending is not None and not pending.future.done():
                pending.future.set_result(message)
            elif message_id is None:
                log(f"server {self.pid} reported an error: {clip(json.dumps(message))}")
            else:
                log(f"server {self.pid} answered request {message_id!r}, which no longer waits")
            return
        log(f"server {self.pid} wrote an unexpected message: {clip(json.dumps(message))}")

    def _answer_server_request(self, method: str, request_id: Any) -> None:
        if method == "ping":
            self.send_nowait({"jsonrpc": "2.0", "id": request_id, "result": {}})
            return
        log(f"server {self.pid} sent a {method} request; answered with an error (unsupported)")
        self.send_nowait(refusal(request_id, method))

    async def _copy_stderr(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        while True:
            try:
                line = await stderr.readline()
            except ValueError:  # an over-long line: its start was dropped, carry on
                continue
            if not line:
                return
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                sys.stderr.write(f"[mcp-server {self.pid}] {text}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    async def _watch(self) -> None:
        returncode = await self.proc.wait()
        self.dead = True
        # Replies written just before the exit are still in the pipe: let the reader take them.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), 1.0)
        self._signal_group(signal.SIGKILL)  # leftovers: grandchildren holding the pipes
        self.returncode = returncode
        in_flight = [p for p in self.pending.values() if not p.future.done()]
        log(
            f"server {self.pid} {_exit_words(returncode)}"
            + (f"; {len(in_flight)} requests in flight get an error" if in_flight else "")
        )
        for pending in in_flight:
            pending.future.set_exception(
                BridgeError(
                    SERVER_UNAVAILABLE,
                    f"the MCP server process {_exit_words(returncode)} before answering; the "
                    "next request starts a new one",
                    {"exitCode": returncode},
                )
            )
        self.pending.clear()

    # --- stopping ---

    def _signal_group(self, signum: int) -> None:
        """Signal the child's process group (it leads one: npx-style wrappers' children too)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Close stdin, then SIGTERM, then SIGKILL (the MCP stdio transport's shutdown)."""
        self.dead = True
        if self.proc.stdin is not None:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                self.proc.stdin.close()
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
                break
            except TimeoutError:
                self._signal_group(signum)
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signum)
        await self.wait_gone(grace)

    def abandon(self) -> None:
        """Kill the child without its event loop (which is not running any more)."""
        self.dead = True
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGKILL)


async def start_child(
    command: list[str],
    *,
    environment: Callable[[], Mapping[str, str]],
    cwd: str,
    ids: Iterator[int],
    timeout: float,
) -> Child:
    """Start `command` in `cwd` with `environment()` and initialize it within `timeout` s
    (its requests take ids from `ids`): the running child, or BridgeError."""
    loop = asyncio.get_running_loop()
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment(),
            cwd=cwd,
            limit=LINE_LIMIT,
            start_new_session=True,
        )
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        log(f"could not start {shlex.join(command)}: {reason}")
        raise BridgeError(
            SERVER_UNAVAILABLE,
            f"could not start the MCP server process ({Path(command[0]).name}): "
            f"{reason}; the next request tries again",
        ) from None
    child = Child(proc, loop, ids)
    log(f"started server {child.pid}: {shlex.join(command)} (cwd {cwd})")
    try:
        result = initialize_result(await child.request(initialize_request(), None, timeout))
        await child.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    except (NotDelivered, BridgeError) as error:
        if child.dead or isinstance(error, NotDelivered):
            await child.wait_gone(STOP_GRACE)
            raise BridgeError(
                SERVER_UNAVAILABLE,
                f"the MCP server process {child.exit_words()} during start-up, before "
                "answering initialize (its stderr is in the log); the next request tries "
                "again",
                {"exitCode": child.returncode},
            ) from None
        child.stop_soon()
        if error.code == REQUEST_TIMEOUT:
            raise BridgeError(
                SERVER_UNAVAILABLE,
                f"the MCP server did not answer initialize within {timeout:g} s",
            ) from None
        log(error.message)
        raise
    except BaseException:
        child.stop_soon()
        raise
    child.initialize_result = result
    info = result.get("serverInfo") or {}
    log(
        f"server {child.pid} initialized: {info.get('name', '?')} {info.get('version', '')}"
        f" (protocol {result['protocolVersion']})"
    )
    return child
