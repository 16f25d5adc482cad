"""Fixtures of the data-plane tests: live GPU servers on the sim backend.

Servers run in this process on threads (fast to start), on a unix socket in
a short temporary directory and a free loopback TCP port; the TLS server gets
a throwaway self-signed certificate.
"""

import os
import shutil
import tempfile

import pytest

from guest_runtime.client import Connection
from orionx_agent.dev_tokens import development_token
from orionx_agent.server.server import GpuServer
from orionx_agent.server.sim_backend import SimGpu

SECRET = "dataplane-test-secret"
SIM_MEMORY_MB = 256
TRANSPORTS = ("shm", "unix", "tcp", "tls")


def make_token(memory_mb=64, ttl_s=600, secret=SECRET, allocation_id="alloc-1",
               vgpu_id="vgpu-1", now=None):
    return development_token(secret, 50, memory_mb, vgpu_id=vgpu_id,
                             allocation_id=allocation_id, ttl_s=ttl_s, now=now)


@pytest.fixture
def socket_dir():
    # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="oxdp-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start(socket_dir, name, tls_context=None, memory_mb=SIM_MEMORY_MB):
    backend = SimGpu(memory_mb << 20)
    return GpuServer(backend, SECRET, unix_socket_path=os.path.join(socket_dir, name),
                     tcp_address=("127.0.0.1", 0), tls_context=tls_context,
                     shm_ring_bytes=1 << 20).start()


@pytest.fixture
def server(socket_dir):
    srv = _start(socket_dir, "gpu.sock")
    yield srv
    srv.stop()
    srv.backend.close()


@pytest.fixture
def second_server(socket_dir):
    """Another sim GPU server: devices of one process on two servers."""
    srv = _start(socket_dir, "gpu-b.sock")
    yield srv
    srv.stop()
    srv.backend.close()


@pytest.fixture
def tls_server(socket_dir, tls_files):
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    srv = _start(socket_dir, "gpu-tls.sock", tls_context=context)
    yield srv
    srv.stop()
    srv.backend.close()


@pytest.fixture
def endpoint_for(request):
    """endpoint_for(transport) -> dict of Connection keyword arguments."""
    def resolve(transport):
        if transport == "tls":
            srv = request.getfixturevalue("tls_server")
            cert, _ = request.getfixturevalue("tls_files")
            return {"endpoints": srv.endpoints[1], "transport": "tls", "tls_ca_file": cert}
        srv = request.getfixturevalue("server")
        if transport == "tcp":
            return {"endpoints": srv.endpoints[1], "transport": "tcp"}
        return {"endpoints": srv.endpoints[0], "transport": transport}
    return resolve


@pytest.fixture
def connect(endpoint_for):
    """connect(transport="unix", memory_mb=64, token=None) -> open Connection."""
    opened = []

    def open_connection(transport="unix", memory_mb=64, token=None, **token_args):
        token = token or make_token(memory_mb=memory_mb, **token_args)
        connection = Connection(token=token, **endpoint_for(transport))
        opened.append(connection)
        return connection
    yield open_connection
    for connection in opened:
        connection.close()
