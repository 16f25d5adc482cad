"""What one token can make a GPU server hold: a bounded number of sessions
per vGPU, and a bounded amount of module images in flight over all."""

import os
import time

import pytest

from guest_runtime import protocol
from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server.server import GpuServer
from orionx_agent.server.sim_backend import SimGpu
from tests.dataplane.conftest import SECRET, make_token

MB = 1 << 20


@pytest.fixture
def bounded_server(socket_dir):
    server = GpuServer(SimGpu(256 * MB), SECRET,
                       unix_socket_path=os.path.join(socket_dir, "bounded.sock"),
                       max_sessions_per_vgpu=3, module_images_in_flight_bytes=1 * MB).start()
    yield server
    server.stop()
    server.backend.close()


def test_sessions_per_vgpu_are_bounded_by_name(bounded_server):
    endpoint = bounded_server.endpoints[0]
    token = make_token()
    opened = [Connection(endpoint, token, transport="unix") for _ in range(3)]
    with pytest.raises(CudaError) as caught:
        Connection(endpoint, token, transport="unix")
    assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
    assert "max_sessions_per_vgpu" in caught.value.message
    # Another vGPU has its own bound; a closed session makes room.
    Connection(endpoint, make_token(vgpu_id="vgpu-2", allocation_id="alloc-2"),
               transport="unix").close()
    opened.pop().close()
    opened.append(_open_once_room(endpoint, token))
    for connection in opened:
        connection.close()


def _open_once_room(endpoint, token, timeout_s=10):
    """A session, as soon as the server has seen a closed one go: the
    client's close reaches the server's session thread a moment later."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return Connection(endpoint, token, transport="unix")
        except CudaError as exc:
            if "max_sessions_per_vgpu" not in exc.message or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_module_images_in_flight_are_bounded(bounded_server):
    connection = Connection(bounded_server.endpoints[0], make_token(), transport="unix")
    with pytest.raises(CudaError) as caught:
        connection.module_load_data(buffer=b"\0" * (2 * MB))
    assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
    assert "module_images_in_flight_mb" in caught.value.message
    (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    assert module and bounded_server.module_images.held_bytes == 0
    connection.close()
