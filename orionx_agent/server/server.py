"""The GPU server: listeners, one thread per session, the session registry.

It takes everything as arguments (no global config) so tests and the
agent can run one in-process; ``orionx_agent.cmd.gpu_server`` builds one
from ``[gpu_server]``.
"""

import itertools
import os
import socket
import threading
import time

from oslo_log import log as logging

from guest_runtime import protocol
from guest_runtime.transport import SocketStream
from orionx_agent.server.scheduler import ComputeScheduler
from orionx_agent.server.session import Session, shutdown_socket

LOG = logging.getLogger(__name__)

SHM_RING_MIN_BYTES = 64 << 10
LISTEN_BACKLOG = 128


class GpuServer:
    def __init__(self, backend, session_secret, unix_socket_path=None, tcp_address=None,
                 tls_context=None, shm_enabled=True, shm_ring_bytes=8 << 20, scheduler=None):
        if not unix_socket_path and not tcp_address:
            raise ValueError("a GPU server needs a unix socket path or a TCP address")
        self.backend = backend
        self.session_secret = session_secret
        self.unix_socket_path = unix_socket_path
        self.tcp_address = tcp_address
        self.tls_context = tls_context
        self.shm_enabled = shm_enabled
        self.shm_ring_bytes = shm_ring_bytes
        self.scheduler = scheduler or ComputeScheduler()
        self._listeners = []
        self._threads = []
        self._session_threads = []
        self._sessions = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopped = threading.Event()
        self.tcp_port = None

    # -- endpoints -----------------------------------------------------------

    @property
    def endpoints(self):
        """Endpoint strings a client can use, fastest first."""
        found = []
        if self.unix_socket_path:
            found.append("unix:%s" % self.unix_socket_path)
        if self.tcp_address:
            kind = "tls" if self.tls_context else "tcp"
            found.append("%s:%s:%d" % (kind, self.tcp_address[0], self.tcp_port))
        return found

    def transports_for(self, stream):
        if stream.kind == "unix":
            return protocol.TRANSPORT_UNIX | (protocol.TRANSPORT_SHM if self.shm_enabled else 0)
        return protocol.TRANSPORT_TCP

    def shm_ring_size(self, requested_bytes):
        """Ring size for a client asking for ``requested_bytes`` (0: the default),
        page-aligned and never above the configured size."""
        size = min(requested_bytes or self.shm_ring_bytes, self.shm_ring_bytes)
        size = max(size, SHM_RING_MIN_BYTES)
        return (size + 4095) // 4096 * 4096

    # -- lifecycle -------------------------------------------------------------

    def start(self):
        if self.unix_socket_path:
            self._listen(self._unix_listener(), "unix")
        if self.tcp_address:
            sock = socket.create_server(self.tcp_address, backlog=LISTEN_BACKLOG)
            self.tcp_port = sock.getsockname()[1]
            self._listen(sock, "tls" if self.tls_context else "tcp")
        LOG.info("GPU server on %s (%s backend, %d MB) listening on %s",
                 self.backend.device_name, self.backend.name,
                 self.backend.total_memory_bytes >> 20, ", ".join(self.endpoints))
        return self

    def _unix_listener(self):
        try:
            os.unlink(self.unix_socket_path)  # a stale socket of a previous run
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.unix_socket_path)
        os.chmod(self.unix_socket_path, 0o660)
        sock.listen(LISTEN_BACKLOG)
        return sock

    def _listen(self, sock, kind):
        self._listeners.append(sock)
        thread = threading.Thread(target=self._accept_loop, args=(sock, kind),
                                  name="orionx-accept-%s" % kind, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self, listener, kind):
        while not self._stopped.is_set():
            try:
                conn, address = listener.accept()
            except OSError:
                return  # the listener was closed by stop()
            peer = "%s:%s" % (kind, address or "local")
            thread = threading.Thread(target=self._serve, args=(conn, kind, peer),
                                      name="orionx-session", daemon=True)
            with self._lock:
                self._session_threads = [t for t in self._session_threads if t.is_alive()]
                self._session_threads.append(thread)
            thread.start()

    def _serve(self, conn, kind, peer):
        try:
            if kind != "unix":
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if kind == "tls":
                conn.settimeout(10.0)
                conn = self.tls_context.wrap_socket(conn, server_side=True)
        except OSError as exc:
            LOG.warning("Dropping connection from %s: %s", peer, exc)
            conn.close()
            return
        Session(self, SocketStream(conn, kind=kind), peer).run()

    def stop(self, timeout_s=10.0):
        """Stop listening and end every session (their memory is freed);
        wait up to ``timeout_s`` for their threads to finish."""
        self._stopped.set()
        for sock in self._listeners:
            try:
                sock.close()
            except OSError:
                pass
        if self.unix_socket_path:
            try:
                os.unlink(self.unix_socket_path)
            except FileNotFoundError:
                pass
        for session in self.sessions():
            stream_sock = getattr(session.stream, "sock", None) or getattr(
                session.stream, "peer_sock", None)
            if stream_sock is not None:
                shutdown_socket(stream_sock)
        deadline = time.monotonic() + timeout_s
        with self._lock:
            threads = list(self._session_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def wait(self):
        self._stopped.wait()

    # -- session registry ------------------------------------------------------

    def register_session(self, session):
        with self._lock:
            session_id = next(self._ids)
            self._sessions[session_id] = session
            return session_id

    def forget_session(self, session):
        with self._lock:
            self._sessions.pop(session.id, None)

    def sessions(self):
        with self._lock:
            return list(self._sessions.values())
