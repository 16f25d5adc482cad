"""The gateway reads HELLO without consuming it, and refuses like a server."""

import socket

import pytest

from guest_runtime import protocol
from guest_runtime.curesult import CUresult
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
