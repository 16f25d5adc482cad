"""What only a real GPU can show of the cuda backend: a program's own PTX
(compiled with NVRTC) and the examples under orionx-run. The checks both
the GPU and the stand-in driver run (built-in kernels, staged copies,
isolation; compute shares and eviction) are parametrised by backend in
tests/dataplane/test_cuda_backend.py and tests/qos/test_cuda_qos.py.
Skipped, with the reason, where cuda-python or a GPU is missing; run them
all with tests/gpu/run.sh."""

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from guest_runtime import runtime
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
                    unix_socket_path=os.path.join(directory, "gpu.sock")).start()
    yield srv
    srv.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def driver(server):
    from guest_runtime import cuda

    def init(transport="shm", memory_mb=256):
        runtime.configure(endpoint=server.endpoints[0], token=make_token(memory_mb),
                          transport=transport)
        assert cuda.cuInit(0)[0] == 0
        return cuda
    yield init
    runtime.reset()


def ok(result):
    from guest_runtime import cuda
    assert result[0] == 0, (result, cuda.last_error_message())
    return result[1] if len(result) == 2 else result[1:]


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


@pytest.mark.parametrize("example", ["saxpy.py", "gemm.py"])
def test_examples_under_orionx_run(server, example):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-m", "guest_runtime.run", "--endpoint", server.endpoints[0],
         "--token", make_token(memory_mb=256), "--", sys.executable, "examples/" + example],
        cwd=repo, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
