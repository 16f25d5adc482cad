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

An idle connection need not hold a thread: with a :class:`ReadableWaiter`
the accept loop parks each new connection on one selector thread until its
first bytes arrive (or a deadline passes), and a GPU server parks a
session there between frames. Thread counts then follow the connections
that are doing something, not the ones that are open.
"""

import collections
import contextlib
import errno
import os
import selectors
import socket
import threading
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

DEFAULT_BACKLOG = 128
_ACCEPT_RETRY_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM,
                        errno.ECONNABORTED)
_ACCEPT_RETRY_S = 0.1


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
            # Started under the lock: join() never meets a thread not yet
            # started (threads start from the idle waiter while a server stops).
            self._threads = [t for t in self._threads if t.is_alive()]
            thread.start()
            self._threads.append(thread)

    def join(self, deadline_s):
        """Wait for every thread until the monotonic time ``deadline_s``."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline_s - time.monotonic()))


class ReadableWaiter:
    """One thread that waits, with a selector, for many sockets to become
    readable. ``wait(sock, on_readable, on_timeout, timeout_s)`` calls
    ``on_readable(sock)`` once bytes (or the peer's close) arrive, or
    ``on_timeout(sock)`` if none do within ``timeout_s`` (None: no
    deadline), in the waiter's thread: callbacks must be quick (start a
    thread, close a socket)."""

    def __init__(self, name):
        self.name = name
        self._selector = selectors.DefaultSelector()
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._wakeup_r.setblocking(False)
        self._selector.register(self._wakeup_r, selectors.EVENT_READ, None)
        self._incoming = collections.deque()
        self._deadlines = {}   # fd -> (monotonic deadline, sock, on_timeout)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __len__(self):
        return len(self._selector.get_map()) - 1

    def wait(self, sock, on_readable, on_timeout=None, timeout_s=None):
        deadline = time.monotonic() + timeout_s if timeout_s is not None else None
        self._incoming.append((sock, on_readable, on_timeout, deadline))
        self._wake()

    def _wake(self):
        with contextlib.suppress(OSError):
            self._wakeup_w.send(b"\0")

    def _run(self):
        while not self._stopped.is_set():
            for key, _events in self._selector.select(self._next_timeout_s()):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wakeup_r.recv(4096)
                    continue
                self._forget(key.fileobj)
                self._call(key.data, key.fileobj)
            self._take_incoming()
            self._expire()

    def _take_incoming(self):
        while self._incoming:
            sock, on_readable, on_timeout, deadline = self._incoming.popleft()
            try:
                self._selector.register(sock, selectors.EVENT_READ, on_readable)
            except (ValueError, OSError, KeyError):  # closed meanwhile, or a bug
                self._call(on_timeout, sock)
                continue
            if deadline is not None:
                self._deadlines[sock.fileno()] = (deadline, sock, on_timeout)

    def _next_timeout_s(self):
        if self._incoming:
            return 0
        if not self._deadlines:
            return None
        return max(0.0, min(d for d, _s, _c in self._deadlines.values()) - time.monotonic())

    def _expire(self):
        now = time.monotonic()
        for deadline, sock, on_timeout in list(self._deadlines.values()):
            if deadline <= now:
                self._forget(sock)
                self._call(on_timeout, sock)

    def _forget(self, sock):
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._deadlines.pop(sock.fileno(), None)
            self._selector.unregister(sock)

    def _call(self, callback, sock):
        try:
            if callback is not None:
                callback(sock)
            else:
                sock.close()
        except Exception:  # one connection's failure must never end the waiter
            LOG.exception("%s: handling a connection failed", self.name)

    def stop(self):
        self._stopped.set()
        self._wake()
        self._thread.join(1.0)


class AcceptLoop:
    """Accept on ``sock`` until stopped; each connection goes to
    ``handle(conn, address)`` in its own thread named ``name``. ``path``
    is the file of a unix socket, removed on stop.

    With ``waiter`` (a ReadableWaiter) a new connection gets its thread
    only once its first bytes arrive; one that sends nothing within
    ``first_bytes_timeout_s`` is closed. ``admit(conn, address)``, when
    given, is asked first: it returns None to go on, or a callable that
    answers a connection over a limit (in its own thread, once readable);
    ``dropped(conn, address)`` is told of a connection the loop closed
    itself (silent too long)."""

    def __init__(self, sock, handle, name, path=None, threads=None, waiter=None,
                 first_bytes_timeout_s=None, admit=None, dropped=None):
        self.sock = sock
        self.handle = handle
        self.name = name
        self.path = path
        self.threads = threads if threads is not None else ConnectionThreads()
        self.waiter = waiter
        self.first_bytes_timeout_s = first_bytes_timeout_s
        self.admit = admit
        self.dropped = dropped
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
            except OSError as exc:
                if self._stopped.is_set() or exc.errno not in _ACCEPT_RETRY_ERRNOS:
                    return  # the socket was closed by stop()
                # Out of descriptors or buffers: the listener must outlive it.
                LOG.warning("%s: cannot accept now (%s); retrying", self.name, exc)
                time.sleep(_ACCEPT_RETRY_S)
                continue
            if self._stopped.is_set():
                conn.close()
                return
            self._dispatch(conn, address)

    def _dispatch(self, conn, address):
        handle = self.handle
        refuse = self.admit(conn, address) if self.admit is not None else None
        if refuse is not None:
            handle = refuse
        if self.waiter is None:
            self.threads.start(self._serve, (conn, address, handle), self.name)
            return
        self.waiter.wait(
            conn, lambda c: self.threads.start(self._serve, (c, address, handle), self.name),
            lambda c: self._silent(c, address), self.first_bytes_timeout_s)

    def _silent(self, conn, address):
        LOG.info("%s: closing a connection from %s that sent nothing within %s s",
                 self.name, address or "local", self.first_bytes_timeout_s)
        with contextlib.suppress(OSError):
            conn.close()
        if self.dropped is not None:
            self.dropped(conn, address)

    def _serve(self, conn, address, handle=None):
        try:
            (handle or self.handle)(conn, address)
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
