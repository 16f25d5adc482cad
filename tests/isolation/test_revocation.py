"""Ending sessions from outside: preemption and revocation on a GPU server.

A session ends within the bound docs/qos.md names even while its own
thread is stuck in the middle of a frame (a client that announced a large
copy and stalled), and its memory is freed; a revoked token opens no new
session.
"""

import time

import pytest

from guest_runtime import protocol
from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.dev_tokens import development_token
from orionx_agent.server.control import ControlClient, ControlError
from orionx_agent.server.session import ENDED_WAIT_S, ENDING_LOCK_WAIT_S
from orionx_common.agent_rpcapi import REVOKE_ALL_GENERATIONS
from tests.qos.conftest import SECRET, qos_server  # noqa: F401  (fixture)

MB = 1 << 20
# What docs/qos.md promises for ending a session from outside.
ENDING_BOUND_S = 1.0


def _token(generation=0, allocation_id="a1", memory_mb=256):
    return development_token(SECRET, 50, memory_mb, vgpu_id="v1",
                             allocation_id=allocation_id, ttl_s=600, generation=generation)


@pytest.fixture
def gpu(qos_server):  # noqa: F811
    server = qos_server(memory_mb=256)
    control = ControlClient(server.control.path)
    yield server, control
    control.close()


def _stall_mid_frame(connection):
    """Send a cuMemcpyHtoD header announcing 64 MB, then 1 KB, then nothing."""
    (dptr,) = connection.mem_alloc(64 * MB)
    op = protocol.OPS_BY_NAME["MEMCPY_HTOD"]
    head = protocol.encode_request(op, 99, (dptr,), 64 * MB)
    connection.stream.send_parts([head, b"\0" * 1024])
    return dptr


def _wait_gone(control, bound_s):
    """Seconds until the server holds no session and no memory, or None."""
    started = time.monotonic()
    while time.monotonic() - started < bound_s:
        usage = control.usage()
        if not usage["sessions"] and usage["gpu"]["memory_used_mb"] == 0:
            return time.monotonic() - started
        time.sleep(0.02)
    return None


@pytest.mark.parametrize("end", ["preempt", "revoke"])
def test_session_stalled_mid_frame_is_ended_and_freed(gpu, end):
    server, control = gpu
    connection = Connection(server.endpoints[0], _token(), transport="unix")
    connection.mem_alloc(64 * MB)
    _stall_mid_frame(connection)
    time.sleep(0.3)  # the session's thread is now reading the 64 MB
    assert control.usage()["gpu"]["memory_used_mb"] == 128
    started = time.monotonic()
    if end == "preempt":
        control.preempt("a1")
    else:
        control.revoke("a1", REVOKE_ALL_GENERATIONS, "deleted")
    gone_s = _wait_gone(control, ENDING_BOUND_S)
    assert gone_s is not None, "the stalled session outlived %s by %.1f s" % (
        end, ENDING_BOUND_S)
    assert time.monotonic() - started <= ENDING_BOUND_S
    with pytest.raises(CudaError) as caught:
        connection.ctx_synchronize()
    assert caught.value.code in (CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE,
                                 CUresult.CUDA_ERROR_MPS_CLIENT_TERMINATED)
    connection.close()


def test_the_bound_is_what_the_session_code_waits():
    assert ENDING_LOCK_WAIT_S + ENDED_WAIT_S <= ENDING_BOUND_S


def test_revoked_live_session_learns_why(gpu):
    server, control = gpu
    connection = Connection(server.endpoints[0], _token(), transport="unix")
    connection.mem_alloc(MB)
    result = control.revoke("a1", REVOKE_ALL_GENERATIONS, "deleted")
    assert result["sessions"] == [connection.session_id]
    with pytest.raises(CudaError) as caught:
        connection.mem_alloc(MB)
    assert caught.value.code == CUresult.CUDA_ERROR_MPS_CLIENT_TERMINATED
    assert "allocation a1 was revoked (deleted): ask for a new token" in caught.value.message
    assert _wait_gone(control, ENDING_BOUND_S) is not None
    connection.close()


@pytest.mark.parametrize("transport", ["unix", "shm", "tcp"])
def test_replayed_token_is_refused_at_hello(qos_server, transport):  # noqa: F811
    server = qos_server(tcp=True)
    control = ControlClient(server.control.path)
    endpoint = server.endpoints[1] if transport == "tcp" else server.endpoints[0]
    control.revoke("a1", REVOKE_ALL_GENERATIONS, "deleted")
    with pytest.raises(CudaError) as caught:
        Connection(endpoint, _token(), transport=transport)
    assert caught.value.code == CUresult.CUDA_ERROR_NOT_PERMITTED
    assert "allocation a1 was revoked (deleted)" in caught.value.message
    Connection(endpoint, _token(allocation_id="a2"), transport=transport).close()
    control.close()


def test_only_older_generations_are_revoked(gpu):
    server, control = gpu
    old = Connection(server.endpoints[0], _token(generation=2), transport="unix")
    current = Connection(server.endpoints[0], _token(generation=3), transport="unix")
    result = control.revoke("a1", 3, "unbound")
    assert result["sessions"] == [old.session_id]
    with pytest.raises(CudaError, match="revoked"):
        old.ctx_synchronize()
    current.mem_alloc(MB)  # the new binding goes on
    with pytest.raises(CudaError) as caught:
        Connection(server.endpoints[0], _token(generation=2), transport="unix")
    assert caught.value.code == CUresult.CUDA_ERROR_NOT_PERMITTED
    Connection(server.endpoints[0], _token(generation=3), transport="unix").close()
    # A later, lower revocation does not undo a higher one.
    control.revoke("a1", 1, "late cast")
    with pytest.raises(CudaError):
        Connection(server.endpoints[0], _token(generation=2), transport="unix")
    old.close()
    current.close()


def test_bad_revocations_are_refused(gpu):
    _, control = gpu
    for args in (("", 1), ("a1", -1), ("a1", "x"), ("a1", True)):
        with pytest.raises(ControlError):
            control.revoke(*args, reason="x")
