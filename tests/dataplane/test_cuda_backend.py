"""The cuda backend's data plane: built-in kernels, copies larger than its
staging buffer, and isolation between sessions.

Each test runs against every backend it can: ``fake-driver``, the cuda
backend's own code over the stand-in driver of fake_cuda_driver.py (its
marshalling, on every machine), and ``gpu``, a real GPU (skipped, with the
reason, where cuda-python or a GPU is missing; tests/gpu/run.sh runs them
with the GPU-only tests of tests/gpu).
"""

import os
import struct
import types

import pytest

from guest_runtime import protocol
from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server import cuda_backend
from orionx_agent.server.server import GpuServer
from tests.dataplane import fake_cuda_driver
from tests.dataplane.conftest import SECRET, make_token
from tests.dataplane.driver_checks import run_checks
from tests.dataplane.test_isolation import wait_until
from tests.libcuda.conftest import client_environment, libcuda_dir  # noqa: F401 - fixture

# Read before any test installs the stand-in driver.
GPU_UNAVAILABLE = cuda_backend.unavailable_reason()


@pytest.fixture(params=["fake-driver", "gpu"])
def backend(request, monkeypatch):
    """``calls`` (driver calls made) and ``state`` (its memory) on the fake;
    None on a GPU."""
    if request.param == "gpu":
        if GPU_UNAVAILABLE is not None:
            pytest.skip("cuda backend unavailable: %s" % GPU_UNAVAILABLE)
        return types.SimpleNamespace(name="gpu", calls=None, state=None)
    calls = []
    driver, nvrtc, state = fake_cuda_driver.make_modules(calls)
    fake_cuda_driver.install(monkeypatch, driver, nvrtc)
    return types.SimpleNamespace(name="fake-driver", calls=calls, state=state)


def fake_only(test):
    return pytest.mark.parametrize("backend", ["fake-driver"], indirect=True)(test)


@pytest.fixture
def cuda_server(backend, socket_dir):
    assert cuda_backend.unavailable_reason() is None
    srv = GpuServer(cuda_backend.CudaGpu(0), SECRET,
                    unix_socket_path=os.path.join(socket_dir, "cuda.sock"),
                    shm_ring_bytes=1 << 20).start()
    yield srv
    srv.stop()
    srv.backend.close()


def test_builtin_kernels_and_copies_larger_than_the_staging_buffer(backend, cuda_server,
                                                                   libcuda_dir):  # noqa: F811
    copy_bytes = 3 * cuda_backend.STAGING_BYTES  # three staging rounds each way
    env = client_environment(cuda_server, libcuda_dir,
                             memory_mb=4 * copy_bytes // (1 << 20))
    env["ORIONX_CHECK_COPY_BYTES"] = str(copy_bytes)
    run_checks(env, "staged_copies")
    if backend.calls is not None:
        assert backend.calls.count("cuMemcpyHtoDAsync") == 6 + 2  # and gemm's two inputs
        assert backend.calls.count("cuMemcpyDtoHAsync") == 3 + 1 + 1 + 1  # sum, gemm, head
    if backend.state is not None:
        assert wait_until(lambda: backend.state["used"] == 0)  # staging freed too


def test_isolation_between_sessions(cuda_server):
    endpoint = cuda_server.endpoints[0]
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
        intruder.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                               buffer=struct.pack("<QQf", dptr, 16, 1.0))
        with pytest.raises(CudaError) as caught:
            intruder.ctx_synchronize()
        assert caught.value.code == CUresult.CUDA_ERROR_ILLEGAL_ADDRESS
    finally:
        owner.close()
        intruder.close()


@fake_only
def test_device_identity(backend, cuda_server):
    backend = cuda_server.backend
    assert backend.device_name == "Fake GPU"
    assert backend.gpu_uuid == "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert backend.attribute(16) == 132 and backend.attribute(12345) is None


@fake_only
def test_factory_picks_cuda_when_it_works(backend):
    from orionx_agent.server import factory
    group = types.SimpleNamespace(backend="auto", gpu_index=0, sim_memory_mb=16,
                                  sim_ptx_instruction_budget=10_000)
    assert factory.build_backend(group).name == "cuda"


def test_factory_falls_back_to_sim_without_cuda(monkeypatch):
    from orionx_agent.server import factory
    monkeypatch.setattr(cuda_backend, "unavailable_reason", lambda: "no GPU here")
    group = types.SimpleNamespace(backend="auto", gpu_index=0, sim_memory_mb=16,
                                  sim_ptx_instruction_budget=10_000)
    backend = factory.build_backend(group)
    assert backend.name == "sim"
    backend.close()
    group.backend = "cuda"
    with pytest.raises(RuntimeError, match="no GPU here"):
        factory.build_backend(group)
