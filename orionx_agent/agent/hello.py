"""Read a guest's HELLO frame without taking it out of the socket.

The gateway must see the session token to decide where a connection goes,
but the GPU server that ends up serving it (here after a hand-over, or on
another host behind a relay) must read the very same HELLO. Peeking
(MSG_PEEK) leaves every byte in the socket for whoever serves it next. A
TLS connection cannot be peeked: its HELLO is read, and the gateway sends
those bytes on itself.
"""

import dataclasses
import socket
import time

from guest_runtime import protocol

HELLO = protocol.OPS_BY_NAME["HELLO"]
# The kernel may deliver the frame in pieces; poll for the rest this often.
_PEEK_POLL_S = 0.002


class HelloError(Exception):
    """The first frame is not a well-formed HELLO; the message says why."""


@dataclasses.dataclass(frozen=True)
class Hello:
    request_id: int
    vgpu_index: int
    token: bytes


def _peek(sock, nbytes, deadline):
    """The first ``nbytes`` waiting in ``sock``, left in place."""
    while True:
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            raise HelloError("no complete HELLO within the time allowed")
        sock.settimeout(remaining_s)
        try:
            data = sock.recv(nbytes, socket.MSG_PEEK)
        except TimeoutError:
            raise HelloError("no complete HELLO within the time allowed") from None
        if not data:
            raise HelloError("the guest closed the connection before HELLO")
        if len(data) >= nbytes:
            return data
        time.sleep(_PEEK_POLL_S)


def peek_hello(sock, timeout_s=10.0):
    """The HELLO at the head of ``sock``'s input, still unread."""
    deadline = time.monotonic() + timeout_s
    hello = _parse(lambda nbytes: _peek(sock, nbytes, deadline))
    sock.settimeout(None)
    return hello


def read_hello(conn, timeout_s=10.0):
    """(HELLO, the bytes read) from ``conn``, which cannot peek (TLS): the
    caller passes those bytes on to whoever serves the session."""
    received = bytearray()
    conn.settimeout(timeout_s)

    def first(nbytes):
        while len(received) < nbytes:
            try:
                data = conn.recv(nbytes - len(received))
            except TimeoutError:
                raise HelloError("no complete HELLO within the time allowed") from None
            if not data:
                raise HelloError("the guest closed the connection before HELLO")
            received.extend(data)
        return bytes(received[:nbytes])

    hello = _parse(first)
    conn.settimeout(None)
    return hello, bytes(received)


def _parse(first):
    """The HELLO whose frame starts the stream; ``first(n)`` gives the
    stream's first ``n`` bytes."""
    op = HELLO
    head = first(protocol.HEADER_BYTES)
    try:
        _flags, opcode, request_id, payload_bytes = protocol.parse_header(
            head[:protocol.HEADER_BYTES])
    except protocol.ProtocolError as exc:
        raise HelloError(str(exc)) from None
    if opcode != op.opcode:
        raise HelloError("the first frame must be HELLO, got opcode 0x%04x" % opcode)
    if not op.request.size <= payload_bytes <= op.request.size + op.max_buffer_bytes:
        raise HelloError("HELLO of %d payload bytes: a token is at most %d bytes"
                         % (payload_bytes, op.max_buffer_bytes))
    frame = first(protocol.HEADER_BYTES + payload_bytes)
    body = frame[protocol.HEADER_BYTES:protocol.HEADER_BYTES + payload_bytes]
    (vgpu_index,) = op.request.unpack(body[:op.request.size])
    return Hello(request_id, vgpu_index, bytes(body[op.request.size:]))


def refuse(sock, hello, code, message):
    """Answer HELLO with an error, as a GPU server would, and close."""
    op = HELLO
    try:
        sock.sendall(protocol.encode_error(op.opcode, hello.request_id if hello else 0,
                                           code, message))
    except OSError:
        pass
    finally:
        sock.close()
