"""The agent's local admin socket: where ``orionx vgpu attach`` and
``detach``, run on this host, reach the agent.

One JSON object per line each way: a request ``{"op": NAME, ...arguments}``,
an answer ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": TEXT}``.
The socket is mode 0600: only root (the owner of the agent and of libvirt)
may change which domains hold vGPUs.
"""

import json

from oslo_log import log as logging

from orionx_agent import listeners

LOG = logging.getLogger(__name__)

REQUEST_MAX_BYTES = 64 << 10
CLIENT_TIMEOUT_S = 120


class AdminSocket:
    """``handlers`` maps an op name to a callable taking the request's other
    fields as keyword arguments; ``refusals`` are the exceptions whose
    message is the answer (others are logged and answered generically)."""

    def __init__(self, path, handlers, refusals=()):
        self.path = path
        self.handlers = handlers
        self.refusals = tuple(refusals)
        self._listener = None

    def start(self):
        sock = listeners.listen_unix(self.path, mode=0o600, backlog=8)
        self._listener = listeners.AcceptLoop(sock, self._serve, "orionx-admin",
                                              path=self.path).start()
        LOG.info("Admin socket for orionx vgpu attach at %s", self.path)
        return self

    def _serve(self, conn, _address):
        with conn:
            conn.settimeout(CLIENT_TIMEOUT_S)
            try:
                line = conn.makefile("rb").readline(REQUEST_MAX_BYTES)
                answer = self.answer(line)
                conn.sendall(json.dumps(answer).encode("utf-8") + b"\n")
            except OSError as exc:
                LOG.debug("Admin client went away: %s", exc)

    def answer(self, line):
        try:
            request = json.loads(line)
            op = request.pop("op")
            handler = self.handlers[op]
        except (ValueError, KeyError, TypeError, AttributeError):
            return {"ok": False, "error": "not a request this agent knows: send one JSON "
                    "object with op one of %s" % ", ".join(sorted(self.handlers))}
        try:
            return {"ok": True, "result": handler(**request)}
        except self.refusals as exc:
            return {"ok": False, "error": str(exc)}
        except TypeError as exc:
            return {"ok": False, "error": "bad arguments for %s: %s" % (op, exc)}
        except Exception:
            LOG.exception("Admin request %s failed", op)
            return {"ok": False, "error": "the agent failed to do %s; see its log" % op}

    def stop(self):
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
