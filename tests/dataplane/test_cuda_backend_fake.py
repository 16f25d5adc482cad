"""The cuda backend's code against a fake driver (see fake_cuda_driver), so
its marshalling is tested on every machine; tests/gpu covers real GPUs."""

import os
import types

import numpy as np
import pytest

from guest_runtime import kernels, runtime
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server import cuda_backend
from orionx_agent.server.server import GpuServer
from tests.dataplane import fake_cuda_driver
from tests.dataplane.conftest import SECRET, make_token


@pytest.fixture
def fake_driver(monkeypatch):
    calls = []
    driver, nvrtc, state = fake_cuda_driver.make_modules(calls)
    fake_cuda_driver.install(monkeypatch, driver, nvrtc)
    return calls, state


@pytest.fixture
def cuda_server(fake_driver, socket_dir):
    assert cuda_backend.unavailable_reason() is None
    backend = cuda_backend.CudaGpu(0)
    srv = GpuServer(backend, SECRET, unix_socket_path=os.path.join(socket_dir, "cuda.sock"),
                    shm_ring_bytes=1 << 20).start()
    yield srv
    srv.stop()


def test_device_identity(cuda_server):
    backend = cuda_server.backend
    assert backend.device_name == "Fake GPU"
    assert backend.gpu_uuid == "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert backend.attribute(16) == 132 and backend.attribute(12345) is None


def test_builtins_and_chunked_copies(cuda_server, fake_driver):
    from guest_runtime import cuda
    calls, state = fake_driver
    runtime.configure(endpoint=cuda_server.endpoints[0], token=make_token(memory_mb=32))
    try:
        assert cuda.cuInit(0)[0] == 0
        n = 3 << 18  # 3 MB of floats: three staging chunks each way
        x = np.arange(n, dtype=np.float32)
        y = np.ones(n, dtype=np.float32)
        _, d_x = cuda.cuMemAlloc(x.nbytes)
        _, d_y = cuda.cuMemAlloc(y.nbytes)
        assert cuda.cuMemcpyHtoD(d_x, x, x.nbytes)[0] == 0
        assert cuda.cuMemcpyHtoD(d_y, y, y.nbytes)[0] == 0
        kernels.axpy_f32(d_y, d_x, n, 2.0)
        out = np.empty_like(y)
        assert cuda.cuMemcpyDtoH(out, d_y, out.nbytes)[0] == 0
        np.testing.assert_allclose(out, 2.0 * x + 1.0)
        assert calls.count("cuMemcpyHtoDAsync") == 6 and calls.count("cuMemcpyDtoHAsync") == 3
        assert cuda.cuMemsetD32(d_x, 5, 4)[0] == 0
        head = np.empty(4, np.uint32)
        cuda.cuMemcpyDtoH(head, d_x, 16)
        assert (head == 5).all()
    finally:
        runtime.reset()
    from tests.dataplane.test_isolation import wait_until
    assert wait_until(lambda: state["used"] == 0)  # staging freed too


def test_builtin_pointers_are_checked_on_cuda(cuda_server):
    from guest_runtime.client import Connection
    from guest_runtime.protocol import BUILTIN_MODULE_IMAGE
    owner = Connection(cuda_server.endpoints[0], make_token())
    intruder = Connection(cuda_server.endpoints[0], make_token())
    try:
        (victim,) = owner.mem_alloc(1024)
        (module,) = intruder.module_load_data(buffer=BUILTIN_MODULE_IMAGE)
        (fill,) = intruder.module_get_function(module, buffer=b"fill_f32")
        import struct
        intruder.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                               buffer=struct.pack("<QQf", victim, 4, 1.0))
        with pytest.raises(CudaError) as caught:
            intruder.ping()
        assert caught.value.code == CUresult.CUDA_ERROR_ILLEGAL_ADDRESS
    finally:
        owner.close()
        intruder.close()


def test_factory_picks_cuda_when_it_works(fake_driver):
    from orionx_agent.server import factory
    group = types.SimpleNamespace(backend="auto", gpu_index=0, sim_memory_mb=16)
    assert factory.build_backend(group).name == "cuda"


def test_factory_falls_back_to_sim_without_cuda(monkeypatch):
    from orionx_agent.server import factory
    monkeypatch.setattr(cuda_backend, "unavailable_reason", lambda: "no GPU here")
    group = types.SimpleNamespace(backend="auto", gpu_index=0, sim_memory_mb=16)
    backend = factory.build_backend(group)
    assert backend.name == "sim"
    backend.close()
    group.backend = "cuda"
    with pytest.raises(RuntimeError, match="no GPU here"):
        factory.build_backend(group)
