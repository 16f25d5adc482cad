"""The server's side of the wire protocol's framing, for the GPU server and
the agent (which answers a refused HELLO as a server would): which op a
client's frame is, whether its length fits the op's row, and replies. The
table and the client's side are ``guest_runtime.protocol``.
"""

from guest_runtime.protocol import (
    BUF_REQUEST,
    DEVICE_BOUNDED,
    FLAG_REPLY,
    OPS,
    SENT_BY_CLIENT,
    STATUS,
    ProtocolError,
    pack_header,
)

# A failure reply's message is cut here: it is one line for a person.
ERROR_MESSAGE_MAX_BYTES = 4096


def lookup(opcode):
    """The op a client may send with ``opcode``, or a ProtocolError naming it."""
    op = OPS.get(opcode)
    if op is None or op.sent_by != SENT_BY_CLIENT:
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


def encode_reply(op, request_id, fields, buffer_bytes=0):
    """Header, success status and reply struct; the caller sends the buffer."""
    fixed = op.reply.pack(*fields)
    payload = STATUS.size + len(fixed) + buffer_bytes
    return pack_header(op.opcode, FLAG_REPLY, request_id, payload) + STATUS.pack(0) + fixed


def encode_error(opcode, request_id, code, message):
    """A complete failure reply: status ``code`` and a UTF-8 message."""
    text = message.encode("utf-8", "replace")[:ERROR_MESSAGE_MAX_BYTES]
    payload = STATUS.size + len(text)
    return (pack_header(opcode, FLAG_REPLY, request_id, payload)
            + STATUS.pack(int(code)) + text)
