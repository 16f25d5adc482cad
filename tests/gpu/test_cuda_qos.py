"""QoS on a real GPU: kernel time from CUDA events, compute shares, and
eviction to host RAM through virtual memory management. Skipped, with the
reason, where cuda-python or a GPU is missing; run with tests/gpu/run.sh."""

import hashlib
import os
import shutil
import struct
import tempfile
import threading
import time

import numpy as np
import pytest

from guest_runtime import protocol
from guest_runtime.client import Connection
from orionx_agent.dev_tokens import development_token
from orionx_agent.server import cuda_backend
from orionx_agent.server.control import ControlClient
from orionx_agent.server.scheduler import ComputeScheduler
from orionx_agent.server.server import GpuServer
from tests.dataplane.conftest import SECRET

REASON = cuda_backend.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason="cuda backend unavailable: %s"
                                % REASON)
MB = 1 << 20
GEMM_N = 1024


@pytest.fixture
def gpu_server():
    directory = tempfile.mkdtemp(prefix="oxgpuqos-", dir="/tmp")
    started = []

    def start(compute_mode="elastic"):
        server = GpuServer(cuda_backend.CudaGpu(0), SECRET,
                           unix_socket_path=os.path.join(directory, "gpu%d.sock" % len(started)),
                           scheduler=ComputeScheduler(compute_mode, 100),
                           control_socket_path=os.path.join(
                               directory, "gpu%d.control.sock" % len(started))).start()
        started.append(server)
        return server, ControlClient(server.control.path)
    yield start
    for server in started:
        server.stop()
        server.backend.close()
    shutil.rmtree(directory, ignore_errors=True)


def _token(index, compute_pct, memory_mb=256):
    return development_token(SECRET, compute_pct, memory_mb, vgpu_id="v%d" % index,
                             allocation_id="a%d" % index, ttl_s=600)


def _gemm_loop(server, token, stop, n=GEMM_N):
    connection = Connection(server.endpoints[0], token, transport="unix")
    (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (gemm,) = connection.module_get_function(module, buffer=b"gemm_f32")
    a, b, c = (connection.mem_alloc(4 * n * n)[0] for _ in range(3))
    params = struct.pack("<QQQIII", c, a, b, n, n, n)
    tile = 16
    while not stop.is_set():
        for _ in range(16):
            connection.launch_kernel(gemm, (n + tile - 1) // tile, (n + tile - 1) // tile, 1,
                                     tile, tile, 1, 0, 0, buffer=params)
        connection.ctx_synchronize()
    connection.close()


def _measure(server, control, shares_pct, seconds=3.0):
    stop = threading.Event()
    threads = [threading.Thread(target=_gemm_loop, args=(server, _token(i, pct), stop))
               for i, pct in enumerate(shares_pct)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    before = {s["allocation_id"]: s["device_time_s"] for s in control.usage()["sessions"]}
    started = time.monotonic()
    time.sleep(seconds)
    after = {s["allocation_id"]: s["device_time_s"] for s in control.usage()["sessions"]}
    wall_s = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join(30)
    used = [after["a%d" % i] - before["a%d" % i] for i in range(len(shares_pct))]
    return [u / (sum(used) or 1) for u in used], [u / wall_s for u in used]


def test_device_time_comes_from_events(gpu_server):
    server, control = gpu_server("elastic")
    _, (busy,) = _measure(server, control, [100], seconds=1.0)
    assert 0.5 < busy <= 1.05


def test_hard_30_alone_holds(gpu_server):
    server, control = gpu_server("hard")
    _, (busy,) = _measure(server, control, [30])
    assert busy <= 0.33


def test_25_75_under_contention(gpu_server):
    server, control = gpu_server("elastic")
    shares, _ = _measure(server, control, [25, 75])
    assert abs(shares[0] - 0.25) <= 0.05 and abs(shares[1] - 0.75) <= 0.05


def test_eviction_through_virtual_memory_keeps_every_byte(gpu_server):
    server, control = gpu_server("elastic")
    if server.backend.vmm() is None:
        pytest.skip("this GPU or driver has no virtual memory management")
    control.set_memory_limits(physical_memory_mb=64, oversub_ratio=2.0)
    rng = np.random.default_rng(7)
    guests = []
    for index in range(2):
        connection = Connection(server.endpoints[0], _token(index, 50, 64), transport="unix")
        buffers = {}
        for _ in range(4):
            (dptr,) = connection.mem_alloc(16 * MB)
            data = rng.integers(0, 256, 16 * MB, dtype=np.uint8).tobytes()
            connection.memcpy_htod(dptr, buffer=data)
            buffers[dptr] = hashlib.sha256(data).digest()
        guests.append((connection, buffers))
    for _ in range(4):
        for connection, buffers in guests:
            for dptr, digest in buffers.items():
                (data,) = connection.memcpy_dtoh(dptr, 16 * MB, 0)
                assert hashlib.sha256(data).digest() == digest
    gpu = control.usage()["gpu"]
    assert gpu["evictions"] >= 8 and gpu["memory_resident_mb"] <= 64
    for connection, _ in guests:
        connection.close()
