"""What only a real GPU can show of the cuda backend: a program's own PTX
(compiled with NVRTC) and the examples under orionx-run. The checks both
the GPU and the stand-in driver run (built-in kernels, staged copies,
isolation; compute shares and eviction) are parametrised by backend in
tests/dataplane/test_cuda_backend.py and tests/qos/test_cuda_qos.py.
Skipped, with the reason, where cuda-python or a GPU is missing; run them
all with tests/gpu/run.sh."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from orionx_agent.server import cuda_backend
from orionx_agent.server.server import GpuServer
from tests.dataplane.conftest import SECRET, make_token
from tests.dataplane.driver_checks import run_checks
from tests.libcuda.conftest import client_environment, libcuda_dir  # noqa: F401 - fixture

REASON = cuda_backend.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason="cuda backend unavailable: %s"
                                % REASON)


@pytest.fixture(scope="module")
def server():
    directory = tempfile.mkdtemp(prefix="oxgpu-", dir="/tmp")
    srv = GpuServer(cuda_backend.CudaGpu(0), SECRET,
                    unix_socket_path=os.path.join(directory, "gpu.sock")).start()
    yield srv
    srv.stop()
    shutil.rmtree(directory, ignore_errors=True)


def test_programs_own_ptx(server, libcuda_dir):  # noqa: F811
    """CUDA C compiled with NVRTC, on NVIDIA's bindings over the library."""
    run_checks(client_environment(server, libcuda_dir, transport="shm", memory_mb=256),
               "programs_own_ptx")


@pytest.mark.parametrize("example", ["saxpy.py", "gemm.py"])
def test_examples_under_orionx_run(server, example):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-m", "guest_runtime.run", "--endpoint", server.endpoints[0],
         "--token", make_token(memory_mb=256), "--", sys.executable, "examples/" + example],
        cwd=repo, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
