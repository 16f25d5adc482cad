"""The shared-memory transport: two single-producer rings in one segment,
eventfd doorbells, and the per-process watchdog that notices a dead peer.

The GPU server creates the segment (``orionx_agent.server.shm_segment``)
and passes it with SCM_RIGHTS in its SHM_ATTACH reply; from then on both
ends use :class:`ShmRingStream`. docs/protocol.md describes the layout.
"""

import dataclasses
import mmap
import os
import select
import socket
import threading

from guest_runtime.streams import ConnectionClosed

CONTROL_BYTES = 4096
# One ring per direction. Its control words sit 64 bytes apart (own cache
# lines), as u64 indexes into the control page: bytes written, bytes read, and
# two flags saying that the reader or the writer sleeps on its eventfd.
_HEAD, _TAIL, _READER_SLEEPS, _WRITER_SLEEPS = 0, 8, 16, 24
_RING_WORDS = 32
CLIENT_TO_SERVER, SERVER_TO_CLIENT = 0, 1
# Eventfds in the order they travel over SCM_RIGHTS after the memfd.
EVENTFD_ROLES = ("c2s_data", "c2s_space", "s2c_data", "s2c_space")

# A sleeper blocks in one read of its eventfd (one system call, as a socket
# recv). What a read cannot see, a peer that died, the per-process watchdog
# thread watches for on the streams' unix sockets; it then wakes the
# sleepers. It also re-rings the doorbell of every sleeper this often: a
# last line of defence should one ever be missed, so that costs a pause,
# never a hang.
_WATCHDOG_TICK_MS = 50

# Sleeper and writer each store one word and then load the other's (the flag,
# the ring index). Without a full fence between the two, the CPU may reorder
# them and both miss each other: a lost doorbell. Taking and releasing a lock
# is an atomic read-modify-write, which is such a fence, and Python has no
# cheaper one.
_fence_lock = threading.Lock()


def _fence():
    _fence_lock.acquire()
    _fence_lock.release()
# Checks of the ring before sleeping. When the peer runs on another idle
# core it often answers within them, which saves the system calls and the
# wake-up of a sleep; on a busy machine spinning only steals the peer's CPU.
# So each stream adapts: spinning that pays doubles, spinning that does not
# halves, down to none, with an occasional short probe to notice a change.
_SPIN_CHECKS_MAX = 256
_SPIN_CHECKS_PROBE = 8
_SPIN_PROBE_EVERY = 64


@dataclasses.dataclass
class _Ring:
    control: memoryview   # the whole control page as u64 words
    base: int             # index of this ring's first control word
    data: memoryview      # ring_bytes of data
    data_fd: int          # doorbell: data was written
    space_fd: int         # doorbell: data was consumed

    def word(self, offset):
        return self.control[self.base + offset]

    def set_word(self, offset, value):
        self.control[self.base + offset] = value


class ShmRingStream:
    """A stream over two single-producer rings in one shared segment.

    Bulk data is copied once into the ring and once out of it, by two
    processes working in parallel on consecutive chunks; only doorbells, and
    only when the other side sleeps, cost a system call. ``peer_sock`` is the
    unix socket the segment came over: it becomes readable when the peer dies.
    """

    kind = "shm"

    def __init__(self, memfd, eventfds, ring_bytes, peer_sock, role):
        self.ring_bytes = ring_bytes
        # Bulk copies move in chunks of an eighth of the ring, so that writer
        # and reader copy at the same time instead of taking turns.
        self._chunk_bytes = max(ring_bytes // 8, 4096)
        # A writer that sleeps for space is woken once a quarter of the ring
        # is free, not for every small frame read: woken each time, a client
        # pipelining launches pays a system call and a context switch per
        # launch, only to fill the ring again and sleep.
        self._wake_writer_at_used_bytes = ring_bytes - max(ring_bytes // 4, 1)
        self._spin_checks = _SPIN_CHECKS_PROBE
        self._sleeps = 0
        self.peer_sock = peer_sock
        self._memfd = memfd
        self._eventfds = list(eventfds)
        self._map = mmap.mmap(memfd, segment_bytes(ring_bytes))
        whole = memoryview(self._map)
        control = whole[:CONTROL_BYTES].cast("Q")
        fds = dict(zip(EVENTFD_ROLES, eventfds, strict=True))
        rings = []
        for index, prefix in ((CLIENT_TO_SERVER, "c2s"), (SERVER_TO_CLIENT, "s2c")):
            start = CONTROL_BYTES + index * ring_bytes
            rings.append(_Ring(control, index * _RING_WORDS, whole[start:start + ring_bytes],
                               fds[prefix + "_data"], fds[prefix + "_space"]))
        self._views = [whole, control] + [ring.data for ring in rings]
        if role == "server":
            self._rx, self._tx = rings
        else:
            self._tx, self._rx = rings
        self._dead = None      # why the peer is gone, set by the watchdog
        self._closed = False
        self._lock = threading.Lock()  # between close() and the watchdog
        _watchdog.add(self)

    # writing

    def send_parts(self, parts):
        for part in parts:
            self._write(memoryview(part).cast("B"))
        self._ring_doorbell(self._tx, _READER_SLEEPS, self._tx.data_fd)

    def _write(self, view):
        ring, size = self._tx, self.ring_bytes
        done, total = 0, len(view)
        while done < total:
            head = ring.word(_HEAD)
            free = size - (head - ring.word(_TAIL))
            if not 0 <= free <= size:
                raise _corrupted("free space", free)
            if not free:
                self._ring_doorbell(ring, _READER_SLEEPS, ring.data_fd)
                self._sleep(ring, _WRITER_SLEEPS, ring.space_fd, self._has_space)
                continue
            position = head % size
            chunk = min(total - done, free, size - position, self._chunk_bytes)
            ring.data[position:position + chunk] = view[done:done + chunk]
            ring.set_word(_HEAD, head + chunk)
            done += chunk
            if done < total:
                # Let a sleeping reader drain this chunk while we copy the next.
                self._ring_doorbell(ring, _READER_SLEEPS, ring.data_fd)

    def _has_space(self, ring):
        return ring.word(_HEAD) - ring.word(_TAIL) < self.ring_bytes

    # reading

    def recv_into(self, view):
        view = view.cast("B") if view.format != "B" else view
        ring, size = self._rx, self.ring_bytes
        done, total = 0, len(view)
        while done < total:
            tail = ring.word(_TAIL)
            available = ring.word(_HEAD) - tail
            if not 0 <= available <= size:
                raise _corrupted("unread bytes", available)
            if not available:
                self._sleep(ring, _READER_SLEEPS, ring.data_fd, self._has_data)
                continue
            position = tail % size
            chunk = min(total - done, available, size - position)
            view[done:done + chunk] = ring.data[position:position + chunk]
            ring.set_word(_TAIL, tail + chunk)
            done += chunk
            self._space_freed(ring)

    def recv_exact(self, nbytes):
        ring = self._rx
        tail = ring.word(_TAIL)
        position = tail % self.ring_bytes
        if nbytes <= ring.word(_HEAD) - tail <= self.ring_bytes \
                and position + nbytes <= self.ring_bytes:
            # The common case of a small frame already in the ring, in one piece.
            data = bytes(ring.data[position:position + nbytes])
            ring.set_word(_TAIL, tail + nbytes)
            self._space_freed(ring)
            return data
        data = bytearray(nbytes)
        self.recv_into(memoryview(data))
        return bytes(data)

    @staticmethod
    def _has_data(ring):
        return ring.word(_HEAD) != ring.word(_TAIL)

    # doorbells

    def _space_freed(self, ring):
        if ring.word(_HEAD) - ring.word(_TAIL) <= self._wake_writer_at_used_bytes:
            self._ring_doorbell(ring, _WRITER_SLEEPS, ring.space_fd)

    @staticmethod
    def _ring_doorbell(ring, sleeper_flag, fd):
        _fence()
        if ring.word(sleeper_flag):
            os.eventfd_write(fd, 1)

    def _spin(self, ring, ready):
        """True if ``ready`` came true while spinning; adapts the budget."""
        self._sleeps += 1
        budget = self._spin_checks
        if not budget and self._sleeps % _SPIN_PROBE_EVERY == 0:
            budget = _SPIN_CHECKS_PROBE
        for _ in range(budget):
            if ready(ring):
                self._spin_checks = min(_SPIN_CHECKS_MAX, max(2 * budget, _SPIN_CHECKS_PROBE))
                return True
        self._spin_checks = budget // 2 if budget > _SPIN_CHECKS_PROBE else 0
        return False

    def _sleep(self, ring, my_flag, my_fd, ready):
        # Whatever we wait for, a writer waiting for the space we freed
        # below the wake-up mark gets it first: two ends that each wait for
        # the other would otherwise stand still.
        self._ring_doorbell(self._rx, _WRITER_SLEEPS, self._rx.space_fd)
        if self._spin(ring, ready):
            return
        ring.set_word(my_flag, 1)
        _fence()
        try:
            # Re-check after raising the flag: the peer may have moved the
            # ring just before it could see the flag.
            while not ready(ring):
                if self._dead:
                    raise ConnectionClosed(self._dead)
                os.eventfd_read(my_fd)
        finally:
            ring.set_word(my_flag, 0)

    # called by the watchdog thread

    def peer_event(self):
        """The unix socket became readable: the peer died or misbehaved."""
        try:
            data = self.peer_sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError as exc:
            data, reason = b"", "peer of the shared-memory session failed: %s" % exc
        else:
            reason = ("peer wrote to the control socket of a shared-memory session" if data
                      else "peer closed the shared-memory session")
        self._dead = reason
        self.wake_sleepers(always=True)

    def wake_sleepers(self, always=False):
        """Ring our own doorbells where we sleep (all of them if ``always``)."""
        with self._lock:
            if self._closed:
                return
            for ring, flag, fd in ((self._rx, _READER_SLEEPS, self._rx.data_fd),
                                   (self._tx, _WRITER_SLEEPS, self._tx.space_fd)):
                if always or ring.word(flag):
                    os.eventfd_write(fd, 1)

    def close(self):
        _watchdog.remove(self)
        with self._lock:
            self._closed = True
        for view in reversed(self._views):
            view.release()
        self._views = []
        self._rx = self._tx = None
        try:
            self._map.close()
        except BufferError:
            pass
        for fd in [self._memfd] + self._eventfds:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.peer_sock.close()
        except OSError:
            pass


def _corrupted(what, value):
    # Only a peer writing the control page itself gets here; its session ends.
    return ConnectionClosed("shared-memory ring corrupted by the peer: %s = %d" % (what, value))


class _Watchdog:
    """One thread per process watching the unix sockets of its shared-memory
    streams: when a peer goes, the stream's sleepers are woken to find out."""

    def __init__(self):
        self._streams = {}
        self._lock = threading.Lock()
        self._thread = None

    def add(self, stream):
        with self._lock:
            self._streams[stream.peer_sock.fileno()] = stream
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="orionx-shm-watchdog")
                self._thread.start()

    def remove(self, stream):
        with self._lock:
            for fd, known in list(self._streams.items()):
                if known is stream:
                    del self._streams[fd]

    def _loop(self):
        while True:
            with self._lock:
                streams = dict(self._streams)
            poller = select.poll()
            for fd in streams:
                poller.register(fd, select.POLLIN)
            for fd, _events in poller.poll(_WATCHDOG_TICK_MS):
                stream = streams.get(fd)
                if stream is not None:
                    self.remove(stream)
                    stream.peer_event()
            for stream in streams.values():
                stream.wake_sleepers()


_watchdog = _Watchdog()


def segment_bytes(ring_bytes):
    """Size of a segment with two rings of ``ring_bytes``: control page first."""
    return CONTROL_BYTES + 2 * ring_bytes
