"""Which local process is at the other end of a loopback TCP connection.

The local Lambda's Runtime API (with the Extensions API) and its Secrets Manager stand-in
listen on 127.0.0.1, where every local process can connect; they must answer only the
processes of the execution environment the emulator started (its runtime, its extensions and
whatever they started). Runtime clients cannot send a secret header, so the check is on the
connection itself:

1. the kernel names the connecting socket: a `sock_diag` (NETLINK_SOCK_DIAG) exact lookup of
   the TCP socket whose local end is the peer's address and whose remote end is ours gives its
   inode (a hash lookup, tens of microseconds; reading /proc/net/tcp walks the whole
   established-connection table, ~10 ms here, and is only the fallback where sock_diag is
   not available);
2. the connection is admitted only when that inode is one of the open file descriptors
   (`/proc/<pid>/fd/* -> socket:[inode]`) of a process of the environment: the runtime
   process `pid`, or one of the pids `members()` names at that moment.

A process of another user cannot read those processes' descriptors, nor pass a socket into
them; a process of the same user outside the environment holds a socket whose inode is not
there.
Checked once per accepted connection (the runtime client keeps its connection alive), on the
network namespace of the calling thread, which is the runtime's: it is started without a
network namespace of its own. Linux only; any failure to tell refuses.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_REQUEST = struct.Struct("=BBBBI")  # struct inet_diag_req_v2, before its inet_diag_sockid
_MESSAGE_INODE = 16 + 4 + 48 + 16  # nlmsghdr, family..retrans, sockid, expires..uid


def _sockid(local: tuple[str, int], remote: tuple[str, int], family: int) -> bytes:
    """`struct inet_diag_sockid` of the socket bound to `local`, connected to `remote`."""
    source = socket.inet_pton(family, local[0]).ljust(16, b"\0")
    destination = socket.inet_pton(family, remote[0]).ljust(16, b"\0")
    ports = struct.pack("!HH", local[1], remote[1])
    return ports + source + destination + struct.pack("=III", 0, INET_DIAG_NOCOOKIE, 0xFFFFFFFF)


def socket_inode(local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The inode of the TCP socket, in this thread's network namespace, whose own address is
    `local` and whose peer is `remote`; None when the kernel knows no such socket."""
    family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
    request = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF)
    request += _sockid(local, remote, family)
    message = _HEADER.pack(_HEADER.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as diag:
            diag.settimeout(1.0)
            diag.sendto(message + request, (0, 0))
            answer = diag.recv(8192)
    except OSError:  # no sock_diag here (a seccomp filter, say): the slow way
        return _inode_from_proc(local, remote, family)
    if len(answer) < _HEADER.size:
        return None
    _length, kind, _flags, _seq, _pid = _HEADER.unpack_from(answer)
    if kind == NLMSG_ERROR or kind != SOCK_DIAG_BY_FAMILY or len(answer) < _MESSAGE_INODE + 4:
        return None  # typically -ENOENT: no such socket
    (inode,) = struct.unpack_from("=I", answer, _MESSAGE_INODE)
    return int(inode) or None


def _proc_address(address: tuple[str, int], family: int) -> str:
    """`address` as /proc/net/tcp{,6} print it: each 32-bit word in host order, hex."""
    packed = socket.inet_pton(family, address[0])
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{word:08X}" for word in words) + f":{address[1]:04X}"


def _inode_from_proc(local: tuple[str, int], remote: tuple[str, int], family: int) -> int | None:
    """`socket_inode` from /proc/net/tcp (or tcp6): walks every connection (~10 ms here)."""
    table = "tcp6" if family == socket.AF_INET6 else "tcp"
    wanted = (_proc_address(local, family), _proc_address(remote, family))
    try:
        rows = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
    except OSError:
        return None
    for row in rows:
        fields = row.split()
        if len(fields) > 9 and (fields[1], fields[2]) == wanted:
            return int(fields[9]) or None
    return None


def holds_socket(pid: int, inode: int) -> bool:
    """True when process `pid` has a file descriptor open on socket `inode`."""
    wanted = f"socket:[{inode}]"
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    # The connecting socket is usually one of the newest, i.e. highest, descriptors.
    for fd in sorted((int(name) for name in descriptors if name.isdigit()), reverse=True):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                return True
        except OSError as error:
            if error.errno != errno.ENOENT:  # closed meanwhile: look on
                return False
    return False


def descendants(roots: Iterable[int]) -> list[int]:
    """`roots` and every process descended from them, as /proc's `children` lists (of each
    thread) name them now; a root that is gone is left out."""
    found: list[int] = []
    seen: set[int] = set()
    pending = list(roots)
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        seen.add(pid)
        found.append(pid)
        for thread in threads:
            try:
                children = Path(f"/proc/{pid}/task/{thread}/children").read_text().split()
            except OSError:
                continue
            pending.extend(int(child) for child in children)
    return found


class RuntimePeer:
    """Admits connections from the processes of one execution environment.

    `members` (None while there is no environment) names the environment's pids each time it
    is called: the emulator sets it to `ExecutionEnvironment.members` (the runtime alone for
    a single-process environment; every program and what it started otherwise) when an
    environment starts and clears it when it has ended. `pid` (0: none) admits one more
    process. With neither, every connection is refused.
    """

    def __init__(self) -> None:
        self.pid = 0
        self.members: Callable[[], Iterable[int]] | None = None

    def admits(self, ours: tuple[str, int], theirs: tuple[str, int]) -> bool:
        """True when the connection accepted at `ours` from `theirs` (as `getsockname()` and
        `getpeername()` give them) was made by a socket of a process of the environment."""
        pid, members = self.pid, self.members
        candidates = [pid] if pid else []
        if members is not None:
            candidates.extend(members())
        if not candidates:
            return False
        inode = socket_inode((str(theirs[0]), int(theirs[1])), (str(ours[0]), int(ours[1])))
        return inode is not None and any(holds_socket(member, inode) for member in candidates)
