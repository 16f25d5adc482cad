"""Copy bytes both ways between a guest's connection and a remote host's
agent, for guests whose vGPU is on another host, or between a guest's TLS
connection and the GPU server it reaches on this host.

The relay does not parse frames: it moves whatever arrives, one thread per
direction, through a pipe with splice(2) where the kernel allows it (the
bytes never enter this process), else with large reads and writes (always
for TLS connections, whose bytes are decrypted here). When
either side closes or fails, both sockets are shut down so the other side
sees the end at once: a guest whose remote GPU server died gets its error
instead of a hang.
"""

import errno
import os
import socket
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

RELAY_BUFFER_BYTES = 1 << 20


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _copy_through_python(source, sink, counter):
    buffer = bytearray(RELAY_BUFFER_BYTES)
    view = memoryview(buffer)
    while True:
        count = source.recv_into(view)
        if not count:
            return
        sink.sendall(view[:count])
        counter[0] += count


def _splice_through_pipe(source, sink, counter):
    """Move bytes socket -> pipe -> socket inside the kernel: no copy into
    this process, and the GIL is free while they move."""
    pipe_out, pipe_in = os.pipe()
    try:
        while True:
            count = os.splice(source.fileno(), pipe_in, RELAY_BUFFER_BYTES)
            if not count:
                return
            left = count
            while left:
                left -= os.splice(pipe_out, sink.fileno(), left)
            counter[0] += count
    finally:
        os.close(pipe_out)
        os.close(pipe_in)


def _spliceable(*socks):
    # A TLS connection has no fileno: its socket carries ciphertext.
    return hasattr(os, "splice") and all(hasattr(sock, "fileno") for sock in socks)


def _pump(source, sink, counter, label):
    try:
        if _spliceable(source, sink):
            try:
                _splice_through_pipe(source, sink, counter)
                return
            except OSError as exc:
                if counter[0] or exc.errno != errno.EINVAL:
                    raise
                # This kind of socket cannot be spliced: copy instead.
        _copy_through_python(source, sink, counter)
    except OSError as exc:
        LOG.debug("Relay %s ended: %s", label, exc)
    finally:
        # One direction ending ends the relay: a session cannot live half open.
        _shutdown(source)
        _shutdown(sink)


class Relay:
    """Relays ``guest`` <-> ``remote`` until either side closes."""

    def __init__(self, guest, remote, label):
        self.guest = guest
        self.remote = remote
        self.label = label
        self.bytes_up = [0]
        self.bytes_down = [0]
        self._threads = [
            threading.Thread(target=_pump, args=(guest, remote, self.bytes_up, label + " up"),
                             name="orionx-relay-up", daemon=True),
            threading.Thread(target=_pump, args=(remote, guest, self.bytes_down,
                                                 label + " down"),
                             name="orionx-relay-down", daemon=True),
        ]

    def start(self):
        for sock in (self.guest, self.remote):
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for thread in self._threads:
            thread.start()
        return self

    def wait(self, timeout_s=None):
        for thread in self._threads:
            thread.join(timeout_s)
        for sock in (self.guest, self.remote):
            sock.close()
        LOG.info("Relay %s closed: %d bytes up, %d bytes down", self.label,
                 self.bytes_up[0], self.bytes_down[0])

    def stop(self):
        _shutdown(self.guest)
        _shutdown(self.remote)

    @property
    def alive(self):
        return any(thread.is_alive() for thread in self._threads)
