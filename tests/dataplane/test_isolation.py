"""Memory isolation: quota, foreign pointers, double free, use after free,
out-of-range copies, sticky async errors and cleanup on disconnect."""

import os
import signal
import struct
import subprocess
import sys
import time

import pytest

from guest_runtime import protocol
from guest_runtime.curesult import CudaError, CUresult
from tests.dataplane.conftest import make_token

MB = 1 << 20


def wait_until(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_quota_exhaustion_names_quota_and_use(connect):
    connection = connect(memory_mb=8)
    connection.mem_alloc(6 * MB)
    with pytest.raises(CudaError) as caught:
        connection.mem_alloc(4 * MB)
    assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY == 2
    assert "quota 8 MB" in caught.value.message
    assert "6.0 MB in use" in caught.value.message
    assert connection.mem_get_info() == (2 * MB, 8 * MB)


def test_freeing_makes_room_again(connect):
    connection = connect(memory_mb=8)
    (dptr,) = connection.mem_alloc(8 * MB)
    connection.mem_free(dptr)
    connection.mem_alloc(8 * MB)


def test_foreign_pointers_are_refused(connect):
    owner, intruder = connect(), connect()
    (dptr,) = owner.mem_alloc(4096)
    owner.memcpy_htod(dptr, buffer=b"secret" * 10)
    with pytest.raises(CudaError) as caught:
        intruder.memcpy_dtoh(dptr, 60, 0)
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
    assert "no allocation of this session" in caught.value.message
    with pytest.raises(CudaError):
        intruder.memcpy_htod(dptr, buffer=b"x" * 16)
    # A free of someone else's buffer is asynchronous: it surfaces at the
    # next synchronising call, and the owner's data is untouched.
    intruder.mem_free(dptr)
    with pytest.raises(CudaError) as caught:
        intruder.ctx_synchronize()
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
    assert owner.memcpy_dtoh(dptr, 60, 0)[0] == b"secret" * 10


def test_foreign_pointer_in_kernel_parameters(connect):
    owner, intruder = connect(), connect()
    (victim,) = owner.mem_alloc(4096)
    (module,) = intruder.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (fill,) = intruder.module_get_function(module, buffer=b"fill_f32")
    intruder.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                           buffer=struct.pack("<QQf", victim, 16, 9.0))
    with pytest.raises(CudaError) as caught:
        intruder.ctx_synchronize()
    assert caught.value.code == CUresult.CUDA_ERROR_ILLEGAL_ADDRESS
    assert owner.memcpy_dtoh(victim, 4, 0)[0] == b"\0\0\0\0"


@pytest.mark.parametrize("nbytes", [3000, 5 * MB + 123])
def test_freed_memory_never_shows_another_sessions_data(connect, nbytes):
    first = connect()
    (dptr,) = first.mem_alloc(nbytes)
    first.memcpy_htod(dptr, buffer=b"\xab" * nbytes)
    first.mem_free(dptr)
    first.ping()
    second = connect()
    (reused,) = second.mem_alloc(nbytes)
    assert reused == dptr  # first fit hands out the same block
    assert second.memcpy_dtoh(reused, nbytes, 0)[0] == bytes(nbytes)


def test_double_free_and_use_after_free(connect):
    connection = connect()
    (dptr,) = connection.mem_alloc(1024)
    connection.mem_free(dptr)
    connection.ping()  # the first free succeeded
    connection.mem_free(dptr)
    with pytest.raises(CudaError) as caught:
        connection.ping()
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
    assert "cuMemFree of 0x%x" % dptr in caught.value.message
    with pytest.raises(CudaError) as caught:
        connection.memcpy_dtoh(dptr, 16, 0)
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE


def test_out_of_range_copies(connect):
    connection = connect()
    (dptr,) = connection.mem_alloc(1000)
    with pytest.raises(CudaError) as caught:
        connection.memcpy_htod(dptr + 500, buffer=bytes(600))
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
    assert "past the end" in caught.value.message
    with pytest.raises(CudaError):
        connection.memcpy_dtoh(dptr, 1001, 0)
    with pytest.raises(CudaError):
        connection.memset_d32(dptr, 1, 251, 0)
    (other,) = connection.mem_alloc(1000)
    with pytest.raises(CudaError):
        connection.memcpy_dtod(other, dptr, 2000, 0)
    # The session is still healthy after refused copies.
    connection.memcpy_htod(dptr, buffer=bytes(range(100)))
    assert connection.memcpy_dtoh(dptr, 100, 0)[0] == bytes(range(100))


def test_async_error_is_sticky_until_the_next_sync_call(connect):
    connection = connect()
    (dptr,) = connection.mem_alloc(256)
    connection.memcpy_htod_async(dptr, 0, buffer=bytes(512))  # too long: deferred
    connection.memset_d8_async(dptr, 1, 256, 0)  # skipped after the fault
    with pytest.raises(CudaError) as caught:
        connection.ctx_synchronize()
    assert "512 bytes" in caught.value.message
    assert connection.memcpy_dtoh(dptr, 4, 0)[0] == b"\0\0\0\0"


def test_unknown_handles_are_refused(connect):
    connection = connect()
    with pytest.raises(CudaError) as caught:
        connection.stream_synchronize(12345)
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_HANDLE


def test_close_frees_all_memory(server, connect):
    free_before = server.backend.allocator.free_bytes()
    connection = connect(memory_mb=64)
    for _ in range(4):
        connection.mem_alloc(8 * MB)
    assert server.backend.allocator.free_bytes() == free_before - 32 * MB
    connection.close()
    assert wait_until(lambda: server.backend.allocator.free_bytes() == free_before)
    assert wait_until(lambda: not server.sessions())


CLIENT_THAT_DIES = r"""
import os, sys, time
from guest_runtime.client import Connection
connection = Connection(sys.argv[1], sys.argv[2], transport=sys.argv[3])
for _ in range(3):
    connection.mem_alloc(4 << 20)
print("allocated", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_killed_client_has_its_memory_freed(server, transport):
    free_before = server.backend.allocator.free_bytes()
    endpoint = server.endpoints[0 if transport == "shm" else 1]
    child = subprocess.Popen([sys.executable, "-c", CLIENT_THAT_DIES, endpoint, make_token(),
                              transport], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=os.getcwd()))
    try:
        assert child.stdout.readline().strip() == "allocated"
        assert server.backend.allocator.free_bytes() == free_before - 12 * MB
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        assert wait_until(lambda: server.backend.allocator.free_bytes() == free_before)
    finally:
        child.kill()
        child.wait()


def test_kernel_failure_surfaces_at_the_next_sync_call(connect, monkeypatch):
    from orionx_agent.server import sim_kernels

    def broken(name, values, f32_at):
        raise FloatingPointError("simulated fault in %s" % name)
    connection = connect()
    (dptr,) = connection.mem_alloc(1024)
    (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (fill,) = connection.module_get_function(module, buffer=b"fill_f32")
    monkeypatch.setattr(sim_kernels, "run", broken)
    connection.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                             buffer=struct.pack("<QQf", dptr, 16, 1.0))
    with pytest.raises(CudaError) as caught:
        connection.memcpy_dtoh(dptr, 16, 0)
    assert caught.value.code == CUresult.CUDA_ERROR_LAUNCH_FAILED
    assert "simulated fault in fill_f32" in caught.value.message
    monkeypatch.undo()
    connection.ping()  # reported once; the session goes on
