"""Where the host side listens, and the one accept loop every listener uses:
the GPU server's unix and TCP/TLS sockets and its control channel, the
agent's gateway (unix, TCP/TLS), admin socket and vsock port.

:func:`listen_unix`, :func:`listen_tcp` and :func:`listen_vsock` make the
listening socket; an :class:`AcceptLoop` accepts on it in one thread and
hands each connection to ``handle(conn, address)`` in a thread of its own;
``stop()`` closes the socket (and removes a unix socket's file), which ends
the loop. TLS is not the listener's business: the handler that needs it
wraps or ends it in the connection's own thread, so a slow handshake never
holds up the next accept. The threads of the connections are kept in a
:class:`ConnectionThreads`, which a server may share with connections that
reach it another way (a hand-over) and join when it stops.
"""

import contextlib
import os
import socket
import threading
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

DEFAULT_BACKLOG = 128


def listen_unix(path, mode=0o660, backlog=DEFAULT_BACKLOG):
    """A listening socket at ``path``, replacing a stale one of a crashed
    run. The socket file is created with ``mode`` through the umask, so
    there is no window in which it is more open than that."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    remove_socket_file(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o777 & ~mode)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    sock.listen(backlog)
    return sock


def listen_tcp(address, backlog=DEFAULT_BACKLOG):
    """A listening TCP socket on ``(host, port)``; port 0 picks a free one."""
    return socket.create_server(address, backlog=backlog)


def listen_vsock(port, backlog=DEFAULT_BACKLOG):
    """A listening vsock socket on ``port`` for every guest CID."""
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        sock.bind((socket.VMADDR_CID_ANY, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def remove_socket_file(path):
    """Delete the socket file at ``path`` if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class ConnectionThreads:
    """The threads serving connections, one each, so that a stopping server
    can wait for them."""

    def __init__(self):
        self._threads = []
        self._lock = threading.Lock()

    def start(self, target, args, name):
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def join(self, deadline_s):
        """Wait for every thread until the monotonic time ``deadline_s``."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline_s - time.monotonic()))


class AcceptLoop:
    """Accept on ``sock`` until stopped; each connection goes to
    ``handle(conn, address)`` in its own thread named ``name``. ``path``
    is the file of a unix socket, removed on stop."""

    def __init__(self, sock, handle, name, path=None, threads=None):
        self.sock = sock
        self.handle = handle
        self.name = name
        self.path = path
        self.threads = threads if threads is not None else ConnectionThreads()
        self._stopped = threading.Event()
        self._thread = None

    @property
    def address(self):
        """What the socket is bound to (a TCP listener's port is in it)."""
        return self.sock.getsockname()

    def start(self):
        self._thread = threading.Thread(target=self._run, name="%s-accept" % self.name,
                                        daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stopped.is_set():
            try:
                conn, address = self.sock.accept()
            except OSError:
                return  # the socket was closed by stop()
            if self._stopped.is_set():
                conn.close()
                return
            self.threads.start(self._serve, (conn, address), self.name)

    def _serve(self, conn, address):
        try:
            self.handle(conn, address)
        except Exception:  # one connection's failure must never end the listener
            LOG.exception("%s: serving a connection from %s failed", self.name,
                          address or "local")
            with contextlib.suppress(OSError):
                conn.close()

    def stop(self, timeout_s=1.0):
        """Stop accepting: close the socket, remove its file and wait up to
        ``timeout_s`` for the accept thread. Connections being served go on."""
        self._stopped.set()
        # On Linux a close alone does not wake a thread blocked in accept;
        # shutting a listening socket down does.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.path:
            remove_socket_file(self.path)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
