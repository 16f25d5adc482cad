"""Fixtures of the PTX tests: a sim GPU server in this process and sessions on
it, at the protocol level (``session``) or through NVIDIA's cuda-bindings over
the pool's libcuda.so.1 (``cuda``)."""

import ctypes
import os
import shutil
import tempfile

import pytest

from guest_runtime.client import Connection
from orionx_agent.server.server import GpuServer
from orionx_agent.server.sim_backend import SimGpu
from tests.dataplane.conftest import SECRET, make_token
from tests.libcuda.conftest import libcuda_dir  # noqa: F401 - a fixture

# Small enough that a runaway kernel stops within a second, large enough
# for every kernel of the corpus.
TEST_INSTRUCTION_BUDGET = 50_000_000


@pytest.fixture
def socket_dir():
    # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="oxptx-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ptx_server():
    path = tempfile.mkdtemp(prefix="oxptx-", dir="/tmp")
    server = _ptx_server(path)
    yield server
    server.stop()
    server.backend.close()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def session(ptx_server):
    """session(vgpu_id="vgpu-1") -> an open Connection of its own."""
    opened = []

    def open_session(vgpu_id="vgpu-1", memory_mb=64):
        connection = Connection(ptx_server.endpoints[0],
                                make_token(memory_mb=memory_mb, vgpu_id=vgpu_id),
                                transport="unix")
        opened.append(connection)
        return connection
    yield open_session
    for connection in opened:
        connection.close()


def _ptx_server(path):
    return GpuServer(SimGpu(256 << 20, ptx_instruction_budget=TEST_INSTRUCTION_BUDGET),
                     SECRET, unix_socket_path=os.path.join(path, "gpu.sock"),
                     shm_ring_bytes=1 << 20).start()


@pytest.fixture(scope="session")
def cuda(libcuda_dir):  # noqa: F811 - the fixture imported above
    """NVIDIA's cuda.bindings.driver in this process, on libcuda.so.1 and a
    PTX server of its own, with device 0's primary context current.

    The library reads its configuration once, at cuInit, and a process loads
    it once: so one server and one session serve every test that asks for
    this (each frees what it allocated, see tests/ptx/device.py), and the
    environment is set only around cuInit. Loaded by its path first, the
    library is what cuda-bindings then finds by its soname."""
    path = tempfile.mkdtemp(prefix="oxptxb-", dir="/tmp")
    server = _ptx_server(path)
    ctypes.CDLL(str(libcuda_dir / "libcuda.so.1"), mode=ctypes.RTLD_GLOBAL)
    from cuda.bindings import driver
    settings = {"ORIONX_ENDPOINT": server.endpoints[0], "ORIONX_TOKEN": make_token(192),
                "ORIONX_TRANSPORT": "unix"}
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        assert driver.cuInit(0)[0] == driver.CUresult.CUDA_SUCCESS
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    err, device = driver.cuDeviceGet(0)
    err, context = driver.cuDevicePrimaryCtxRetain(device)
    assert err == driver.CUresult.CUDA_SUCCESS
    assert driver.cuCtxSetCurrent(context)[0] == driver.CUresult.CUDA_SUCCESS
    yield driver
    driver.cuDevicePrimaryCtxRelease(device)
    server.stop()
    server.backend.close()
    shutil.rmtree(path, ignore_errors=True)
