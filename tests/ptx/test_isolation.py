"""Arbitrary kernels stay inside their session: out-of-bounds writes, reads of
another session's buffer and runaway loops each stop the kernel with their
CUDA error, sticky for that session, and every other session is untouched."""

import struct

import numpy as np
import pytest

from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server.ptx import faults
from tests.ptx import compilers

SOURCE = r"""
extern "C" __global__ void fill(int *out, int n, int value)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = value;
}

extern "C" __global__ void copy(int *dst, const int *src, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        dst[i] = src[i];
}

extern "C" __global__ void spin(volatile int *flag)
{
    while (flag[0] == 0)
        ;
}
"""

N = 256


@pytest.fixture(scope="module")
def ptx():
    return compilers.nvrtc(SOURCE).encode()


def _load(connection, ptx, name):
    (module,) = connection.module_load_data(buffer=ptx)
    (function,) = connection.module_get_function(module, buffer=name.encode())
    return function


def _owner_with_data(session):
    owner = session("vgpu-owner")
    (dptr,) = owner.mem_alloc(4 * N)
    owner.memcpy_htod(dptr, buffer=np.arange(N, dtype=np.int32).tobytes())
    return owner, dptr


def _owner_intact(owner, dptr):
    (data,) = owner.memcpy_dtoh(dptr, 4 * N, 0)
    return np.array_equal(np.frombuffer(data, dtype=np.int32), np.arange(N, dtype=np.int32))


def test_out_of_bounds_write_is_an_illegal_address_and_sticky(session, ptx):
    owner, owner_dptr = _owner_with_data(session)
    writer = session("vgpu-writer")
    (dptr,) = writer.mem_alloc(4 * N)
    fill = _load(writer, ptx, "fill")
    # One element past the end: blocks before the fault may have written,
    # the faulting access and everything outside the buffer did not happen.
    writer.launch_kernel(fill, 2, 1, 1, 256, 1, 1, 0, 0,
                         buffer=struct.pack("<Qii", dptr, N + 1, 7))
    with pytest.raises(CudaError) as caught:
        writer.ctx_synchronize()
    assert caught.value.code == CUresult.CUDA_ERROR_ILLEGAL_ADDRESS
    assert "fill" in caught.value.message and "outside every allocation" in \
        caught.value.message
    # Sticky, as on a real GPU: the next synchronising calls fail the same way.
    for _ in range(2):
        with pytest.raises(CudaError) as again:
            writer.ctx_synchronize()
        assert again.value.code == CUresult.CUDA_ERROR_ILLEGAL_ADDRESS
    assert _owner_intact(owner, owner_dptr)
    # Other sessions run kernels as before.
    other = session("vgpu-other")
    (other_dptr,) = other.mem_alloc(4 * N)
    other.launch_kernel(_load(other, ptx, "fill"), 1, 1, 1, 256, 1, 1, 0, 0,
                        buffer=struct.pack("<Qii", other_dptr, N, 3))
    other.ctx_synchronize()
    (data,) = other.memcpy_dtoh(other_dptr, 4 * N, 0)
    assert set(np.frombuffer(data, dtype=np.int32)) == {3}


def test_reading_another_sessions_buffer_is_refused(session, ptx):
    owner, owner_dptr = _owner_with_data(session)
    intruder = session("vgpu-intruder")
    (loot,) = intruder.mem_alloc(4 * N)
    intruder.launch_kernel(_load(intruder, ptx, "copy"), 1, 1, 1, 256, 1, 1, 0, 0,
                           buffer=struct.pack("<QQi", loot, owner_dptr, N))
    with pytest.raises(CudaError) as caught:
        intruder.ctx_synchronize()
    assert caught.value.code == CUresult.CUDA_ERROR_ILLEGAL_ADDRESS
    assert "0x%x" % owner_dptr in caught.value.message
    assert _owner_intact(owner, owner_dptr)
    with pytest.raises(CudaError) as again:
        intruder.memcpy_dtoh(loot, 4 * N, 0)  # sticky: the context is unusable
    assert again.value.code == CUresult.CUDA_ERROR_ILLEGAL_ADDRESS


def test_runaway_loop_is_stopped_by_the_instruction_budget(session, ptx):
    owner, owner_dptr = _owner_with_data(session)
    looper = session("vgpu-looper")
    (flag,) = looper.mem_alloc(4)
    looper.launch_kernel(_load(looper, ptx, "spin"), 4, 1, 1, 128, 1, 1, 0, 0,
                         buffer=struct.pack("<Q", flag))
    with pytest.raises(CudaError) as caught:
        looper.ctx_synchronize()
    assert caught.value.code == faults.LAUNCH_TIMEOUT
    assert "instruction budget" in caught.value.message
    assert "sim_ptx_instruction_budget" in caught.value.message
    assert _owner_intact(owner, owner_dptr)


def test_launch_shape_and_parameters_are_checked_at_launch(session, ptx):
    connection = session()
    fill = _load(connection, ptx, "fill")
    (dptr,) = connection.mem_alloc(4 * N)
    connection.launch_kernel(fill, 1, 1, 1, 2048, 1, 1, 0, 0,
                             buffer=struct.pack("<Qii", dptr, N, 1))
    with pytest.raises(CudaError) as caught:
        connection.ctx_synchronize()
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
    assert "1024 threads per block" in caught.value.message
    connection.launch_kernel(fill, 1, 1, 1, 32, 1, 1, 0, 0, buffer=struct.pack("<Q", dptr))
    with pytest.raises(CudaError) as caught:
        connection.ctx_synchronize()
    assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
    assert "16 bytes of parameters" in caught.value.message


def test_module_variables_are_each_sessions_own(session):
    from tests.ptx.corpus import MORE_SOURCE
    ptx = compilers.nvrtc(MORE_SOURCE).encode()
    seen = []
    for name in ("vgpu-a", "vgpu-b"):
        connection = session(name)
        polynomial = _load(connection, ptx, "polynomial")
        (x,) = connection.mem_alloc(4 * N)
        (out,) = connection.mem_alloc(4 * N)
        (counter,) = connection.mem_alloc(4)
        for _ in range(2):
            connection.launch_kernel(polynomial, 1, 1, 1, 32, 1, 1, 0, 0,
                                     buffer=struct.pack("<QQQi", x, out, counter, 32))
        connection.ctx_synchronize()
        (data,) = connection.memcpy_dtoh(counter, 4, 0)
        seen.append(struct.unpack("<i", data)[0])
    assert seen == [1, 1]  # each session's second launch saw its own first
