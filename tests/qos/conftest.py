"""Fixtures of the QoS tests: sim-backend GPU servers with a control socket.

Servers run in this process on threads; ``qos_server(...)`` starts one with
the compute mode and memory it is given, and ``open_session(...)`` opens a
client session on it with a token for the given vGPU.
"""

import os
import shutil
import tempfile

import pytest

from guest_runtime.client import Connection
from orionx_agent.dev_tokens import development_token
from orionx_agent.server.control import ControlClient
from orionx_agent.server.scheduler import ComputeScheduler
from orionx_agent.server.server import GpuServer
from orionx_agent.server.sim_backend import SimGpu

SECRET = "qos-test-secret"
MB = 1 << 20


def make_token(allocation_id="alloc-1", vgpu_id="vgpu-1", compute_pct=50, memory_mb=64):
    return development_token(SECRET, compute_pct, memory_mb, vgpu_id=vgpu_id,
                             allocation_id=allocation_id, ttl_s=600)


@pytest.fixture
def socket_dir():
    # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="oxqos-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def qos_server(socket_dir):
    """qos_server(compute_mode="elastic", memory_mb=256, ...) -> started GpuServer."""
    started = []

    def start(compute_mode="elastic", memory_mb=256, share_window_ms=100, enforce=True,
              oversub_ratio=1.0, tcp=False):
        index = len(started)
        server = GpuServer(
            SimGpu(memory_mb * MB, index=index), SECRET,
            unix_socket_path=os.path.join(socket_dir, "gpu%d.sock" % index),
            tcp_address=("127.0.0.1", 0) if tcp else None, shm_ring_bytes=1 << 20,
            scheduler=ComputeScheduler(compute_mode, share_window_ms, enforce=enforce),
            control_socket_path=os.path.join(socket_dir, "gpu%d.control.sock" % index),
            oversub_ratio=oversub_ratio).start()
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()
        server.backend.close()


@pytest.fixture
def server(qos_server):
    return qos_server()


@pytest.fixture
def control(server):
    client = ControlClient(server.control.path)
    yield client
    client.close()


@pytest.fixture
def open_session():
    """open_session(server, transport="unix", **token_fields) -> Connection."""
    opened = []

    def open_(server, transport="unix", **token_fields):
        endpoint = server.endpoints[1] if transport == "tcp" else server.endpoints[0]
        connection = Connection(endpoint, make_token(**token_fields), transport=transport)
        opened.append(connection)
        return connection
    yield open_
    for connection in opened:
        connection.close()
