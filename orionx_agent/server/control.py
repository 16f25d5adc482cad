"""The GPU server's control channel, client side: what the host agent calls.

Each GPU server listens on a local unix socket (by default
``<state_dir>/gpu-server-<index>.control.sock``, mode 0600). A request is one
JSON line ``{"op": NAME, "args": {...}}``; the answer is one JSON line,
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": MESSAGE}``.
``hand_over`` also carries a file descriptor as SCM_RIGHTS ancillary data
on the request's bytes. ``docs/qos.md`` describes the channel.

Standard library (and the guest runtime's transport, itself standard
library only), so the agent imports it without the server's dependencies.
"""

import array
import json
import socket
import threading

from guest_runtime.endpoints import connect_unix

MAX_LINE_BYTES = 1 << 20
HAND_OVER_KINDS = ("unix", "tcp")


class ControlError(Exception):
    """The GPU server refused or failed a control request; the message is its own."""


class _StaleConnection(Exception):
    """A kept connection turned out closed before the request went out."""


def encode(message):
    return (json.dumps(message, separators=(",", ":"), sort_keys=True) + "\n").encode()


class ControlClient:
    """Calls on one GPU server's control socket. Thread-safe: requests on one
    client are sent one at a time over a connection opened on first use."""

    def __init__(self, path, timeout_s=5):
        self.path = path
        self.timeout_s = timeout_s
        self._sock = None
        self._pending = b""
        self._lock = threading.Lock()

    # -- the contract --------------------------------------------------------

    def resize(self, vgpu_id, compute_pct, memory_mb):
        """New compute_pct and memory_mb for every live session of ``vgpu_id``
        (and its later sessions on this server), at once."""
        return self.call("resize", vgpu_id=vgpu_id, compute_pct=compute_pct,
                         memory_mb=memory_mb)

    def preempt(self, allocation_id, by_allocation=None):
        """End every session of ``allocation_id``; their clients' next calls fail
        with CUDA_ERROR_MPS_CLIENT_TERMINATED naming ``by_allocation``."""
        return self.call("preempt", allocation_id=allocation_id, by_allocation=by_allocation)

    def revoke(self, allocation_id, below_generation, reason):
        """End the sessions of ``allocation_id`` whose token generation is
        below ``below_generation`` (within a second, even a client stalled
        mid-frame) and refuse such tokens at HELLO from now on."""
        return self.call("revoke", allocation_id=allocation_id,
                         below_generation=below_generation, reason=reason)

    def usage(self):
        """{"gpu": {...}, "sessions": [{...}, ...]}: memory, device time, evictions."""
        return self.call("usage")

    def set_memory_limits(self, physical_memory_mb=None, oversub_ratio=None):
        """Device memory the server may use and how far quotas may exceed it."""
        return self.call("set_memory_limits", physical_memory_mb=physical_memory_mb,
                         oversub_ratio=oversub_ratio)

    def set_priority(self, allocation_id, priority):
        """Eviction priority of an allocation's sessions (lower is evicted first)."""
        return self.call("set_priority", allocation_id=allocation_id, priority=priority)

    def hand_over(self, sock, kind, peer):
        """Give a connected guest socket to the GPU server, which serves it as
        if it had accepted it (HELLO and token checks included). ``kind`` says
        which transports to offer: 'unix' (shared memory too) or 'tcp'.
        A socket object is closed here once the server holds its own copy;
        a bare file descriptor is left to the caller."""
        if kind not in HAND_OVER_KINDS:
            raise ControlError("hand_over kind %r is not one of %s"
                               % (kind, ", ".join(HAND_OVER_KINDS)))
        fd = sock if isinstance(sock, int) else sock.fileno()
        result = self.call("hand_over", _fd=fd, kind=kind, peer=str(peer))
        if not isinstance(sock, int):
            sock.close()
        return result

    # -- transport -----------------------------------------------------------

    def call(self, op, _fd=None, **args):
        line = encode({"op": op, "args": args})
        with self._lock:
            try:
                try:
                    sock = self._send(line, _fd)
                except _StaleConnection:
                    # The server restarted since the last call; nothing of this
                    # request reached it, so sending it again is safe.
                    sock = self._send(line, _fd)
                reply = json.loads(self._read_line(sock))
            except (OSError, ValueError) as exc:
                self._close()
                raise ControlError("GPU server control socket %s: %s: check that "
                                   "orionx-gpu-server runs" % (self.path, exc)) from None
        if not reply.get("ok"):
            raise ControlError(reply.get("error") or "the GPU server gave no reason")
        return reply.get("result")

    def _send(self, line, fd):
        reused = self._sock is not None
        sock = self._connected()
        try:
            if fd is None:
                sock.sendall(line)
            else:
                ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
                sent = sock.sendmsg([line], ancillary)
                if sent < len(line):
                    sock.sendall(line[sent:])
        except (BrokenPipeError, ConnectionResetError):
            self._close()
            if reused:
                raise _StaleConnection() from None
            raise
        return sock

    def _connected(self):
        if self._sock is None:
            self._sock, self._pending = connect_unix(self.path, self.timeout_s), b""
        return self._sock

    def _read_line(self, sock):
        while b"\n" not in self._pending:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the GPU server closed the control connection")
            self._pending += chunk
            if len(self._pending) > MAX_LINE_BYTES:
                raise ControlError("control reply longer than %d bytes" % MAX_LINE_BYTES)
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def _close(self):
        if self._sock is not None:
            self._sock.close()
        self._sock, self._pending = None, b""

    def close(self):
        with self._lock:
            self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
