"""orionx-run's acquire broker: acquire mode for programs on the C library.

``libcuda.so.1`` speaks only the data plane; it has no HTTP client to bind an
allocation with. ``orionx-run`` does that for it. It listens on a unix
stream socket in a private directory (mode 0700, so only this user reaches
it), names the socket in the program's ``ORIONX_ACQUIRE_SOCKET``, and
answers one request per line, for as many processes as connect:

    count\\n  ->  ok N\\n                     the allocation's vGPUs, no binding
    bind\\n   ->  ok N\\n then N lines          binding first (waiting in the queue)
                 ENDPOINTS TOKEN VGPU_INDEX\\n
    any failure  ->  error CODE MESSAGE\\n      CODE a CUresult number

ENDPOINTS is comma-separated as in ``ORIONX_ENDPOINT``, in the controller's
order (a direct remote endpoint before the local relay it falls back to);
TOKEN is that vGPU's session token and VGPU_INDEX the vGPU's index within
it; one line per vGPU in device order. The allocation is bound once per
``orionx-run``: a later ``bind`` (another process, or one whose session was
lost) reuses the binding (binding again if the pool took it back) and gets
fresh tokens. The owner releases the allocation when the program ends.
"""

import os
import re
import shutil
import socketserver
import sys
import tempfile
import threading

from guest_runtime.acquire import AcquiredAllocation
from guest_runtime.curesult import CudaError, CUresult

SOCKET_NAME = "acquire.sock"
# Each broker's directory: the prefix, its orionx-run's PID, a random part.
DIRECTORY_PREFIX = "orionx-run-"
_DIRECTORY_NAME = re.compile(re.escape(DIRECTORY_PREFIX) + r"(\d+)-[A-Za-z0-9_]+")
MAX_REQUEST_BYTES = 256
# sockaddr_un's sun_path, less its terminating NUL.
MAX_SOCKET_PATH_BYTES = 107


class AcquireBroker:
    """Serves ``count`` and ``bind`` for one allocation while a program runs."""

    def __init__(self, api, uuid, host=None, out=None):
        self.allocation = AcquiredAllocation(None, uuid, host, out=out or sys.stderr, api=api)
        self._lock = threading.Lock()
        self._sessions_given = 0
        self._directory = None
        self._server = None
        self._thread = None
        self.path = None

    @property
    def bound(self):
        """Whether this broker bound the allocation (then its owner releases it)."""
        return self.allocation.bound_here

    def start(self, parent=None):
        """Listen and serve in a thread; returns the socket's path. The
        socket's directory is made in ``parent`` (default: the temporary
        directory), where those of brokers killed before they could clean
        up are removed first."""
        parent = parent or tempfile.gettempdir()
        remove_stale_directories(parent)
        # Mode 0700: only this user reaches the socket.
        self._directory = tempfile.mkdtemp(prefix="%s%d-" % (DIRECTORY_PREFIX, os.getpid()),
                                           dir=parent)
        self.path = os.path.join(self._directory, SOCKET_NAME)
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH_BYTES:
            shutil.rmtree(self._directory, ignore_errors=True)
            raise OSError("the acquire socket's path %s is longer than a unix socket "
                          "allows (%d bytes): set TMPDIR to a shorter directory"
                          % (self.path, MAX_SOCKET_PATH_BYTES))
        self._server = _Server(self.path, self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="orionx-acquire-broker", daemon=True)
        self._thread.start()
        return self.path

    def close(self):
        """Stop serving, end any wait in the queue, remove the socket. Once
        it returns no bind is in progress and none will follow."""
        self.allocation.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def answer(self, request):
        """The reply (text, newline-terminated) to one request line."""
        try:
            if request == "count":
                return "ok %d\n" % self.allocation.vgpu_count()
            if request == "bind":
                lines = self._session_lines()
                return "ok %d\n%s" % (len(lines), "".join(lines))
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "unknown request %r: the acquire broker answers count and bind"
                            % request[:40])
        except CudaError as exc:
            return "error %d %s\n" % (int(exc.code), " ".join(exc.message.split()))

    def _session_lines(self):
        with self._lock:
            if self._sessions_given:
                # Tokens of an earlier bind may belong to a lost session, or
                # the pool may have unbound the allocation since: bind again
                # (nothing changes while it is bound) and take fresh ones.
                self.allocation.forget_session()
            vgpus = self.allocation.session()
            self._sessions_given += 1
        lines = []
        for ordinal, vgpu in enumerate(vgpus):
            if not vgpu["endpoints"]:
                raise CudaError(CUresult.CUDA_ERROR_NO_DEVICE,
                                "vGPU %d of allocation %s has no endpoint this host reaches: "
                                "check that orionx-agent runs on this host and on the GPU's"
                                % (ordinal, self.allocation.uuid))
            # Each controller token names one vGPU; should one name several,
            # a vGPU's index is its place among the vGPUs sharing its token.
            index = sum(1 for earlier in vgpus[:ordinal] if earlier["token"] == vgpu["token"])
            lines.append("%s %s %d\n" % (",".join(vgpu["endpoints"]), vgpu["token"], index))
        return lines


def remove_stale_directories(parent):
    """Remove this user's broker directories in ``parent`` whose orionx-run
    is gone (killed with -9, it could not remove its own)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        match = _DIRECTORY_NAME.fullmatch(name)
        path = os.path.join(parent, name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process has that number now
    return True


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        broker = self.server.broker
        while True:
            line = self.rfile.readline(MAX_REQUEST_BYTES)
            if not line:
                return
            if not line.endswith(b"\n"):
                self.wfile.write(b"error 1 request longer than %d bytes: the acquire broker "
                                 b"answers count and bind\n" % MAX_REQUEST_BYTES)
                return
            reply = broker.answer(line.decode("ascii", "replace").strip())
            try:
                self.wfile.write(reply.encode())
                self.wfile.flush()
            except OSError:
                return  # the program went away while waiting for its answer


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path, broker):
        self.broker = broker
        super().__init__(path, _Handler)
        os.chmod(path, 0o600)

    def handle_error(self, request, client_address):
        # A client that misbehaves is its own problem, not a traceback here.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (OSError, UnicodeError)):
            super().handle_error(request, client_address)

