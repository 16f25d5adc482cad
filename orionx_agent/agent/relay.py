"""Copy bytes both ways between a guest's connection and a remote host's
agent, for guests whose vGPU is on another host, or between a guest's TLS
connection and the GPU server it reaches on this host.

The relay does not parse frames: it moves whatever arrives. Every relay of
a gateway is driven by one :class:`RelayLoop`, a single thread waiting on
all their sockets with epoll (non-blocking sockets throughout), so a
relayed connection holds no thread, idle or busy, and an idle one no
descriptor but its two sockets. A peer that stops reading stalls only its
own relay: the loop stops reading the other side (its bytes wait in the
kernel's buffers, which pushes back on the sender) and serves every other
relay meanwhile.

Between plain sockets the bytes move with splice(2) through a pipe and
never enter this process: a small call's frame costs one wake-up and two
splices per hop. TLS connections (``tls_connection.TlsConnection``, whose
bytes are decrypted here) and sockets the kernel cannot splice move
through a buffer. When either side closes or fails, both sockets are shut
down so the other side sees the end at once: a guest whose remote GPU
server died gets its error instead of a hang.
"""

import collections
import contextlib
import errno
import fcntl
import os
import select
import socket
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

RELAY_BUFFER_BYTES = 1 << 20
# How many reads one direction may make in one turn before the loop serves
# the others: a fast sender must not starve a small call elsewhere. A TLS
# connection is read until it would block or this many times (the poller
# does not see bytes it decrypted already: it is pumped again next turn).
_READS_PER_TURN = 16
# At most this much goes through the shared pipe at once: what a pipe holds
# by default, so that even a sink that takes nothing leaves little to spill.
SHARED_PIPE_FILL_BYTES = 64 * 1024
_SPLICE_FLAGS = getattr(os, "SPLICE_F_NONBLOCK", 0) | getattr(os, "SPLICE_F_MOVE", 0)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_WOULD_BLOCK = (BlockingIOError, InterruptedError)
# What makes a side's reading direction move: bytes, the peer's end, an error.
_READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Ended(Exception):
    """A direction saw its source's end: the relay ends."""


class _Side:
    """One end of a relay, non-blocking: a plain socket, or a TLS
    connection (its ``relay_*`` methods). ``reading`` is the direction
    whose source it is, ``writing`` the one whose sink it is."""

    def __init__(self, sock):
        self.sock = sock
        self.tls = not isinstance(sock, socket.socket)
        self.raw = sock.sock if self.tls else sock
        self.raw.setblocking(False)
        self.fd = self.raw.fileno()
        self.events = 0  # what the loop waits for on it (0: not registered)
        self.reading = self.writing = None
        if self.raw.family != socket.AF_UNIX:
            # Frames are small and answered one by one: never wait to
            # coalesce them.
            with contextlib.suppress(OSError):
                self.raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def flush(self):
        """True once nothing of this side's own waits to be sent (a TLS
        connection's records)."""
        return self.sock.relay_flush() if self.tls else True

    def interest(self):
        """The events the loop should wait for on this side."""
        events = 0 if self.reading.wants_write else select.EPOLLIN
        if self.writing.wants_write or (self.tls and self.sock.relay_has_output()):
            events |= select.EPOLLOUT
        return events


class _Direction:
    """Bytes from ``source`` to ``sink``. Between plain sockets they move
    with splice(2) through the loop's one shared pipe, which each turn
    leaves empty: an idle relay holds no pipe. Once the sink falls behind
    (it took less than arrived), what it did not take is read out of the
    shared pipe and the direction gets a pipe of its own, kept until the
    relay ends. TLS connections move through a buffer."""

    def __init__(self, source, sink, counter, shared_pipe):
        self.source = source
        self.sink = sink
        self.counter = counter
        self.splices = hasattr(os, "splice") and not source.tls and not sink.tls
        self.shared_pipe = shared_pipe
        self.pipe = None          # its own, once the sink fell behind
        self.pending = 0          # bytes read, not yet written to the sink
        self.in_pipe = False      # ... and they wait in its pipe (else in buffer)
        self.wants_write = False  # waits for room in the sink
        self.buffer = None
        self.start = 0            # of the pending bytes in the buffer
        source.reading = sink.writing = self

    def close(self):
        if self.pipe is not None:
            for fd in self.pipe:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.pipe = None

    def pump(self):
        """Move what can move now. True when bytes may be left where the
        selector cannot see them (decrypted, inside a TLS connection):
        the loop pumps it again next turn."""
        if self.splices and self.pipe is None and not self.pending:
            return self._splice_through_shared_pipe()
        self.wants_write = False
        # A TLS source must be read until it would block (see above); a
        # plain one here is a bulk flow: moving on while it flows saves
        # the poller a turn per pipeful.
        for _ in range(_READS_PER_TURN):
            if not (self._drain() and self.sink.flush()):
                self.wants_write = True
                return False
            try:
                if not self._fill():
                    self.sink.flush()  # best effort: what came before the end
                    raise _Ended("closed by the peer")
            except _WOULD_BLOCK:
                return False
            if not (self._drain() and self.sink.flush()):
                self.wants_write = True
                return False
            if self.source.tls and not self.source.sock.relay_buffered():
                return False  # the rest, if any, is in the socket: the poller sees it
        return self.source.tls

    def _splice_through_shared_pipe(self):
        """The common case, kept short: what the socket holds (a small
        call's frame), into the shared pipe and on to the sink."""
        read_fd, write_fd = self.shared_pipe
        try:
            count = os.splice(self.source.fd, write_fd, SHARED_PIPE_FILL_BYTES,
                              flags=_SPLICE_FLAGS)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.splices = False  # this kind of socket cannot be spliced: copy
            return self.pump()
        if not count:
            raise _Ended("closed by the peer")
        try:
            written = os.splice(read_fd, self.sink.fd, count, flags=_SPLICE_FLAGS)
        except _WOULD_BLOCK:
            written = 0
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                # The sink failed: its bytes must not stay in the shared
                # pipe, where the next relay's sink would get them.
                _read_exactly(read_fd, count)
                raise
            written = 0
            self.splices = False
        self.counter[0] += written
        if written < count:
            self._spill(read_fd, count - written)
            if self.splices:
                self.pipe = _nonblocking_pipe()
            if not self._drain():
                self.wants_write = True
        return False

    def _spill(self, read_fd, count):
        """Take ``count`` bytes out of the shared pipe into the buffer."""
        spilled = _read_exactly(read_fd, count)
        self.buffer, self.start, self.pending, self.in_pipe = memoryview(spilled), 0, count, False

    def _fill(self):
        if self.splices:
            self.pending = os.splice(self.source.fd, self.pipe[1], RELAY_BUFFER_BYTES,
                                     flags=_SPLICE_FLAGS)
            self.in_pipe = True
            return self.pending
        if self.buffer is None or len(self.buffer) < RELAY_BUFFER_BYTES:
            self.buffer = memoryview(bytearray(RELAY_BUFFER_BYTES))
        if self.source.tls:
            self.pending = self.source.sock.relay_recv_into(self.buffer)
        else:
            self.pending = self.source.raw.recv_into(self.buffer)
        self.start, self.in_pipe = 0, False
        return self.pending

    def _drain(self):
        """Write the pending bytes; False when the sink takes no more now."""
        while self.pending:
            try:
                if self.in_pipe:
                    written = os.splice(self.pipe[0], self.sink.fd, self.pending,
                                        flags=_SPLICE_FLAGS)
                else:
                    chunk = self.buffer[self.start:self.start + self.pending]
                    if self.sink.tls:
                        written = self.sink.sock.relay_send(chunk)
                    else:
                        written = self.sink.raw.send(chunk)
                    self.start += written
            except _WOULD_BLOCK:
                return False
            self.pending -= written
            self.counter[0] += written
        return True


def _read_exactly(fd, count):
    """``count`` bytes that wait in the pipe ``fd``."""
    got = bytearray()
    while len(got) < count:
        got += os.read(fd, count - len(got))
    return got


def _nonblocking_pipe():
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    # A larger pipe moves a bulk copy in fewer turns; the kernel may refuse
    # (a per-user limit on pipe memory), which only costs speed.
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, RELAY_BUFFER_BYTES)
    return read_fd, write_fd


class Relay:
    """Relays ``guest`` <-> ``remote`` until either side closes; driven by
    ``loop`` (a RelayLoop). ``on_close(relay)`` runs once, in the loop's
    thread, when it ends."""

    def __init__(self, guest, remote, label, loop, on_close=None):
        self.guest = guest
        self.remote = remote
        self.label = label
        self.loop = loop
        self.on_close = on_close
        self.bytes_up = [0]
        self.bytes_down = [0]
        self._closed = threading.Event()
        self.sides = ()
        self.directions = ()

    def start(self):
        guest, remote = _Side(self.guest), _Side(self.remote)
        self.sides = (guest, remote)
        self.directions = (_Direction(guest, remote, self.bytes_up, self.loop.shared_pipe),
                           _Direction(remote, guest, self.bytes_down, self.loop.shared_pipe))
        self.loop.add(self)
        return self

    def wait(self, timeout_s=None):
        """True once the relay ended (within ``timeout_s``)."""
        return self._closed.wait(timeout_s)

    def stop(self):
        """End the relay (from any thread): both sides see the end."""
        _shutdown(self.guest)
        _shutdown(self.remote)

    @property
    def alive(self):
        return not self._closed.is_set()

    def _close(self):
        """In the loop's thread, once."""
        for direction in self.directions:
            direction.close()
        for sock in (self.guest, self.remote):
            _shutdown(sock)
            with contextlib.suppress(OSError):
                sock.close()
        self._closed.set()
        LOG.info("Relay %s closed: %d bytes up, %d bytes down", self.label,
                 self.bytes_up[0], self.bytes_down[0])
        if self.on_close is not None:
            try:
                self.on_close(self)
            except Exception:  # the loop serves every relay: it must go on
                LOG.exception("Relay %s: its close callback failed", self.label)


class RelayLoop:
    """The one thread that drives every relay of a gateway, with epoll:
    a small call relayed costs one wake-up and two splices each way."""

    def __init__(self, name="orionx-relay"):
        self.name = name
        self._epoll = select.epoll()
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._wakeup_r.setblocking(False)
        self._wakeup_w.setblocking(False)
        self._epoll.register(self._wakeup_r.fileno(), select.EPOLLIN)
        # Every direction splices through this one, which it leaves empty.
        self.shared_pipe = _nonblocking_pipe() if hasattr(os, "splice") else None
        self._incoming = collections.deque()
        self._by_fd = {}       # fd -> (relay, side)
        self._relays = set()
        self._again = []       # (relay, direction) to pump next turn unasked
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __len__(self):
        """How many relays it drives now."""
        return len(self._relays)

    def add(self, relay):
        self._incoming.append(relay)
        self._wake()

    def _wake(self):
        with contextlib.suppress(OSError):
            self._wakeup_w.send(b"\0")

    def stop(self, timeout_s=1.0):
        """End every relay (both sides see the end) and the thread."""
        self._stopped = True
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self):
        try:
            while not self._stopped:
                self._turn()
        except Exception:  # a bug here would strand every relay: say so
            LOG.exception("%s stopped", self.name)
        finally:
            for relay in list(self._relays):
                self._end(relay, "the gateway stopped")
            self._epoll.close()
            self._wakeup_r.close()
            self._wakeup_w.close()
            for fd in self.shared_pipe or ():
                os.close(fd)

    def _turn(self):
        by_fd = self._by_fd
        for fd, events in self._epoll.poll(0 if self._again else -1):
            found = by_fd.get(fd)
            if found is None:
                with contextlib.suppress(OSError):
                    self._wakeup_r.recv(4096)
                continue
            relay, side = found
            if relay.alive:
                self._serve(relay, side, events)
        if self._again:
            again, self._again = self._again, []
            for relay, direction in again:
                if relay.alive:
                    self._pump(relay, direction)
        while self._incoming:
            relay = self._incoming.popleft()
            self._relays.add(relay)
            # Pumped at once: bytes may wait already, in the kernel or
            # inside a TLS connection (read with HELLO).
            for direction in relay.directions:
                if relay.alive:
                    self._pump(relay, direction)
            if relay.alive:
                self._watch(relay)

    def _serve(self, relay, side, events):
        if events & _READABLE:
            self._pump(relay, side.reading)
        if events & select.EPOLLOUT and relay.alive:
            if not side.writing.wants_write:
                # Only a TLS connection's own records waited for room.
                try:
                    side.flush()
                except OSError as exc:
                    self._end(relay, exc)
                    return
                self._watch(relay)
            else:
                self._pump(relay, side.writing)

    def _pump(self, relay, direction):
        waited = direction.wants_write
        try:
            if direction.pump():
                self._again.append((relay, direction))
        except _WOULD_BLOCK:
            return  # woken for nothing (another turn took the bytes)
        except (_Ended, OSError) as exc:
            self._end(relay, exc)
            return
        except Exception as exc:  # a bug ends this relay, never the loop
            LOG.exception("Relay %s failed", relay.label)
            self._end(relay, exc)
            return
        if direction.wants_write != waited or direction.source.tls or direction.sink.tls:
            self._watch(relay)

    def _watch(self, relay):
        """Wait for what each side of ``relay`` needs now. A side that
        needs nothing leaves the poller: it would report a hang-up over
        and over while its direction waits for the other side."""
        try:
            for side in relay.sides:
                events = side.interest()
                if events == side.events:
                    continue
                if not side.events:
                    self._epoll.register(side.fd, events)
                    self._by_fd[side.fd] = (relay, side)
                elif not events:
                    self._epoll.unregister(side.fd)
                    del self._by_fd[side.fd]
                else:
                    self._epoll.modify(side.fd, events)
                side.events = events
        except OSError as exc:  # a socket closed meanwhile
            self._end(relay, exc)

    def _end(self, relay, why):
        if not relay.alive:
            return
        LOG.debug("Relay %s ended: %s", relay.label, why)
        for side in relay.sides:
            if side.events:
                with contextlib.suppress(OSError):
                    self._epoll.unregister(side.fd)
                self._by_fd.pop(side.fd, None)
                side.events = 0
        self._relays.discard(relay)
        # One direction ending ends the relay: a session cannot live half open.
        relay._close()
