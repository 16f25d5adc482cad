"""Fuzzed frames against a live server: a broken session ends alone, the
server and every other session carry on, and nothing leaks."""

import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guest_runtime import protocol
from tests.dataplane.conftest import make_token

FUZZ_SETTINGS = settings(max_examples=120, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])
OPCODES = sorted(protocol.OPS)


def raw_session(server):
    """A unix socket past a valid HELLO."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(server.unix_socket_path)
    op = protocol.OPS_BY_NAME["HELLO"]
    token = make_token().encode()
    sock.sendall(protocol.encode_request(op, 1, (0,), len(token)) + token)
    _read_until_closed_or(sock, 16 + 4 + op.reply.size)
    return sock


def _read_until_closed_or(sock, nbytes):
    data = b""
    while len(data) < nbytes:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def finish(sock):
    """Close our side and drain whatever the server still says."""
    try:
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    except OSError:
        pass
    sock.close()


def assert_healthy(connection):
    (dptr,) = connection.mem_alloc(64)
    connection.memcpy_htod(dptr, buffer=b"k" * 64)
    assert connection.memcpy_dtoh(dptr, 64, 0)[0] == b"k" * 64
    connection.mem_free(dptr)
    connection.ping()


def field_values(fmt):
    """A strategy of values for a struct format, mostly small and in range."""
    parts = []
    for code in fmt.format.lstrip("<"):
        if code == "f":
            parts.append(st.floats(width=32, allow_nan=True))
        else:
            bits = struct.calcsize(code) * 8
            low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if code.islower() \
                else (0, (1 << bits) - 1)
            parts.append(st.one_of(st.integers(0, 4096).filter(lambda v, h=high: v <= h),
                                   st.integers(low, high)))
    return st.tuples(*parts)


@st.composite
def well_formed_frames(draw):
    op = protocol.OPS[draw(st.sampled_from(OPCODES))]
    args = draw(field_values(op.request))
    buffer = draw(st.binary(max_size=256)) if op.buffer == protocol.BUF_REQUEST else b""
    return protocol.encode_request(op, draw(st.integers(0, 2**32 - 1)), args, len(buffer)) + buffer


@st.composite
def broken_frames(draw):
    header = protocol.HEADER.pack(
        draw(st.sampled_from([protocol.MAGIC, protocol.MAGIC ^ 1, 0])),
        draw(st.sampled_from([protocol.VERSION, 0, 2, 255])),
        draw(st.integers(0, 255)),
        draw(st.one_of(st.sampled_from(OPCODES), st.integers(0, 0xFFFF))),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1))))
    return header + draw(st.binary(max_size=128))


@FUZZ_SETTINGS
@given(frames=st.lists(st.one_of(well_formed_frames(), well_formed_frames(), well_formed_frames(),
                                 broken_frames(), st.binary(min_size=1, max_size=64)),
                       min_size=1, max_size=8))
def test_fuzzed_frames_do_not_disturb_the_server(server, connect, frames):
    bystander = connect()
    sock = raw_session(server)
    try:
        sock.sendall(b"".join(frames))
    except OSError:
        pass  # the server may already have dropped us
    finish(sock)
    assert_healthy(bystander)
    # Closed per example: the vGPU's sessions are bounded (max_sessions_per_vgpu).
    bystander.close()


def test_server_survives_fuzzing_and_frees_everything(server, connect):
    free_before = server.backend.allocator.free_bytes()
    bystander = connect()
    for _ in range(20):
        sock = raw_session(server)
        alloc = protocol.OPS_BY_NAME["MEM_ALLOC"]
        sock.sendall(protocol.encode_request(alloc, 2, (1 << 20,)))
        sock.sendall(b"\xff" * 40)  # then garbage: the session must end, freeing 1 MB
        finish(sock)
    assert_healthy(bystander)
    bystander.close()
    from tests.dataplane.test_isolation import wait_until
    assert wait_until(lambda: server.backend.allocator.free_bytes() == free_before)
    assert wait_until(lambda: not server.sessions())


def test_garbage_before_hello_is_refused(server):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(server.unix_socket_path)
    sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    reply = _read_until_closed_or(sock, 1 << 16)
    sock.close()
    assert b"protocol error" in reply and b"magic" in reply


def test_corrupted_shm_ring_ends_only_that_session(server, connect):
    import os

    from guest_runtime import shm_ring
    bystander = connect("shm")
    victim = connect("shm")
    ring = victim.stream._tx
    ring.set_word(shm_ring._HEAD, ring.word(shm_ring._TAIL) + (1 << 40))  # beyond the ring
    os.eventfd_write(ring.data_fd, 1)
    from tests.dataplane.test_isolation import wait_until
    assert wait_until(lambda: len(server.sessions()) == 1)
    assert_healthy(bystander)


def test_shm_segment_cannot_be_shrunk_by_the_client(connect):
    import os
    connection = connect("shm")
    with pytest.raises(PermissionError):
        os.ftruncate(connection.stream._memfd, 4096)
