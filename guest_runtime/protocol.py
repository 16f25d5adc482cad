"""The OrionX data-plane wire protocol: one table declares every operation.

Both ends derive everything from :data:`OPS`: the client runtime builds its
stubs from it and the GPU server its dispatch; every property of an op that
code branches on is a field of its row. Adding a call is one row here, one
handler ``op_<name>`` in ``orionx_agent.server.session`` and, where the
backends differ, one backend verb. ``docs/protocol.md``'s op table is
generated from the rows (``python -m tools.protocol_doc``).

A frame is a 16-byte header followed by ``payload_bytes`` of payload:

    magic u32 | version u8 | flags u8 | opcode u16 | request_id u32 | payload_bytes u32

A request payload is the op's fixed request struct, then (for ops whose
``buffer`` is :data:`BUF_REQUEST`) a trailing byte buffer filling the rest.
A reply payload starts with an ``i32`` CUresult. On success the reply struct
follows, then the trailing buffer for :data:`BUF_REPLY` ops; on failure the
rest is a UTF-8 message. Everything is little-endian; nothing is pickled.

This module is what a client needs; the server's side of the framing
(which op a request is, its length checks, replies) is
``orionx_agent.frames``.
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
NAME_MAX_BYTES = 4 << 10  # mangled C++ and Numba kernel names run past 256
KERNEL_PARAMS_MAX_BYTES = 4 << 10  # CUDA's own limit on kernel parameters


class ProtocolError(Exception):
    """A frame that breaks this protocol; the receiving end drops the session."""


# Who sends an op's frames. A guest's frames may pass through its host's
# agent (gateway, VM link), which relays them and on a VM's link puts the
# VM's token into its HELLO, but sends no op of its own.
SENT_BY_CLIENT = "client"
SENT_BY_SERVER = "server"

# The ops that steer the session itself rather than the device. Every other
# op is a call, run by the server method ``op_<name>``.
SESSION_OPEN = "open"                  # the first frame, exactly once
SESSION_SWITCH_TRANSPORT = "switch"    # moves the session onto another stream
SESSION_END = "end"                    # the server's last frame


@dataclasses.dataclass(frozen=True)
class Op:
    """One row of the table: everything either end branches on."""

    opcode: int
    name: str
    request: struct.Struct
    request_fields: tuple
    reply: struct.Struct
    reply_fields: tuple
    sync: bool = True
    buffer: str = BUF_NONE
    max_buffer_bytes: int = 0
    buffer_holds: str = ""          # what the trailing buffer is, for readers
    cacheable: bool = False         # read-only; never changes within a session
    touches_device_memory: bool = False  # evicted buffers come back before it runs
    session_control: str | None = None  # SESSION_*; None for a call
    sent_by: str = SENT_BY_CLIENT
    reply_fds: int = 0              # descriptors the reply carries (SCM_RIGHTS)

    @property
    def is_call(self):
        """An ordinary call, executed by :attr:`handler_name`."""
        return self.session_control is None

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


def _op(opcode, name, request, reply, **properties):
    request_struct, request_fields = _fields(request)
    reply_struct, reply_fields = _fields(reply)
    return Op(opcode, name, request_struct, request_fields, reply_struct, reply_fields,
              **properties)


_ASYNC = {"sync": False}
_CACHED = {"cacheable": True}
_DEVICE = {"touches_device_memory": True}

# One row per op: opcode, name, request fields, reply fields ("name:code" in
# struct codes), then only what differs from a synchronous call without a
# buffer. docs/protocol.md's table is generated from these rows.
_TABLE = (
    _op(0x0001, "HELLO", "vgpu_index:I", "session_id:Q memory_total_bytes:Q transports:I",
        buffer=BUF_REQUEST, max_buffer_bytes=TOKEN_MAX_BYTES, buffer_holds="session token",
        session_control=SESSION_OPEN),
    _op(0x0002, "SHM_ATTACH", "ring_bytes:Q", "ring_bytes:Q",
        session_control=SESSION_SWITCH_TRANSPORT, reply_fds=5),
    _op(0x0003, "PING", "", ""),
    _op(0x0010, "DEVICE_GET_COUNT", "", "count:i", **_CACHED),
    _op(0x0011, "DEVICE_GET_NAME", "device:i", "", buffer=BUF_REPLY, buffer_holds="UTF-8 name",
        **_CACHED),
    _op(0x0012, "DEVICE_TOTAL_MEM", "device:i", "total_bytes:Q", **_CACHED),
    _op(0x0013, "DEVICE_GET_ATTRIBUTE", "attribute:i device:i", "value:i", **_CACHED),
    _op(0x0014, "DRIVER_GET_VERSION", "", "version:i", **_CACHED),
    _op(0x0015, "MEM_GET_INFO", "", "free_bytes:Q total_bytes:Q"),
    _op(0x0020, "MEM_ALLOC", "nbytes:Q", "dptr:Q"),
    _op(0x0021, "MEM_FREE", "dptr:Q", "", **_ASYNC),
    _op(0x0022, "MEMCPY_HTOD", "dst_dptr:Q", "", buffer=BUF_REQUEST,
        max_buffer_bytes=DEVICE_BOUNDED, buffer_holds="the data", **_DEVICE),
    _op(0x0023, "MEMCPY_HTOD_ASYNC", "dst_dptr:Q stream:Q", "", buffer=BUF_REQUEST,
        max_buffer_bytes=DEVICE_BOUNDED, buffer_holds="the data", **_ASYNC, **_DEVICE),
    _op(0x0024, "MEMCPY_DTOH", "src_dptr:Q nbytes:Q stream:Q", "", buffer=BUF_REPLY,
        buffer_holds="the data", **_DEVICE),
    _op(0x0025, "MEMCPY_DTOD", "dst_dptr:Q src_dptr:Q nbytes:Q stream:Q", "", **_DEVICE),
    _op(0x0026, "MEMCPY_DTOD_ASYNC", "dst_dptr:Q src_dptr:Q nbytes:Q stream:Q", "",
        **_ASYNC, **_DEVICE),
    _op(0x0027, "MEMSET_D8", "dst_dptr:Q value:B count:Q stream:Q", "", **_DEVICE),
    _op(0x0028, "MEMSET_D8_ASYNC", "dst_dptr:Q value:B count:Q stream:Q", "",
        **_ASYNC, **_DEVICE),
    _op(0x0029, "MEMSET_D32", "dst_dptr:Q value:I count:Q stream:Q", "", **_DEVICE),
    _op(0x002A, "MEMSET_D32_ASYNC", "dst_dptr:Q value:I count:Q stream:Q", "",
        **_ASYNC, **_DEVICE),
    _op(0x002B, "MEMSET_D16", "dst_dptr:Q value:H count:Q stream:Q", "", **_DEVICE),
    _op(0x002C, "MEMSET_D16_ASYNC", "dst_dptr:Q value:H count:Q stream:Q", "",
        **_ASYNC, **_DEVICE),
    _op(0x0030, "STREAM_CREATE", "flags:I", "stream:Q"),
    _op(0x0031, "STREAM_DESTROY", "stream:Q", ""),
    _op(0x0032, "STREAM_SYNCHRONIZE", "stream:Q", ""),
    # Whether the stream's work is done, without waiting: ready 0 is
    # CUDA_ERROR_NOT_READY to the program; a failed kernel is the error.
    _op(0x0033, "STREAM_QUERY", "stream:Q", "ready:I"),
    # Later work of the stream waits for the event's recorded work.
    _op(0x0034, "STREAM_WAIT_EVENT", "stream:Q event:Q flags:I", "", **_ASYNC),
    _op(0x0040, "EVENT_CREATE", "flags:I", "event:Q"),
    _op(0x0041, "EVENT_DESTROY", "event:Q", ""),
    _op(0x0042, "EVENT_RECORD", "event:Q stream:Q", "", **_ASYNC),
    _op(0x0043, "EVENT_SYNCHRONIZE", "event:Q", ""),
    _op(0x0044, "EVENT_ELAPSED_TIME", "start_event:Q end_event:Q", "elapsed_ms:f"),
    _op(0x0045, "EVENT_QUERY", "event:Q", "ready:I"),
    _op(0x0050, "MODULE_LOAD_DATA", "", "module:Q", buffer=BUF_REQUEST,
        max_buffer_bytes=MODULE_IMAGE_MAX_BYTES, buffer_holds="image"),
    _op(0x0051, "MODULE_UNLOAD", "module:Q", ""),
    _op(0x0052, "MODULE_GET_FUNCTION", "module:Q", "function:Q", buffer=BUF_REQUEST,
        max_buffer_bytes=NAME_MAX_BYTES, buffer_holds="name"),
    _op(0x0053, "LAUNCH_KERNEL",
        "function:Q grid_x:I grid_y:I grid_z:I block_x:I block_y:I block_z:I "
        "shared_mem_bytes:I stream:Q", "", buffer=BUF_REQUEST,
        max_buffer_bytes=KERNEL_PARAMS_MAX_BYTES, buffer_holds="parameters", **_ASYNC, **_DEVICE),
    # A function's parameters in order, each "offset:I size:I" (8 bytes,
    # little-endian); params_bytes is the packed buffer's size. The client
    # packs cuLaunchKernel's kernelParams (void**) with it.
    _op(0x0054, "FUNC_GET_PARAM_LAYOUT", "function:Q", "param_count:I params_bytes:I",
        buffer=BUF_REPLY, buffer_holds="offset:I size:I per parameter", **_CACHED),
    # CUfunction_attribute values; a set one (cuFuncSetAttribute) is read back.
    _op(0x0055, "FUNC_GET_ATTRIBUTE", "function:Q attribute:i", "value:i"),
    _op(0x0056, "FUNC_SET_ATTRIBUTE", "function:Q attribute:i value:i", ""),
    # A module's .global or .const variable: its device pointer and size.
    _op(0x0057, "MODULE_GET_GLOBAL", "module:Q", "dptr:Q nbytes:Q", buffer=BUF_REQUEST,
        max_buffer_bytes=NAME_MAX_BYTES, buffer_holds="name"),
    _op(0x0060, "CTX_SYNCHRONIZE", "", ""),
    # Sent by the server, unasked, just before it closes a session: the
    # reply status and message say why (bad token, malformed frame, ...).
    _op(0xFFFF, "SESSION_ENDED", "", "", session_control=SESSION_END,
        sent_by=SENT_BY_SERVER),
)

OPS = {op.opcode: op for op in _TABLE}
OPS_BY_NAME = {op.name: op for op in _TABLE}


def _the_op(session_control):
    (op,) = (op for op in _TABLE if op.session_control == session_control)
    return op


HELLO = _the_op(SESSION_OPEN)
SHM_ATTACH = _the_op(SESSION_SWITCH_TRANSPORT)
SESSION_ENDED = _the_op(SESSION_END)

# The image a program passes to cuModuleLoadData to get the built-in kernels
# (guest_runtime.builtin_kernels) as a module, on every backend.
BUILTIN_MODULE_IMAGE = b"orionx:builtin-kernels\x00"

# What the C library's cuLinkComplete gives for several inputs: this magic,
# then a u32 input count and per input a u32 CUjitInputType, a u64 byte
# count and the bytes (little-endian). cuModuleLoadData of it links the
# inputs on the GPU server (the link errors come from that load).
LINK_IMAGE_MAGIC = b"orionx:link\x00"
LINK_IMAGE_HEADER = struct.Struct("<I")     # input count, after the magic
LINK_IMAGE_INPUT = struct.Struct("<IQ")     # CUjitInputType, bytes


def link_image(inputs):
    """The link image of [(CUjitInputType, bytes)] (as the C library's
    cuLinkComplete writes it for several inputs)."""
    parts = [LINK_IMAGE_MAGIC, LINK_IMAGE_HEADER.pack(len(inputs))]
    for jit_type, data in inputs:
        parts += [LINK_IMAGE_INPUT.pack(jit_type, len(data)), bytes(data)]
    return b"".join(parts)


def link_inputs(image):
    """[(CUjitInputType, bytes)] of a link image, or None for any other
    image; CUDA_ERROR_INVALID_IMAGE for a malformed one."""
    if not image.startswith(LINK_IMAGE_MAGIC):
        return None

    def refuse(what):
        raise CudaError(CUresult.CUDA_ERROR_INVALID_IMAGE,
                        "cuModuleLoadData: the link image %s; make it with cuLinkComplete" % what)
    position = len(LINK_IMAGE_MAGIC) + LINK_IMAGE_HEADER.size
    if len(image) < position:
        refuse("is cut short before its input count")
    (count,) = LINK_IMAGE_HEADER.unpack_from(image, len(LINK_IMAGE_MAGIC))
    inputs = []
    for index in range(count):
        if len(image) < position + LINK_IMAGE_INPUT.size:
            refuse("is cut short at input %d of %d" % (index, count))
        jit_type, nbytes = LINK_IMAGE_INPUT.unpack_from(image, position)
        position += LINK_IMAGE_INPUT.size
        if len(image) < position + nbytes:
            refuse("says input %d has %d bytes; %d are left" % (index, nbytes,
                                                                len(image) - position))
        inputs.append((jit_type, image[position:position + nbytes]))
        position += nbytes
    if not inputs:
        refuse("holds no input")
    if position != len(image):
        refuse("holds %d bytes past its %d inputs" % (len(image) - position, count))
    return inputs


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


def encode_request(op, request_id, args, buffer_bytes=0):
    """Header plus fixed struct of a request; the caller sends the buffer."""
    fixed = op.request.pack(*args)
    return pack_header(op.opcode, 0, request_id, len(fixed) + buffer_bytes) + fixed


__all__ = [
    "BUF_NONE", "BUF_REPLY", "BUF_REQUEST", "BUILTIN_MODULE_IMAGE", "CUresult", "CudaError",
    "HELLO", "HEADER_BYTES", "LINK_IMAGE_HEADER", "LINK_IMAGE_INPUT", "LINK_IMAGE_MAGIC",
    "MAGIC", "OPS", "OPS_BY_NAME", "Op", "ProtocolError",
    "SESSION_ENDED", "SHM_ATTACH", "VERSION",
]
