"""The one HELLO reader: the gateway peeks without consuming, TLS and the
GPU server's sessions read it, and refusals look like a server's."""

import socket

import pytest

from guest_runtime import protocol
from guest_runtime.curesult import CUresult
from guest_runtime.streams import SocketStream
from orionx_agent import hello


def _hello_frame(token, vgpu_index=0, request_id=7):
    return protocol.encode_request(protocol.HELLO, request_id, (vgpu_index,),
                                   len(token)) + token


def test_peek_leaves_the_frame_for_the_server():
    guest, gateway = socket.socketpair()
    frame = _hello_frame(b"v1.token.signature", vgpu_index=2)
    guest.sendall(frame)
    seen = hello.peek_hello(gateway, timeout_s=2)
    assert (seen.request_id, seen.vgpu_index, seen.token) == (7, 2, b"v1.token.signature")
    assert gateway.recv(len(frame) + 10) == frame
    guest.close()
    gateway.close()


def test_not_hello_or_silence_is_refused():
    guest, gateway = socket.socketpair()
    guest.sendall(protocol.encode_request(protocol.OPS_BY_NAME["PING"], 1, (), 0))
    with pytest.raises(hello.HelloError, match="must be HELLO"):
        hello.peek_hello(gateway, timeout_s=2)
    quiet_guest, quiet_gateway = socket.socketpair()
    with pytest.raises(hello.HelloError, match="no complete HELLO"):
        hello.peek_hello(quiet_gateway, timeout_s=0.2)
    for sock in (guest, gateway, quiet_guest, quiet_gateway):
        sock.close()


def test_refusal_is_a_hello_error_reply():
    guest, gateway = socket.socketpair()
    guest.sendall(_hello_frame(b"t"))
    seen = hello.peek_hello(gateway, timeout_s=2)
    hello.refuse(gateway, seen, CUresult.CUDA_ERROR_NOT_PERMITTED, "token expired")
    reply = guest.recv(4096)
    _flags, opcode, request_id, payload_bytes = protocol.parse_header(
        reply[:protocol.HEADER_BYTES])
    (status,) = protocol.STATUS.unpack_from(reply, protocol.HEADER_BYTES)
    assert (opcode, request_id, status) == (protocol.HELLO.opcode, 7,
                                            CUresult.CUDA_ERROR_NOT_PERMITTED)
    assert reply.endswith(b"token expired")
    guest.close()


def test_read_and_receive_take_the_frame_and_give_the_same_hello():
    frame = _hello_frame(b"v1.t.s", vgpu_index=1, request_id=9)
    guest, server = socket.socketpair()
    guest.sendall(frame + b"next frame")
    seen, taken = hello.read_hello(server, timeout_s=2)
    assert taken == frame and (seen.request_id, seen.vgpu_index, seen.token) == (9, 1, b"v1.t.s")
    guest.sendall(frame)
    stream = SocketStream(server)
    assert stream.recv_exact(len(b"next frame")) == b"next frame"
    assert hello.receive_hello(stream) == seen
    guest.close()
    server.close()


@pytest.mark.parametrize("frame, words", [
    (protocol.encode_request(protocol.OPS_BY_NAME["PING"], 1, (), 0), "must be HELLO, got PING"),
    (protocol.pack_header(protocol.HELLO.opcode, 0, 1, 4 + 9000), "at most 8192 bytes"),
    (b"GET / HTTP/1.1\r\n\r\n", "magic"),
])
def test_every_reader_refuses_what_is_not_hello(frame, words):
    guest, server = socket.socketpair()
    guest.sendall(frame)
    with pytest.raises(hello.HelloError, match=words):
        hello.receive_hello(SocketStream(server))
    assert issubclass(hello.HelloError, protocol.ProtocolError)  # a session ends on it
    guest.close()
    server.close()
