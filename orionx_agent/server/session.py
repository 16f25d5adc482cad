"""One client's session on a GPU server: frames in, device work, replies out.

Dispatch is derived from ``guest_runtime.protocol.OPS``: a call ``NAME``
runs method ``op_name`` with the request struct's fields (plus an
:class:`IncomingBuffer` for ops that carry one). Handlers return the reply
struct's fields, and ``(fields, nbytes, views)`` for ops that answer with
bytes, where ``views`` yields the ``nbytes`` in chunks.

Asynchronous ops get no reply. When one fails its error is deferred, later
asynchronous ops are skipped, and the next synchronous op answers with that
error instead of running, as a CUDA context reports a launch failure at the
next synchronising call.
"""

import contextlib
import dataclasses
import select
import socket
import ssl
import struct
import threading
import time

from oslo_log import log as logging

from guest_runtime import protocol
from guest_runtime.curesult import CudaError, CUresult
from guest_runtime.protocol import BUF_REPLY, BUF_REQUEST, ProtocolError
from guest_runtime.shm_ring import ShmRingStream
from guest_runtime.streams import ConnectionClosed, SocketStream
from orionx_agent import frames
from orionx_agent import hello as hello_frames
from orionx_agent.server import device_attributes, shm_segment
from orionx_agent.server.memory_map import SessionMemoryMap
from orionx_common.session_token import TokenError, verify_token

LOG = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0
_DISCARD_CHUNK_BYTES = 1 << 20


_CONTROL_YIELD_S = 0.0002

# A preempted session's connection stays open this long, so that the
# client's next call reads why it ended (SESSION_ENDED) rather than finding
# a closed socket; then it is shut.
PREEMPTED_LINGER_S = 60.0
# How long a preemption or revocation waits for the session's thread to
# finish its frame before it shuts the connection under it, and then for
# the thread to free the session's memory. Together they are the bound
# docs/qos.md names for ending a session (well under a second, unless a
# kernel is running).
ENDING_LOCK_WAIT_S = 0.2
ENDED_WAIT_S = 0.8
# A socket session whose client sends nothing for this long gives its
# thread back and waits on the server's selector until its next frame
# (shared-memory sessions keep theirs: their frames come through the ring).
IDLE_PARK_S = 0.5
# One parameter of FUNC_GET_PARAM_LAYOUT's reply: its offset and size.
_PARAM_ENTRY = struct.Struct("<II")


class SessionRefused(Exception):
    """HELLO failed; the client is told why, with ``code``."""

    def __init__(self, message, code=CUresult.CUDA_ERROR_NOT_PERMITTED):
        super().__init__(message)
        self.code = code


class SessionPreempted(Exception):
    """Raised in the session's own thread when it was ended from outside
    while waiting: the op stops without a reply (SESSION_ENDED says why)."""


@dataclasses.dataclass
class SessionUsage:
    device_s: float = 0.0
    launches: int = 0
    bytes_to_device: int = 0
    bytes_from_device: int = 0
    evictions: int = 0
    bytes_evicted: int = 0
    bytes_restored: int = 0


class IncomingBuffer:
    """The trailing buffer of a request, still in the stream: a handler reads
    it straight into its destination, or the session discards it."""

    def __init__(self, stream, nbytes):
        self._stream = stream
        self.nbytes = nbytes
        self._pending = nbytes

    def read(self):
        data = self._stream.recv_exact(self._pending) if self._pending else b""
        self._pending = 0
        return data

    def read_into(self, view):
        """Fill ``view`` with the next len(view) bytes of the buffer."""
        if len(view) > self._pending:
            raise ProtocolError("read of %d bytes past a %d-byte buffer"
                                % (len(view), self._pending))
        self._stream.recv_into(view)
        self._pending -= len(view)

    def discard(self):
        scratch = None
        while self._pending:
            chunk = min(self._pending, _DISCARD_CHUNK_BYTES)
            if scratch is None:
                scratch = memoryview(bytearray(chunk))
            self._stream.recv_into(scratch[:chunk])
            self._pending -= chunk


class HandleTable:
    """Session-local handles (streams, events, modules, functions) to backend
    objects. Clients only ever see these numbers; a number that is not in
    the table is refused, so one session cannot name another's objects."""

    def __init__(self, kind):
        self.kind = kind
        self._objects = {}
        self._next = 1

    def add(self, obj):
        handle = self._next
        self._next += 1
        self._objects[handle] = obj
        return handle

    def get(self, handle):
        try:
            return self._objects[handle]
        except KeyError:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_HANDLE,
                            "%s handle %d is not a live %s of this session"
                            % (self.kind, handle, self.kind)) from None

    def pop(self, handle):
        obj = self.get(handle)
        del self._objects[handle]
        return obj

    def __len__(self):
        return len(self._objects)


class Session:
    def __init__(self, server, stream, peer_label):
        self.server = server
        self.stream = stream
        self.peer_label = peer_label
        self.id = None
        self.label = "unauthenticated session from %s" % peer_label
        self.claims = None
        self.vgpu = None
        self.account = None  # the VGpuAccount all sessions of its vGPU share
        self.memory_map = None
        self.context = None
        self.deferred_error = None
        self.usage = SessionUsage()
        # Held while the session's thread serves a frame, and by any other
        # thread that changes the session's device state or writes to its
        # stream (preemption, eviction, resize): they never interleave.
        self.work_lock = threading.RLock()
        # Control operations waiting for work_lock: the session's thread lets
        # them in before its next frame, as a lock is not fair and a busy
        # session would otherwise take it back at once, frame after frame.
        self._control_waiting = 0
        self._control_count_lock = threading.Lock()
        self.ended_by_server = None  # CudaError once preempted
        self._closed = threading.Event()  # its thread freed everything and left
        self.priority = 0
        self.last_active_s = time.monotonic()
        self.streams = HandleTable("stream")
        self.events = HandleTable("event")
        self.modules = HandleTable("module")
        self.functions = HandleTable("function")
        # module handle -> the Allocation holding its variables (sim backend)
        self.module_variables = {}
        # module handle -> {(dptr, bytes)} of variables a backend keeps in its
        # own module memory (cuda): copies may reach them too
        self.variable_ranges = {}
        self._handlers = {opcode: getattr(self, op.handler_name)
                          for opcode, op in protocol.OPS.items() if op.is_call}

    @property
    def compute_pct(self):
        """The compute share of the session's vGPU (all its sessions together)."""
        return self.account.compute_pct if self.account is not None else 100

    # -- lifecycle ----------------------------------------------------------

    def run(self):
        """Serve from HELLO on until the client leaves or breaks the
        protocol (then free everything the session held), or until it is
        idle: then it waits for its next frame without a thread."""
        self._guarded(self._hello_and_serve)

    def resume(self):
        """Serve a parked session whose next frame arrived (a new thread)."""
        self._guarded(self._serve_frames)

    def _hello_and_serve(self):
        self._hello()
        return self._serve_frames()

    def _serve_frames(self):
        """Serve frames; True once parked, idle (else it raises at the end)."""
        while True:
            if self._idle():
                self.server.park(self)
                return True
            self._serve_one()

    def _idle(self):
        """Nothing arrived from the client for IDLE_PARK_S (a socket session only)."""
        stream = self.stream
        if not isinstance(stream, SocketStream) or stream.buffered_bytes:
            return False
        if isinstance(stream.sock, ssl.SSLSocket) and stream.sock.pending():
            return False
        poller = select.poll()
        poller.register(stream.sock, select.POLLIN)
        return not poller.poll(IDLE_PARK_S * 1000)

    def _guarded(self, serve):
        parked = False
        try:
            parked = serve()
        except (ConnectionClosed, ConnectionError, SessionRefused) as exc:
            LOG.debug("%s ended: %s", self.label, exc)
        except ProtocolError as exc:
            LOG.warning("Ending %s: %s", self.label, exc)
            self.end(CUresult.CUDA_ERROR_INVALID_VALUE, "protocol error: %s" % exc)
        except OSError as exc:
            LOG.info("%s lost its connection: %s", self.label, exc)
        except Exception as exc:  # a bug ends this session, never the server
            LOG.exception("Ending %s after an unexpected error", self.label)
            self.end(CUresult.CUDA_ERROR_UNKNOWN, "GPU server error: %s" % exc)
        finally:
            if not parked:
                self.close()

    def end(self, code, message):
        """Tell the client why its session ends (best effort)."""
        if self.ended_by_server is not None:
            return  # it was told already
        frame = frames.encode_error(protocol.SESSION_ENDED.opcode, 0, code, message)
        try:
            self.stream.send_parts([frame])
        except (OSError, ConnectionClosed, ValueError):
            pass

    def close(self):
        try:
            with self.work_lock:
                if self.context is not None:
                    if self.ended_by_server is not None:  # ended from outside mid-frame
                        self._tell_ended(self.ended_by_server.code,
                                         self.ended_by_server.message)
                    self._free_everything()
        except Exception:  # a failing device must not leave the session registered
            LOG.exception("%s: freeing its device resources failed", self.label)
        finally:
            self.stream.close()
            if self.id is not None:
                self.server.forget_session(self)
            self._closed.set()

    @contextlib.contextmanager
    def yielding(self):
        """While inside, the session's thread waits before its next frame, so
        another thread waiting for work_lock gets it."""
        with self._control_count_lock:
            self._control_waiting += 1
        try:
            yield
        finally:
            with self._control_count_lock:
                self._control_waiting -= 1

    @contextlib.contextmanager
    def held_for_control(self):
        """work_lock, taken by a control operation ahead of the next frame."""
        with self.yielding(), self.work_lock:
            yield

    def preempt(self, message, code=CUresult.CUDA_ERROR_MPS_CLIENT_TERMINATED):
        """End the session from another thread (preemption, revocation):
        tell the client ``message`` with ``code``, free everything it holds
        at once, and keep the connection only until the client has read why.
        A session whose own thread does not let go within
        ``ENDING_LOCK_WAIT_S`` (a client stalled in the middle of a frame,
        or not reading a reply) has its connection shut from here instead;
        its thread then ends and frees its memory, within ``ENDED_WAIT_S``."""
        self.ended_by_server = CudaError(code, message)  # waits in the scheduler give up
        self.server.scheduler.wake(self)
        context = self.context  # read once: the session's own thread may be ending it
        if context is not None:
            context.abort_kernels()  # a running kernel must not hold the ending up
        with self.yielding():
            taken = self.work_lock.acquire(timeout=ENDING_LOCK_WAIT_S)
        if not taken:
            LOG.info("Preempting %s while its thread is inside a frame: shutting its "
                     "connection (%s)", self.label, message)
            # Reading first: a thread stalled in a read ends its frame and,
            # in close(), still tells the client why; one stalled writing
            # (a client that does not read) needs the whole socket shut.
            self.wake(socket.SHUT_RD)
            if not self._closed.wait(ENDED_WAIT_S / 2):
                self.wake()
            if not self._closed.wait(ENDED_WAIT_S / 2):
                LOG.warning("%s: its thread did not end within %.0f s of its connection "
                            "being shut; it ends when the device returns", self.label,
                            ENDED_WAIT_S)
            return
        try:
            if self.context is None:
                return  # it ended on its own meanwhile
            self._tell_ended(code, message)
            try:
                self._free_everything()
            except Exception:
                LOG.exception("%s: freeing its device resources failed", self.label)
        finally:
            self.work_lock.release()
        self.server.forget_session(self)
        LOG.info("Preempted %s: %s", self.label, message)
        timer = threading.Timer(PREEMPTED_LINGER_S, self.wake)
        timer.daemon = True
        timer.start()

    def _tell_ended(self, code, message):
        frame = frames.encode_error(protocol.SESSION_ENDED.opcode, 0, code, message)
        try:
            self.stream.send_parts([frame])
        except (OSError, ConnectionClosed, ValueError) as exc:
            LOG.info("%s: could not tell the client why it ended: %s", self.label, exc)

    def wake(self, how=socket.SHUT_RDWR):
        """Shut the session's socket: its thread, blocked reading, ends."""
        sock = getattr(self.stream, "sock", None) or getattr(self.stream, "peer_sock", None)
        if sock is not None:
            shutdown_socket(sock, how)

    def _free_everything(self):
        self.context.abort_kernels()
        freed = self.memory_map.clear()
        for allocation in freed:
            self.server.memory.release(self, allocation)
        self.context.close()
        self.context = None
        self.server.scheduler.forget(self)
        LOG.info("%s closed; freed %d allocations (%.1f MB)", self.label, len(freed),
                 sum(a.nbytes for a in freed) / (1 << 20))

    def _hello(self):
        sock = getattr(self.stream, "sock", None)
        if sock is not None:
            sock.settimeout(HELLO_TIMEOUT_S)
        hello = hello_frames.receive_hello(self.stream)
        op = protocol.HELLO
        try:
            claims = verify_token(self.server.session_secret, hello.token)
            vgpu = self._pick_vgpu(claims, hello.vgpu_index)
        except TokenError as exc:
            LOG.warning("Refusing session from %s: %s", self.peer_label, exc)
            self._send(frames.encode_error(op.opcode, hello.request_id,
                                             CUresult.CUDA_ERROR_NOT_PERMITTED, str(exc)))
            raise SessionRefused(str(exc)) from None
        if sock is not None:
            sock.settimeout(None)
        with self.work_lock:  # registered from here on: control may reach it
            try:
                self._open(claims, vgpu)
            except SessionRefused as exc:  # revoked, or one session too many
                LOG.warning("Refusing session from %s: %s", self.peer_label, exc)
                self._send(frames.encode_error(op.opcode, hello.request_id, exc.code,
                                               str(exc)))
                raise
            self._send(frames.encode_reply(op, hello.request_id, (
                self.id, self.memory_map.quota_bytes, self.server.transports_for(self.stream))))

    def _pick_vgpu(self, claims, vgpu_index):
        mine = [v for v in claims.vgpus
                if not v.gpu_uuid or v.gpu_uuid == self.server.backend.gpu_uuid]
        if vgpu_index >= len(mine):
            raise TokenError("session token of allocation %s holds %d vGPU(s) for GPU %s; "
                             "vGPU index %d does not exist: connect to the GPU server of "
                             "that vGPU" % (claims.allocation_id, len(mine),
                                            self.server.backend.gpu_uuid, vgpu_index))
        return mine[vgpu_index]

    def _open(self, claims, vgpu):
        self.claims = claims
        self.vgpu = vgpu
        self.priority = self.server.allocation_priority(claims.allocation_id)
        # Registered first: a revoked token is refused there, and from then
        # on a revocation finds this session.
        self.id, self.account = self.server.register_session(self)
        self.label = "session %d (vGPU %s of allocation %s)" % (
            self.id, vgpu.id, claims.allocation_id)
        self.memory_map = SessionMemoryMap("vGPU %s" % vgpu.id, self.account.quota_bytes,
                                           self.account)
        try:
            self.context = self.server.backend.open_context(self.label, self.memory_map)
        except BaseException:
            self.server.forget_session(self)
            raise
        LOG.info("Opened %s from %s over %s: %d MB, %d%% compute (vGPU's share, %d "
                 "session(s))", self.label, self.peer_label, self.stream.kind,
                 self.account.quota_bytes >> 20, self.compute_pct,
                 len(self.account.session_ids))

    # -- the frame loop ------------------------------------------------------

    def _serve_one(self):
        flags, opcode, request_id, payload_bytes = protocol.parse_header(
            self.stream.recv_exact(protocol.HEADER_BYTES))
        while self._control_waiting:
            time.sleep(_CONTROL_YIELD_S)
        with self.work_lock:
            if self.ended_by_server is not None:
                # Preempted: the client has SESSION_ENDED waiting; what it
                # still sends is read and dropped until it goes.
                IncomingBuffer(self.stream, payload_bytes).discard()
                return
            self.last_active_s = time.monotonic()
            self._dispatch(opcode, request_id, payload_bytes)
        self.server.memory.session_idle()

    def _dispatch(self, opcode, request_id, payload_bytes):
        op = frames.lookup(opcode)
        buffer_bytes = frames.check_request_length(op, payload_bytes)
        args = op.request.unpack(self.stream.recv_exact(op.request.size)) if op.request.size \
            else ()
        if not op.is_call:
            self._session_control(op, request_id, args)
            return
        incoming = IncomingBuffer(self.stream, buffer_bytes)
        if self.deferred_error is not None:
            incoming.discard()
            if op.sync:
                error, self.deferred_error = self.deferred_error, None
                self._send_error(op, request_id, error)
            return
        try:
            if op.touches_device_memory:
                self.server.memory.make_resident(self)
            if op.buffer == BUF_REQUEST:
                result = self._handlers[opcode](*args, incoming)
            else:
                result = self._handlers[opcode](*args)
            if op.buffer == BUF_REPLY:
                # Produce the first chunk before anything is sent, so that a
                # failure to read device memory can still be a normal reply.
                fields, nbytes, views = result
                result = fields, nbytes, next(views, None), views
        except CudaError as exc:
            incoming.discard()
            if self.ended_by_server is not None:
                # Ending the session stopped this op's kernel: the client is
                # owed the reason (SESSION_ENDED, sent by preempt()), not the
                # LAUNCH_FAILED that stopping it caused.
                return
            self._fail(op, request_id, exc)
            return
        except SessionPreempted:
            incoming.discard()
            return  # SESSION_ENDED is the answer
        except (ConnectionClosed, ProtocolError, OSError):
            raise
        except Exception as exc:  # a bug must not take the server down
            LOG.exception("%s: %s failed", self.label, op.name)
            incoming.discard()
            self._fail(op, request_id, CudaError(CUresult.CUDA_ERROR_UNKNOWN,
                                                 "%s failed in the GPU server: %s"
                                                 % (op.name, exc)))
            return
        incoming.discard()
        if op.sync:
            self._reply(op, request_id, result)

    def _fail(self, op, request_id, error):
        if op.sync:
            self._send_error(op, request_id, error)
        else:
            LOG.debug("%s: deferred error of %s: %s", self.label, op.name, error)
            self.deferred_error = error

    def _reply(self, op, request_id, result):
        if op.buffer == BUF_REPLY:
            fields, nbytes, first, views = result
            head = frames.encode_reply(op, request_id, fields, nbytes)
            # Header and first chunk in one gathered send: one system call for
            # every reply that fits a chunk.
            self.stream.send_parts([head] if first is None else [head, first])
            try:
                for view in views:
                    self.stream.send_parts([view])
            except CudaError as exc:
                # Part of the reply is out: the frame cannot be finished.
                raise ProtocolError("%s failed halfway through its reply: %s"
                                    % (op.name, exc)) from None
        else:
            self._send(frames.encode_reply(op, request_id, result or ()))

    def _send_error(self, op, request_id, error):
        self._send(frames.encode_error(op.opcode, request_id, error.code, error.message))

    def _send(self, frame):
        self.stream.send_parts([frame])

    def _session_control(self, op, request_id, args):
        if op.session_control == protocol.SESSION_SWITCH_TRANSPORT:
            self._attach_shm(op, request_id, *args)
        else:
            raise ProtocolError("%s is valid only as the first frame of a session" % op.name)

    def _attach_shm(self, op, request_id, ring_bytes):
        if not self.server.shm_enabled or self.stream.kind != "unix":
            self._send_error(op, request_id, CudaError(
                CUresult.CUDA_ERROR_NOT_SUPPORTED,
                "shared memory is offered only on this server's unix socket, and only "
                "when [gpu_server] shm_enabled is true"))
            return
        if self.stream.buffered_bytes:
            raise ProtocolError("frames were pipelined behind SHM_ATTACH")
        ring_bytes = self.server.shm_ring_size(ring_bytes)
        memfd, eventfds = shm_segment.create_segment(ring_bytes)
        sock = self.stream.sock
        shm_segment.send_with_fds(sock, frames.encode_reply(op, request_id, (ring_bytes,)),
                                  [memfd] + eventfds)
        self.stream = ShmRingStream(memfd, eventfds, ring_bytes, sock, "server")
        LOG.debug("%s moved to shared memory, %d-byte rings", self.label, ring_bytes)

    # -- device queries -------------------------------------------------------

    @staticmethod
    def _check_device(device):
        if device != 0:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_DEVICE,
                            "device %d does not exist: a session sees one device, 0" % device)

    def op_ping(self):
        return ()

    def op_device_get_count(self):
        return (1,)

    def op_device_get_name(self, device):
        self._check_device(device)
        name = ("%s (vGPU %s)" % (self.server.backend.device_name, self.vgpu.id)).encode()
        return (), len(name), iter([name])

    def op_device_total_mem(self, device):
        self._check_device(device)
        return (self.memory_map.quota_bytes,)

    def op_device_get_attribute(self, attribute, device):
        self._check_device(device)
        value = device_attributes.vgpu_attribute(self.server.backend.attribute(attribute),
                                                 attribute)
        if value is None:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "device attribute %d is not known to this GPU server" % attribute)
        return (value,)

    def op_driver_get_version(self):
        return (self.server.backend.driver_version(),)

    def op_mem_get_info(self):
        """What the vGPU has left, whichever of its sessions asks."""
        quota = self.memory_map.quota_bytes
        return (max(0, quota - self.memory_map.vgpu_used_bytes), quota)

    # -- memory -----------------------------------------------------------------

    def op_mem_alloc(self, nbytes):
        if nbytes == 0:
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "cuMemAlloc of 0 bytes: ask for at least one byte")
        return (self._allocate(nbytes).dptr,)

    def _allocate(self, nbytes):
        """A new Allocation of the session, within its vGPU's quota."""
        self.memory_map.reserve(nbytes)
        try:
            return self.server.memory.allocate(self, nbytes)
        except BaseException:
            self.memory_map.cancel_reservation(nbytes)
            raise

    def _resolve(self, dptr, nbytes, what):
        """CudaError unless ``[dptr, dptr + nbytes)`` is the session's: in one
        of its allocations, or a variable of one of its modules."""
        try:
            self.memory_map.resolve(dptr, nbytes, what)
        except CudaError:
            for ranges in self.variable_ranges.values():
                if any(start <= dptr and dptr + nbytes <= start + size
                       for start, size in ranges):
                    return
            raise

    def op_mem_free(self, dptr):
        if any(a.dptr == dptr for a in self.module_variables.values()):
            raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                            "cuMemFree of 0x%x, the variables of a loaded module: they go "
                            "with cuModuleUnload" % dptr)
        self.server.memory.release(self, self.memory_map.remove(dptr))

    def op_memcpy_htod(self, dst_dptr, incoming):
        self._to_device(dst_dptr, 0, incoming, "cuMemcpyHtoD")

    def op_memcpy_htod_async(self, dst_dptr, stream, incoming):
        self._to_device(dst_dptr, stream, incoming, "cuMemcpyHtoDAsync")

    def _to_device(self, dst_dptr, stream, incoming, what):
        backend_stream = self._stream(stream)
        self._resolve(dst_dptr, incoming.nbytes, what)
        # The backend hands out destination views chunk by chunk and commits
        # each when asked for the next: the bytes go from the stream straight
        # into device memory (sim) or a pinned staging buffer (cuda).
        for view in self.context.write_views(dst_dptr, incoming.nbytes, backend_stream):
            incoming.read_into(view)
        self.usage.bytes_to_device += incoming.nbytes

    def op_memcpy_dtoh(self, src_dptr, nbytes, stream):
        backend_stream = self._stream(stream)
        self._resolve(src_dptr, nbytes, "cuMemcpyDtoH")
        self.usage.bytes_from_device += nbytes
        return (), nbytes, self.context.read_views(src_dptr, nbytes, backend_stream)

    def op_memcpy_dtod(self, dst_dptr, src_dptr, nbytes, stream):
        backend_stream = self._stream(stream)
        self._resolve(src_dptr, nbytes, "cuMemcpyDtoD source")
        self._resolve(dst_dptr, nbytes, "cuMemcpyDtoD destination")
        self.context.copy_dtod(dst_dptr, src_dptr, nbytes, backend_stream)

    op_memcpy_dtod_async = op_memcpy_dtod

    def _memset(self, dst_dptr, value, count, stream, element_bytes):
        backend_stream = self._stream(stream)
        self._resolve(dst_dptr, count * element_bytes, "cuMemsetD%d" %
                                (8 * element_bytes))
        self.context.memset(dst_dptr, value, count, element_bytes, backend_stream)

    def op_memset_d8(self, dst_dptr, value, count, stream):
        self._memset(dst_dptr, value, count, stream, 1)

    op_memset_d8_async = op_memset_d8

    def op_memset_d32(self, dst_dptr, value, count, stream):
        self._memset(dst_dptr, value, count, stream, 4)

    op_memset_d32_async = op_memset_d32

    def op_memset_d16(self, dst_dptr, value, count, stream):
        self._memset(dst_dptr, value, count, stream, 2)

    op_memset_d16_async = op_memset_d16

    # -- streams and events ------------------------------------------------------

    def _stream(self, handle):
        """Backend stream of a handle; 0 is the session's default stream."""
        return None if handle == 0 else self.streams.get(handle)

    def op_stream_create(self, flags):
        return (self.streams.add(self.context.create_stream(flags)),)

    def op_stream_destroy(self, stream):
        self.context.destroy_stream(self.streams.pop(stream))

    def op_stream_synchronize(self, stream):
        self.context.synchronize_stream(self._stream(stream))

    def op_stream_query(self, stream):
        return (int(self.context.query_stream(self._stream(stream))),)

    def op_stream_wait_event(self, stream, event, flags):
        self.context.wait_event(self._stream(stream), self.events.get(event), flags)

    def op_event_create(self, flags):
        return (self.events.add(self.context.create_event(flags)),)

    def op_event_destroy(self, event):
        self.context.destroy_event(self.events.pop(event))

    def op_event_record(self, event, stream):
        self.context.record_event(self.events.get(event), self._stream(stream))

    def op_event_synchronize(self, event):
        self.context.synchronize_event(self.events.get(event))

    def op_event_query(self, event):
        return (int(self.context.query_event(self.events.get(event))),)

    def op_event_elapsed_time(self, start_event, end_event):
        return (self.context.elapsed_ms(self.events.get(start_event),
                                        self.events.get(end_event)),)

    # -- modules and launches ----------------------------------------------------

    def op_module_load_data(self, incoming):
        with self.server.module_images.held(incoming.nbytes, self.label,
                                            lambda: self.ended_by_server is not None):
            module = self.context.load_module(incoming.read())
        # The module's variables are session memory, counted in the quota
        # as a real GPU's are, so host copies and kernels reach them.
        nbytes = self.context.module_variables_bytes(module)
        allocation = None
        try:
            if nbytes:
                allocation = self._allocate(nbytes)
                self.context.place_module_variables(module, allocation)
        except BaseException:
            if allocation is not None:
                self.server.memory.release(self, self.memory_map.remove(allocation.dptr))
            self.context.unload_module(module)
            raise
        handle = self.modules.add(module)
        if allocation is not None:
            self.module_variables[handle] = allocation
        return (handle,)

    def op_module_unload(self, module):
        self.context.unload_module(self.modules.pop(module))
        self.variable_ranges.pop(module, None)
        allocation = self.module_variables.pop(module, None)
        if allocation is not None:
            self.server.memory.release(self, self.memory_map.remove(allocation.dptr))

    def op_module_get_global(self, module, incoming):
        name = incoming.read().rstrip(b"\x00").decode("utf-8", "replace")
        dptr, nbytes = self.context.module_global(self.modules.get(module), name)
        if module not in self.module_variables:  # the backend's own memory
            self.variable_ranges.setdefault(module, set()).add((dptr, nbytes))
        return dptr, nbytes

    def op_module_get_function(self, module, incoming):
        name = incoming.read().rstrip(b"\x00").decode("utf-8", "replace")
        return (self.functions.add(self.context.get_function(self.modules.get(module), name)),)

    def op_func_get_param_layout(self, function):
        params_bytes, layout = self.context.param_layout(self.functions.get(function))
        entries = b"".join(_PARAM_ENTRY.pack(offset, nbytes) for offset, nbytes in layout)
        return (len(layout), params_bytes), len(entries), iter([entries])

    def op_func_get_attribute(self, function, attribute):
        return (self.context.function_attribute(self.functions.get(function), attribute),)

    def op_func_set_attribute(self, function, attribute, value):
        self.context.set_function_attribute(self.functions.get(function), attribute, value)

    def op_launch_kernel(self, function, grid_x, grid_y, grid_z, block_x, block_y, block_z,
                         shared_mem_bytes, stream, incoming):
        kernel = self.functions.get(function)
        backend_stream = self._stream(stream)
        params = incoming.read()
        scheduler = self.server.scheduler
        scheduler.admit(self)
        try:
            # Waiting for its share, the session could be evicted.
            self.server.memory.make_resident(self)
            self.context.launch(kernel, (grid_x, grid_y, grid_z), (block_x, block_y, block_z),
                                shared_mem_bytes, backend_stream, params, self.memory_map,
                                charge=lambda device_s: scheduler.charge(self, device_s))
        except BaseException:
            scheduler.cancel(self)
            raise
        self.usage.launches += 1

    def op_ctx_synchronize(self):
        self.context.synchronize()


def shutdown_socket(sock, how=socket.SHUT_RDWR):
    """Wake a session thread blocked on ``sock`` so that it ends. The plain
    socket's shutdown, also for a TLS socket: the thread reading it owns
    its TLS state, which must not change under it."""
    try:
        socket.socket.shutdown(sock, how)
    except (OSError, TypeError):
        pass
