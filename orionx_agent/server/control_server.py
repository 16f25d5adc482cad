"""The GPU server's control channel, server side: a local unix socket on
which the host agent resizes vGPUs, preempts and revokes allocations, reads
usage and hands over guest connections. The format is in ``control`` (client side).

Only the agent (same user) may connect: the socket is created mode 0600.
Each connection gets a thread; requests on it are answered in order.
"""

import array
import json
import os
import socket

from oslo_log import log as logging

from orionx_agent import listeners
from orionx_agent.server.control import MAX_LINE_BYTES, ControlError, encode

LOG = logging.getLogger(__name__)

_FDS_PER_MESSAGE_MAX = 4


class ControlListener:
    def __init__(self, server, path):
        self.server = server
        self.path = path
        self._listener = None
        self._handlers = {
            "resize": server.resize_vgpu,
            "preempt": server.preempt_allocation,
            "revoke": server.revoke_allocation,
            "usage": server.usage,
            "set_memory_limits": server.set_memory_limits,
            "set_priority": server.set_priority,
            "hand_over": server.hand_over,
        }

    def start(self):
        # Only the agent (the same user) may steer the GPU server.
        sock = listeners.listen_unix(self.path, mode=0o600, backlog=16)
        self._listener = listeners.AcceptLoop(sock, self._serve, "orionx-control",
                                              path=self.path).start()
        LOG.info("Control channel on %s", self.path)

    def stop(self):
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def _serve(self, conn, _address):
        reader = _LineReader(conn)
        try:
            while True:
                line, fds = reader.next_line()
                if line is None:
                    return
                conn.sendall(encode(self._answer(line, fds)))
                reader.close_unclaimed()
        except OSError as exc:
            LOG.debug("Control connection ended: %s", exc)
        finally:
            reader.close_unclaimed()
            conn.close()

    def _answer(self, line, fds):
        try:
            request = json.loads(line)
            op, args = request["op"], dict(request.get("args") or {})
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "error": "control request is not {\"op\", \"args\"} JSON: %s"
                    % exc}
        handler = self._handlers.get(op)
        if handler is None:
            return {"ok": False, "error": "unknown control op %r; there are %s"
                    % (op, ", ".join(sorted(self._handlers)))}
        if op == "hand_over":
            if not fds:
                return {"ok": False, "error": "hand_over carried no file descriptor: send "
                        "the guest socket as SCM_RIGHTS with the request"}
            args["fd"] = fds.pop(0)
        try:
            return {"ok": True, "result": handler(**args)}
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        except TypeError as exc:
            return {"ok": False, "error": "control op %s: bad arguments: %s" % (op, exc)}
        except Exception as exc:  # a bug answers this request, never kills the channel
            LOG.exception("Control op %s failed", op)
            return {"ok": False, "error": "control op %s failed in the GPU server: %s"
                    % (op, exc)}


class _LineReader:
    """JSON lines off a unix socket, with the descriptors that came with them."""

    def __init__(self, conn):
        self._conn = conn
        self._data = b""
        self._fds = []

    def next_line(self):
        """(line, fds received so far) or (None, []) at the end."""
        while b"\n" not in self._data:
            if len(self._data) > MAX_LINE_BYTES:
                raise OSError("control request longer than %d bytes" % MAX_LINE_BYTES)
            space = socket.CMSG_SPACE(_FDS_PER_MESSAGE_MAX * array.array("i").itemsize)
            chunk, ancillary, _flags, _addr = self._conn.recvmsg(65536, space)
            self._take_fds(ancillary)
            if not chunk:
                return None, []
            self._data += chunk
        line, _, self._data = self._data.partition(b"\n")
        return line, self._fds

    def _take_fds(self, ancillary):
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
                self._fds.extend(fds)

    def close_unclaimed(self):
        """Descriptors nobody asked for must not leak into the server."""
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
