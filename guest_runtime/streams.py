"""Byte streams that carry protocol frames over sockets (unix, TCP, TLS).

Every stream, here and in :mod:`guest_runtime.shm_ring` and
:mod:`guest_runtime.vm_link`, offers the same three calls, used by both the
client runtime and the GPU server, so the protocol code never knows which
one it runs on:

* ``send_parts(parts)``: write buffers in order (gathered, not joined);
* ``recv_into(view)``: fill a writable byte memoryview completely;
* ``recv_exact(nbytes)``: the next ``nbytes`` as bytes.

Bulk data goes straight between the stream and the caller's buffer (the
device arena on the server, the numpy array in the guest): no intermediate
copies.
"""

import array
import socket
import ssl

ANCILLARY_FDS_MAX = 8


class ConnectionClosed(Exception):
    """The peer closed the stream (or died)."""


class SocketStream:
    """A stream over a connected socket, with a read buffer so that a burst of
    small pipelined frames costs one ``recv`` rather than two per frame."""

    kind = "socket"

    def __init__(self, sock, kind="unix", read_buffer_bytes=256 << 10):
        self.sock = sock
        self.kind = kind
        self._buffer = bytearray(read_buffer_bytes)
        self._view = memoryview(self._buffer)
        self._start = 0
        self._end = 0
        # sendmsg gathers buffers without joining them; SSL sockets lack it.
        self._gather = not isinstance(sock, ssl.SSLSocket)
        self.expect_fds = False
        self.received_fds = []

    @property
    def buffered_bytes(self):
        return self._end - self._start

    def send_parts(self, parts):
        if len(parts) == 1 or not self._gather:
            for part in parts:
                self.sock.sendall(part)
            return
        views = [memoryview(p).cast("B") for p in parts if len(p)]
        while views:
            sent = self.sock.sendmsg(views)
            while views and sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            if views and sent:
                views[0] = views[0][sent:]

    def recv_into(self, view):
        wanted = len(view)
        got = self._take_buffered(view, 0, wanted)
        while got < wanted:
            remaining = wanted - got
            if remaining >= len(self._buffer) // 2:
                # Bulk: straight into the destination, no staging copy.
                count = self.sock.recv_into(view[got:], remaining)
                if not count:
                    raise ConnectionClosed("peer closed the connection")
                got += count
            else:
                self._fill()
                got = self._take_buffered(view, got, wanted)

    def recv_exact(self, nbytes):
        if self._end - self._start >= nbytes:
            start = self._start
            self._start += nbytes
            return bytes(self._view[start:start + nbytes])
        data = bytearray(nbytes)
        self.recv_into(memoryview(data))
        return bytes(data)

    def _take_buffered(self, view, got, wanted):
        take = min(self._end - self._start, wanted - got)
        if take:
            view[got:got + take] = self._view[self._start:self._start + take]
            self._start += take
        return got + take

    def _fill(self):
        self._start = self._end = 0
        if self.expect_fds:
            count = self._recv_with_fds()
        else:
            count = self.sock.recv_into(self._view)
        if not count:
            raise ConnectionClosed("peer closed the connection")
        self._end = count

    def _recv_with_fds(self):
        fd_bytes = socket.CMSG_SPACE(ANCILLARY_FDS_MAX * array.array("i").itemsize)
        count, ancillary, _flags, _addr = self.sock.recvmsg_into([self._view], fd_bytes)
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
                self.received_fds.extend(fds)
        return count

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

