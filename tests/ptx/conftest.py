"""Fixtures of the PTX tests: a sim GPU server in this process and sessions on it."""

import os
import shutil
import tempfile

import pytest

from guest_runtime import runtime
from guest_runtime.client import Connection
from orionx_agent.server.server import GpuServer
from orionx_agent.server.sim_backend import SimGpu
from tests.dataplane.conftest import SECRET, make_token

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
    server = GpuServer(SimGpu(256 << 20, ptx_instruction_budget=TEST_INSTRUCTION_BUDGET),
                       SECRET, unix_socket_path=os.path.join(path, "gpu.sock"),
                       shm_ring_bytes=1 << 20).start()
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


@pytest.fixture
def cuda(ptx_server):
    """guest_runtime.cuda, initialised against the PTX test server."""
    from guest_runtime import cuda as driver
    runtime.configure(endpoint=ptx_server.endpoints[0], token=make_token(64), transport="unix")
    assert driver.cuInit(0) == (driver.CUresult.CUDA_SUCCESS,)
    yield driver
    runtime.reset()
