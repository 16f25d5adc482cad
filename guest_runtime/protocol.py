"""The OrionX data-plane wire protocol: one table declares every operation.

Both ends derive everything from :data:`OPS`: the client runtime builds its
stubs from it and the GPU server its dispatch, so adding a call is one line
here plus its server implementation. ``docs/protocol.md`` describes the same
table for writers of other clients.

A frame is a 16-byte header followed by ``payload_bytes`` of payload:

    magic u32 | version u8 | flags u8 | opcode u16 | request_id u32 | payload_bytes u32

A request payload is the op's fixed request struct, then (for ops whose
``buffer`` is :data:`BUF_REQUEST`) a trailing byte buffer filling the rest.
A reply payload starts with an ``i32`` CUresult. On success the reply struct
follows, then the trailing buffer for :data:`BUF_REPLY` ops; on failure the
rest is a UTF-8 message. Everything is little-endian; nothing is pickled.
"""

import dataclasses
import struct

from guest_runtime.curesult import CudaError, CUresult

MAGIC = 0x584E524F  # b"ORNX" read as a little-endian u32
VERSION = 1
HEADER = struct.Struct("<IBBHII")
HEADER_BYTES = HEADER.size  # 16
STATUS = struct.Struct("<i")

FLAG_REPLY = 0x01

# Transports a server offers, as bits of HELLO's reply.
TRANSPORT_UNIX = 0x1
TRANSPORT_TCP = 0x2
TRANSPORT_SHM = 0x4

# Where an op's trailing buffer travels.
BUF_NONE = "none"
BUF_REQUEST = "request"
BUF_REPLY = "reply"

# max_buffer_bytes for buffers that land in device memory: the server bounds
# them by the destination allocation, so the table needs no number.
DEVICE_BOUNDED = -1

# Module images stay well below this; PTX of large libraries is a few MB.
MODULE_IMAGE_MAX_BYTES = 64 << 20
TOKEN_MAX_BYTES = 8 << 10
NAME_MAX_BYTES = 256
KERNEL_PARAMS_MAX_BYTES = 4 << 10  # CUDA's own limit on kernel parameters


class ProtocolError(Exception):
    """A frame that breaks this protocol; the receiving end drops the session."""


@dataclasses.dataclass(frozen=True)
class Op:
    opcode: int
    name: str
    request: struct.Struct
    request_fields: tuple
    reply: struct.Struct
    reply_fields: tuple
    buffer: str
    sync: bool
    max_buffer_bytes: int
    cacheable: bool

    @property
    def handler_name(self):
        """Name of the server method that executes this op."""
        return "op_" + self.name.lower()


def _fields(spec):
    """``"dptr:Q nbytes:Q"`` -> (Struct("<QQ"), ("dptr", "nbytes"))."""
    names, codes = [], []
    for item in spec.split():
        name, code = item.split(":")
        names.append(name)
        codes.append(code)
    return struct.Struct("<" + "".join(codes)), tuple(names)


SYNC, ASYNC = True, False

# opcode, name, request fields, reply fields, buffer, sync, max buffer bytes,
# cacheable (a read-only query whose answer never changes in a session).
_TABLE = (
    (0x0001, "HELLO", "vgpu_index:I", "session_id:Q memory_total_bytes:Q transports:I",
     BUF_REQUEST, SYNC, TOKEN_MAX_BYTES, False),
    (0x0002, "SHM_ATTACH", "ring_bytes:Q", "ring_bytes:Q", BUF_NONE, SYNC, 0, False),
    (0x0003, "PING", "", "", BUF_NONE, SYNC, 0, False),
    (0x0010, "DEVICE_GET_COUNT", "", "count:i", BUF_NONE, SYNC, 0, True),
    (0x0011, "DEVICE_GET_NAME", "device:i", "", BUF_REPLY, SYNC, 0, True),
    (0x0012, "DEVICE_TOTAL_MEM", "device:i", "total_bytes:Q", BUF_NONE, SYNC, 0, True),
    (0x0013, "DEVICE_GET_ATTRIBUTE", "attribute:i device:i", "value:i",
     BUF_NONE, SYNC, 0, True),
    (0x0014, "DRIVER_GET_VERSION", "", "version:i", BUF_NONE, SYNC, 0, True),
    (0x0015, "MEM_GET_INFO", "", "free_bytes:Q total_bytes:Q", BUF_NONE, SYNC, 0, False),
    (0x0020, "MEM_ALLOC", "nbytes:Q", "dptr:Q", BUF_NONE, SYNC, 0, False),
    (0x0021, "MEM_FREE", "dptr:Q", "", BUF_NONE, ASYNC, 0, False),
    (0x0022, "MEMCPY_HTOD", "dst_dptr:Q", "", BUF_REQUEST, SYNC, DEVICE_BOUNDED, False),
    (0x0023, "MEMCPY_HTOD_ASYNC", "dst_dptr:Q stream:Q", "",
     BUF_REQUEST, ASYNC, DEVICE_BOUNDED, False),
    (0x0024, "MEMCPY_DTOH", "src_dptr:Q nbytes:Q stream:Q", "", BUF_REPLY, SYNC, 0, False),
    (0x0025, "MEMCPY_DTOD", "dst_dptr:Q src_dptr:Q nbytes:Q stream:Q", "",
     BUF_NONE, SYNC, 0, False),
    (0x0026, "MEMCPY_DTOD_ASYNC", "dst_dptr:Q src_dptr:Q nbytes:Q stream:Q", "",
     BUF_NONE, ASYNC, 0, False),
    (0x0027, "MEMSET_D8", "dst_dptr:Q value:B count:Q stream:Q", "", BUF_NONE, SYNC, 0, False),
    (0x0028, "MEMSET_D8_ASYNC", "dst_dptr:Q value:B count:Q stream:Q", "",
     BUF_NONE, ASYNC, 0, False),
    (0x0029, "MEMSET_D32", "dst_dptr:Q value:I count:Q stream:Q", "", BUF_NONE, SYNC, 0, False),
    (0x002A, "MEMSET_D32_ASYNC", "dst_dptr:Q value:I count:Q stream:Q", "",
     BUF_NONE, ASYNC, 0, False),
    (0x0030, "STREAM_CREATE", "flags:I", "stream:Q", BUF_NONE, SYNC, 0, False),
    (0x0031, "STREAM_DESTROY", "stream:Q", "", BUF_NONE, SYNC, 0, False),
    (0x0032, "STREAM_SYNCHRONIZE", "stream:Q", "", BUF_NONE, SYNC, 0, False),
    (0x0040, "EVENT_CREATE", "flags:I", "event:Q", BUF_NONE, SYNC, 0, False),
    (0x0041, "EVENT_DESTROY", "event:Q", "", BUF_NONE, SYNC, 0, False),
    (0x0042, "EVENT_RECORD", "event:Q stream:Q", "", BUF_NONE, ASYNC, 0, False),
    (0x0043, "EVENT_SYNCHRONIZE", "event:Q", "", BUF_NONE, SYNC, 0, False),
    (0x0044, "EVENT_ELAPSED_TIME", "start_event:Q end_event:Q", "elapsed_ms:f",
     BUF_NONE, SYNC, 0, False),
    (0x0050, "MODULE_LOAD_DATA", "", "module:Q", BUF_REQUEST, SYNC, MODULE_IMAGE_MAX_BYTES,
     False),
    (0x0051, "MODULE_UNLOAD", "module:Q", "", BUF_NONE, SYNC, 0, False),
    (0x0052, "MODULE_GET_FUNCTION", "module:Q", "function:Q",
     BUF_REQUEST, SYNC, NAME_MAX_BYTES, False),
    (0x0053, "LAUNCH_KERNEL",
     "function:Q grid_x:I grid_y:I grid_z:I block_x:I block_y:I block_z:I "
     "shared_mem_bytes:I stream:Q", "", BUF_REQUEST, ASYNC, KERNEL_PARAMS_MAX_BYTES, False),
    (0x0060, "CTX_SYNCHRONIZE", "", "", BUF_NONE, SYNC, 0, False),
    # Sent by the server, unasked, just before it closes a session: the
    # reply status and message say why (bad token, malformed frame, ...).
    (0xFFFF, "SESSION_ENDED", "", "", BUF_NONE, SYNC, 0, False),
)


def _build(table):
    ops = {}
    for opcode, name, req, rep, buffer, sync, max_buffer, cacheable in table:
        request, request_fields = _fields(req)
        reply, reply_fields = _fields(rep)
        ops[opcode] = Op(opcode, name, request, request_fields, reply, reply_fields,
                         buffer, sync, max_buffer, cacheable)
    return ops


OPS = _build(_TABLE)
OPS_BY_NAME = {op.name: op for op in OPS.values()}
SESSION_ENDED = OPS_BY_NAME["SESSION_ENDED"]

# The image a program passes to cuModuleLoadData to get the built-in kernels
# (guest_runtime.builtin_kernels) as a module, on every backend.
BUILTIN_MODULE_IMAGE = b"orionx:builtin-kernels\x00"


def pack_header(opcode, flags, request_id, payload_bytes):
    return HEADER.pack(MAGIC, VERSION, flags, opcode, request_id, payload_bytes)


def parse_header(data):
    """(flags, opcode, request_id, payload_bytes) of a header, checked."""
    magic, version, flags, opcode, request_id, payload_bytes = HEADER.unpack(data)
    if magic != MAGIC:
        raise ProtocolError("bad frame magic 0x%08x (expected 0x%08x): the peer does not "
                            "speak the OrionX protocol" % (magic, MAGIC))
    if version != VERSION:
        raise ProtocolError("protocol version %d not supported (this end speaks %d): "
                            "upgrade the older side" % (version, VERSION))
    return flags, opcode, request_id, payload_bytes


def lookup(opcode):
    """The op with ``opcode``, or a ProtocolError naming it."""
    op = OPS.get(opcode)
    if op is None or op is SESSION_ENDED:
        raise ProtocolError("unknown opcode 0x%04x" % opcode)
    return op


def check_request_length(op, payload_bytes):
    """Bytes of trailing buffer in a request of ``payload_bytes``, or raise."""
    buffer_bytes = payload_bytes - op.request.size
    if buffer_bytes < 0:
        raise ProtocolError("%s request of %d bytes is shorter than its %d-byte struct"
                            % (op.name, payload_bytes, op.request.size))
    if op.buffer != BUF_REQUEST and buffer_bytes:
        raise ProtocolError("%s takes no buffer but the request carries %d extra bytes"
                            % (op.name, buffer_bytes))
    if op.max_buffer_bytes != DEVICE_BOUNDED and buffer_bytes > op.max_buffer_bytes:
        raise ProtocolError("%s buffer of %d bytes exceeds its limit of %d bytes"
                            % (op.name, buffer_bytes, op.max_buffer_bytes))
    return buffer_bytes


def encode_request(op, request_id, args, buffer_bytes=0):
    """Header plus fixed struct of a request; the caller sends the buffer."""
    fixed = op.request.pack(*args)
    return pack_header(op.opcode, 0, request_id, len(fixed) + buffer_bytes) + fixed


def encode_reply(op, request_id, fields, buffer_bytes=0):
    """Header, success status and reply struct; the caller sends the buffer."""
    fixed = op.reply.pack(*fields)
    payload = STATUS.size + len(fixed) + buffer_bytes
    return pack_header(op.opcode, FLAG_REPLY, request_id, payload) + STATUS.pack(0) + fixed


def encode_error(opcode, request_id, code, message):
    """A complete failure reply: status ``code`` and a UTF-8 message."""
    text = message.encode("utf-8", "replace")[:4096]
    payload = STATUS.size + len(text)
    return (pack_header(opcode, FLAG_REPLY, request_id, payload)
            + STATUS.pack(int(code)) + text)


__all__ = [
    "BUF_NONE", "BUF_REPLY", "BUF_REQUEST", "BUILTIN_MODULE_IMAGE", "CUresult", "CudaError",
    "HEADER_BYTES", "MAGIC", "OPS", "OPS_BY_NAME", "Op", "ProtocolError", "VERSION",
]
