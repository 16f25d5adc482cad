"""A connection to a GPU server and the protocol stubs derived from the table.

:class:`Connection` gets one method per op of ``protocol.OPS``, named after
it in lower case (``conn.mem_alloc(nbytes)``), built from the table rather
than written out. Synchronous ops return their reply fields as a tuple (and
the reply buffer last, unless ``reply_into`` received it) or raise
:class:`CudaError`; asynchronous ops only send and return None.
"""

import itertools
import logging
import os
import struct
import threading

from guest_runtime import protocol
from guest_runtime.curesult import CudaError, CUresult
from guest_runtime.endpoints import SOCKET_KINDS, connect, parse_endpoints
from guest_runtime.protocol import BUF_REPLY, ProtocolError
from guest_runtime.shm_ring import ShmRingStream
from guest_runtime.streams import ConnectionClosed

LOG = logging.getLogger(__name__)

# Transport preferences: "auto" takes the fastest the server offers.
TRANSPORT_CHOICES = ("auto", "shm", *SOCKET_KINDS)

# Small asynchronous frames (launches, frees, memsets) are gathered here and
# sent together with the next synchronous call, or once this many bytes wait:
# one system call for a burst of launches instead of one each. Nothing can
# observe their effect without a synchronous call, which sends them first.
PENDING_FLUSH_BYTES = 64 << 10

_REPLY_HEAD = struct.Struct("<16si")  # frame header, then the status


class Connection:
    def __init__(self, endpoints, token, vgpu_index=0, transport="auto", tls_ca_file=None,
                 shm_ring_bytes=0, timeout_s=10.0):
        if transport not in TRANSPORT_CHOICES:
            raise ValueError("transport %r is not one of %s" % (transport,
                                                                ", ".join(TRANSPORT_CHOICES)))
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._cache = {}
        self._pending = bytearray()
        self.ended = None
        self.stream = self._connect(endpoints, transport, tls_ca_file, timeout_s)
        try:
            self._start(token, vgpu_index, transport, shm_ring_bytes)
        except BaseException:
            self.stream.close()
            raise
        LOG.debug("Session %d over %s", self.session_id, self.stream.kind)

    def _start(self, token, vgpu_index, transport, shm_ring_bytes):
        token = token.encode("ascii") if isinstance(token, str) else bytes(token)
        self.session_id, self.memory_total_bytes, self.transports = self.hello(
            vgpu_index, buffer=token)
        if (self.stream.kind == "unix" and transport in ("auto", "shm")
                and self.transports & protocol.TRANSPORT_SHM):
            self._attach_shm(shm_ring_bytes)
        elif transport == "shm":
            raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                            "shared memory was asked for but the server does not offer it "
                            "on this endpoint: use a unix endpoint of a server with "
                            "[gpu_server] shm_enabled")

    @property
    def transport(self):
        return self.stream.kind

    def _connect(self, endpoints, transport, tls_ca_file, timeout_s):
        if isinstance(endpoints, str):
            endpoints = parse_endpoints(endpoints)
        wanted = {"shm": ("unix",), "auto": SOCKET_KINDS}.get(transport, (transport,))
        failures = []
        for endpoint in endpoints:
            if endpoint.kind not in wanted:
                continue
            try:
                return connect(endpoint, timeout_s, tls_ca_file)
            except (OSError, ConnectionClosed) as exc:
                failures.append("%s: %s" % (endpoint, exc))
        raise CudaError(CUresult.CUDA_ERROR_NO_DEVICE,
                        "no GPU server reachable over %s (%s): check ORIONX_ENDPOINT and "
                        "that orionx-gpu-server runs" % (transport, "; ".join(failures)
                                                         or "no endpoint of that kind"))

    def _attach_shm(self, ring_bytes):
        sock_stream = self.stream
        sock_stream.expect_fds = True
        try:
            (ring_bytes,) = self.shm_attach(ring_bytes)
        finally:
            sock_stream.expect_fds = False
        fds = sock_stream.received_fds
        if len(fds) != protocol.SHM_ATTACH.reply_fds:
            for fd in fds:
                os.close(fd)
            raise ProtocolError("SHM_ATTACH reply carried %d descriptors, expected %d"
                                % (len(fds), protocol.SHM_ATTACH.reply_fds))
        self.stream = ShmRingStream(fds[0], fds[1:], ring_bytes, sock_stream.sock, "client")

    def call(self, op, args=(), buffer=None, reply_into=None):
        """Send ``op`` and, when it is synchronous, wait for its reply."""
        if op.cacheable:
            cached = self._cache.get((op.opcode, args))
            if cached is not None:
                return cached
        with self._lock:
            if self.ended is not None:
                raise self.ended
            request_id = next(self._ids) & 0xFFFFFFFF
            buffer_bytes = len(buffer) if buffer is not None else 0
            try:
                head = protocol.encode_request(op, request_id, args, buffer_bytes)
            except struct.error as exc:
                raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                                "%s arguments %r do not fit its fields %s: %s"
                                % (op.name, args, op.request_fields, exc)) from None
            try:
                if not op.sync and buffer_bytes < PENDING_FLUSH_BYTES:
                    self._pending += head
                    if buffer_bytes:
                        self._pending += buffer
                    if len(self._pending) >= PENDING_FLUSH_BYTES:
                        self._flush()
                    return None
                parts = [head, buffer] if buffer_bytes else [head]
                if self._pending:
                    parts.insert(0, self._pending)
                    self._pending = bytearray()
                self.stream.send_parts(parts)
                if not op.sync:
                    return None
                result = self._await_reply(op, request_id, reply_into)
            except (ConnectionClosed, OSError, ProtocolError) as exc:
                self.stream.close()
                self._lost(exc)
        if op.cacheable:
            self._cache[(op.opcode, args)] = result
        return result

    def _flush(self):
        pending, self._pending = self._pending, bytearray()
        self.stream.send_parts([pending])

    def flush(self):
        """Send the asynchronous frames still gathered here."""
        with self._lock:
            if self._pending and self.ended is None:
                try:
                    self._flush()
                except (ConnectionClosed, OSError) as exc:
                    self._lost(exc)

    def _lost(self, exc):
        self.ended = CudaError(CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE,
                               "connection to the GPU server lost: %s" % exc)
        raise self.ended from None

    def _read_error(self, status, payload_bytes):
        """The CudaError of a failed reply: its message follows the status."""
        message = self.stream.recv_exact(payload_bytes - protocol.STATUS.size)
        return CudaError(status, message.decode("utf-8", "replace"))

    def _await_reply(self, op, request_id, reply_into):
        # Every reply has at least a status after its header: read both at once.
        head = self.stream.recv_exact(_REPLY_HEAD.size)
        flags, opcode, reply_id, payload_bytes = protocol.parse_header(
            head[:protocol.HEADER_BYTES])
        (status,) = protocol.STATUS.unpack_from(head, protocol.HEADER_BYTES)
        if opcode == protocol.SESSION_ENDED.opcode:
            self.ended = self._read_error(status, payload_bytes)
            raise self.ended
        if opcode != op.opcode or reply_id != request_id:
            raise ProtocolError("reply 0x%04x/%d does not answer %s/%d"
                                % (opcode, reply_id, op.name, request_id))
        if status:
            raise self._read_error(status, payload_bytes)
        fields = op.reply.unpack(self.stream.recv_exact(op.reply.size)) if op.reply.size else ()
        if op.buffer != BUF_REPLY:
            return fields
        buffer_bytes = payload_bytes - protocol.STATUS.size - op.reply.size
        if reply_into is None:
            return fields + (self.stream.recv_exact(buffer_bytes),)
        if len(reply_into) != buffer_bytes:
            raise ProtocolError("%s answered %d bytes, expected %d"
                                % (op.name, buffer_bytes, len(reply_into)))
        self.stream.recv_into(reply_into)
        return fields

    def close(self):
        with self._lock:
            try:
                self.flush()  # work the program launched before leaving still runs
            except CudaError:
                pass
            if self.stream is not None:
                self.stream.close()
            self.ended = self.ended or CudaError(CUresult.CUDA_ERROR_DEINITIALIZED,
                                                 "the session was closed by this client")


def _stub(op):
    def stub(self, *args, buffer=None, reply_into=None):
        return self.call(op, args, buffer, reply_into)
    stub.__name__ = op.name.lower()
    stub.__doc__ = "%s(%s) -> (%s)%s" % (
        op.name, ", ".join(op.request_fields), ", ".join(op.reply_fields),
        "" if op.sync else ", asynchronous")
    return stub


for _op in protocol.OPS.values():
    if _op.sent_by == protocol.SENT_BY_CLIENT:
        setattr(Connection, _op.name.lower(), _stub(_op))
