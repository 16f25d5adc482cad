"""The one reader of HELLO, a session's first frame, for every host-side
component that needs it:

* the GPU server's session reads it off its stream (:func:`receive_hello`);
* the agent's gateway must see the session token to decide where a
  connection goes, while the GPU server that ends up serving it (here after
  a hand-over, or on another host behind a relay) must read the very same
  HELLO: it peeks (:func:`peek_hello`, MSG_PEEK leaves every byte in the
  socket), or, on a TLS connection that cannot be peeked, reads it and
  passes the bytes on (:func:`read_hello`);
* the agent's VM channels read the guest's HELLO off the VM link to put the
  VM's token in (:func:`receive_hello`).

All of them parse the frame in :func:`_parse`, against the HELLO row of
the protocol table.
"""

import dataclasses
import socket
import time

from guest_runtime import protocol
from orionx_agent import frames

# The kernel may deliver the frame in pieces; poll for the rest this often.
_PEEK_POLL_S = 0.002


class HelloError(protocol.ProtocolError):
    """The first frame is not a well-formed HELLO; the message says why."""


@dataclasses.dataclass(frozen=True)
class Hello:
    request_id: int
    vgpu_index: int
    token: bytes


def _timed_out():
    return HelloError("no complete HELLO within the time allowed")


def _peek(sock, nbytes, deadline):
    """The first ``nbytes`` waiting in ``sock``, left in place."""
    while True:
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            raise _timed_out()
        sock.settimeout(remaining_s)
        try:
            data = sock.recv(nbytes, socket.MSG_PEEK)
        except TimeoutError:
            raise _timed_out() from None
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


def _consume(read_some):
    """(first, received): ``first(n)`` gives the stream's first ``n`` bytes,
    reading more with ``read_some(count)`` as needed; ``received`` is what
    was read."""
    received = bytearray()

    def first(nbytes):
        while len(received) < nbytes:
            try:
                data = read_some(nbytes - len(received))
            except TimeoutError:
                raise _timed_out() from None
            if not data:
                raise HelloError("the guest closed the connection before HELLO")
            received.extend(data)
        return bytes(received[:nbytes])

    return first, received


def read_hello(conn, timeout_s=10.0):
    """(HELLO, the bytes read) from ``conn``, which cannot peek (TLS): the
    caller passes those bytes on to whoever serves the session."""
    conn.settimeout(timeout_s)
    first, received = _consume(conn.recv)
    hello = _parse(first)
    conn.settimeout(None)
    return hello, bytes(received)


def receive_hello(stream):
    """The HELLO that starts ``stream`` (any transport stream), consumed. A
    socket timeout the caller set bounds the wait."""
    first, _received = _consume(stream.recv_exact)
    return _parse(first)


def _parse(first):
    """The HELLO whose frame starts the stream; ``first(n)`` gives the
    stream's first ``n`` bytes."""
    op = protocol.HELLO
    head = first(protocol.HEADER_BYTES)
    try:
        _flags, opcode, request_id, payload_bytes = protocol.parse_header(head)
    except protocol.ProtocolError as exc:
        raise HelloError(str(exc)) from None
    if opcode != op.opcode:
        name = getattr(protocol.OPS.get(opcode), "name", "unknown opcode")
        raise HelloError("the first frame must be HELLO, got %s (0x%04x)" % (name, opcode))
    if not op.request.size <= payload_bytes <= op.request.size + op.max_buffer_bytes:
        raise HelloError("HELLO of %d payload bytes: a token is at most %d bytes"
                         % (payload_bytes, op.max_buffer_bytes))
    frame = first(protocol.HEADER_BYTES + payload_bytes)
    body = frame[protocol.HEADER_BYTES:]
    (vgpu_index,) = op.request.unpack(body[:op.request.size])
    return Hello(request_id, vgpu_index, bytes(body[op.request.size:]))


def refuse(sock, hello, code, message):
    """Answer HELLO with an error, as a GPU server would, and close."""
    try:
        sock.sendall(frames.encode_error(protocol.HELLO.opcode,
                                           hello.request_id if hello else 0, code, message))
    except OSError:
        pass
    finally:
        sock.close()
