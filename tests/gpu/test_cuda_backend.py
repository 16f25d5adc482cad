"""The cuda backend on a real GPU: the data-plane checks of tests/dataplane
again, plus a program's own PTX. Skipped, with the reason, where cuda-python
or a GPU is missing; run them all with tests/gpu/run.sh."""

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from guest_runtime import kernels, protocol, runtime
from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server import cuda_backend
from orionx_agent.server.server import GpuServer
from tests.dataplane.conftest import SECRET, make_token

REASON = cuda_backend.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason="cuda backend unavailable: %s"
                                % REASON)

SAXPY_SOURCE = r"""
extern "C" __global__ void my_saxpy(float a, const float *x, float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}
"""


@pytest.fixture(scope="module")
def server():
    directory = tempfile.mkdtemp(prefix="oxgpu-", dir="/tmp")
    srv = GpuServer(cuda_backend.CudaGpu(0), SECRET,
                    unix_socket_path=os.path.join(directory, "gpu.sock"),
                    tcp_address=("127.0.0.1", 0)).start()
    yield srv
    srv.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def driver(server):
    from guest_runtime import cuda

    def init(transport="shm", memory_mb=256):
        endpoint = server.endpoints[1 if transport == "tcp" else 0]
        runtime.configure(endpoint=endpoint, token=make_token(memory_mb), transport=transport)
        assert cuda.cuInit(0)[0] == 0
        return cuda
    yield init
    runtime.reset()


def ok(result):
    from guest_runtime import cuda
    assert result[0] == 0, (result, cuda.last_error_message())
    return result[1] if len(result) == 2 else result[1:]


@pytest.mark.parametrize("transport", ["shm", "unix", "tcp"])
def test_builtin_kernels_on_the_gpu(driver, transport):
    cuda = driver(transport)
    n = 1 << 20
    rng = np.random.default_rng(0)
    x, y = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    d_x, d_y, d_sum = ok(cuda.cuMemAlloc(x.nbytes)), ok(cuda.cuMemAlloc(y.nbytes)), \
        ok(cuda.cuMemAlloc(4))
    ok(cuda.cuMemcpyHtoD(d_x, x, x.nbytes))
    ok(cuda.cuMemcpyHtoD(d_y, y, y.nbytes))
    kernels.axpy_f32(d_y, d_x, n, 2.0)
    kernels.sum_f32(d_sum, d_y, n)
    out, total = np.empty_like(y), np.empty(1, np.float32)
    ok(cuda.cuMemcpyDtoH(out, d_y, out.nbytes))
    ok(cuda.cuMemcpyDtoH(total, d_sum, 4))
    np.testing.assert_allclose(out, np.float32(2.0) * x + y, rtol=1e-6)
    assert total[0] == pytest.approx(float(out.astype(np.float64).sum()), rel=1e-3)

    m, k, nn = 200, 70, 130
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, nn), dtype=np.float32)
    d_a, d_b, d_c = (ok(cuda.cuMemAlloc(s)) for s in (a.nbytes, b.nbytes, 4 * m * nn))
    ok(cuda.cuMemcpyHtoD(d_a, a, a.nbytes))
    ok(cuda.cuMemcpyHtoD(d_b, b, b.nbytes))
    kernels.gemm_f32(d_c, d_a, d_b, m, nn, k)
    c = np.empty((m, nn), np.float32)
    ok(cuda.cuMemcpyDtoH(c, d_c, c.nbytes))
    np.testing.assert_allclose(c, a @ b, rtol=1e-3, atol=1e-3)


def test_programs_own_ptx(driver):
    from cuda.bindings import nvrtc  # the real one, in this test process
    prog = nvrtc.nvrtcCreateProgram(SAXPY_SOURCE.encode(), b"saxpy.cu", 0, [], [])[1]
    assert int(nvrtc.nvrtcCompileProgram(prog, 1, [b"--gpu-architecture=compute_70"])[0]) == 0
    size = nvrtc.nvrtcGetPTXSize(prog)[1]
    ptx = b" " * size
    nvrtc.nvrtcGetPTX(prog, ptx)
    cuda = driver("shm")
    module = ok(cuda.cuModuleLoadData(ptx))
    function = ok(cuda.cuModuleGetFunction(module, b"my_saxpy"))
    n = 5000
    x, y = np.arange(n, dtype=np.float32), np.ones(n, dtype=np.float32)
    d_x, d_y = ok(cuda.cuMemAlloc(x.nbytes)), ok(cuda.cuMemAlloc(y.nbytes))
    ok(cuda.cuMemcpyHtoD(d_x, x, x.nbytes))
    ok(cuda.cuMemcpyHtoD(d_y, y, y.nbytes))
    args = ((3.0, d_x, d_y, n), (ctypes.c_float, None, None, ctypes.c_int))
    ok(cuda.cuLaunchKernel(function, (n + 255) // 256, 1, 1, 256, 1, 1, 0, 0, args, 0))
    ok(cuda.cuMemcpyDtoH(y, d_y, y.nbytes))
    np.testing.assert_allclose(y, 3.0 * x + 1.0)


def test_bulk_copies_larger_than_the_staging_buffer(driver):
    cuda = driver("shm", memory_mb=64)
    data = np.random.default_rng(1).integers(0, 255, 20 << 20, dtype=np.uint8)
    d_data = ok(cuda.cuMemAlloc(data.nbytes))
    ok(cuda.cuMemcpyHtoD(d_data, data, data.nbytes))
    back = np.zeros_like(data)
    ok(cuda.cuMemcpyDtoH(back, d_data, back.nbytes))
    assert np.array_equal(back, data)


def test_isolation_on_the_gpu(server):
    endpoint = server.endpoints[0]
    owner = Connection(endpoint, make_token(memory_mb=8))
    intruder = Connection(endpoint, make_token(memory_mb=8))
    try:
        (dptr,) = owner.mem_alloc(4096)
        with pytest.raises(CudaError) as caught:
            intruder.memcpy_dtoh(dptr, 16, 0)
        assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
        with pytest.raises(CudaError) as caught:
            owner.mem_alloc(8 << 20)
        assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
        (module,) = intruder.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
        (fill,) = intruder.module_get_function(module, buffer=b"fill_f32")
        import struct
        intruder.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                               buffer=struct.pack("<QQf", dptr, 16, 1.0))
        with pytest.raises(CudaError) as caught:
            intruder.ctx_synchronize()
        assert caught.value.code == CUresult.CUDA_ERROR_ILLEGAL_ADDRESS
    finally:
        owner.close()
        intruder.close()


@pytest.mark.parametrize("example", ["saxpy.py", "gemm.py"])
def test_examples_under_orionx_run(server, example):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-m", "guest_runtime.run", "--endpoint", server.endpoints[0],
         "--token", make_token(memory_mb=256), "--", sys.executable, "examples/" + example],
        cwd=repo, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
