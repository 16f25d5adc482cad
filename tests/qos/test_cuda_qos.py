"""QoS of the cuda backend: kernel time from CUDA events, compute shares,
and eviction to host RAM through virtual memory management.

Each test runs against every backend it can: ``fake-driver``, the cuda
backend's own code over the stand-in driver of
tests/dataplane/fake_cuda_driver.py (on every machine), and ``gpu``, a real
GPU (skipped, with the reason, where cuda-python or a GPU is missing; run
with tests/gpu/run.sh). Compute shares need real device time, so those
tests run on a GPU only.
"""

import hashlib
import os
import struct
import threading
import time
import types

import numpy as np
import pytest

from guest_runtime import protocol
from orionx_agent.server import cuda_backend
from orionx_agent.server.control import ControlClient
from orionx_agent.server.scheduler import ComputeScheduler
from orionx_agent.server.server import GpuServer
from tests.dataplane import fake_cuda_driver
from tests.qos.conftest import MB, SECRET

# Read before any test installs the stand-in driver.
GPU_UNAVAILABLE = cuda_backend.unavailable_reason()
GEMM_N = 1024


@pytest.fixture(params=["fake-driver", "gpu"])
def backend(request, monkeypatch):
    """What a test needs to know of the backend under it: ``calls`` (the
    driver calls made, on the fake only), ``vmm`` (the fake's physical
    memory), and ``physical_mb``, the device memory its eviction test
    leaves the sessions (a quarter of what they allocate)."""
    if request.param == "gpu":
        if GPU_UNAVAILABLE is not None:
            pytest.skip("cuda backend unavailable: %s" % GPU_UNAVAILABLE)
        return types.SimpleNamespace(name="gpu", calls=None, vmm=None, physical_mb=64)
    calls = []
    vmm = fake_cuda_driver.install_with_events_and_vmm(monkeypatch, calls)
    return types.SimpleNamespace(name="fake-driver", calls=calls, vmm=vmm,
                                 physical_mb=fake_cuda_driver.VMM_PHYSICAL_BYTES // MB)


def gpu_only(test):
    return pytest.mark.parametrize("backend", ["gpu"], indirect=True)(test)


def fake_only(test):
    return pytest.mark.parametrize("backend", ["fake-driver"], indirect=True)(test)


@pytest.fixture
def cuda_server(backend, socket_dir):
    """cuda_server(compute_mode="elastic") -> (GpuServer, ControlClient)."""
    started = []

    def start(compute_mode="elastic"):
        name = "cuda%d" % len(started)
        server = GpuServer(cuda_backend.CudaGpu(0), SECRET,
                           unix_socket_path=os.path.join(socket_dir, name + ".sock"),
                           scheduler=ComputeScheduler(compute_mode, 100),
                           control_socket_path=os.path.join(socket_dir,
                                                            name + ".control.sock")).start()
        control = ControlClient(server.control.path)
        started.append((server, control))
        return server, control
    yield start
    for server, control in started:
        control.close()
        server.stop()
        server.backend.close()


def _builtin(connection, name):
    (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (function,) = connection.module_get_function(module, buffer=name)
    return function


def _wait_for_charges(server, timeout_s=5):
    """The timer thread charges every kernel once its end event completes."""
    deadline = time.monotonic() + timeout_s
    for session in server.sessions():
        while session.context._timing._pending and time.monotonic() < deadline:
            time.sleep(0.01)


def test_kernel_time_comes_from_events_and_is_charged(cuda_server, open_session):
    server, control = cuda_server("elastic")
    connection = open_session(server, memory_mb=16)
    fill = _builtin(connection, b"fill_f32")
    n = 1 << 20
    (dptr,) = connection.mem_alloc(4 * n)
    for _ in range(20):
        connection.launch_kernel(fill, (n + 255) // 256, 1, 1, 256, 1, 1, 0, 0,
                                 buffer=struct.pack("<QQf", dptr, n, 3.0))
    connection.ctx_synchronize()
    _wait_for_charges(server)
    (session,) = control.usage()["sessions"]
    assert session["device_time_s"] > 0 and session["launches"] == 20
    (data,) = connection.memcpy_dtoh(dptr, 16, 0)
    assert np.frombuffer(data, np.float32).tolist() == [3.0] * 4


@fake_only
def test_events_are_reused_from_one_burst_to_the_next(backend, cuda_server, open_session):
    server, _control = cuda_server("elastic")
    connection = open_session(server, memory_mb=16)
    fill = _builtin(connection, b"fill_f32")
    (dptr,) = connection.mem_alloc(4096)
    for _ in range(2):
        for _ in range(20):
            connection.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                                     buffer=struct.pack("<QQf", dptr, 1024, 3.0))
        connection.ctx_synchronize()
        _wait_for_charges(server)
    assert backend.calls.count("cuEventRecord") == 80  # start and end of each kernel
    assert backend.calls.count("cuEventCreate") <= 40


def test_eviction_keeps_pointers_and_bytes(backend, cuda_server, open_session):
    server, control = cuda_server("elastic")
    if server.backend.vmm() is None:
        pytest.skip("this GPU or driver has no virtual memory management")
    physical_mb = backend.physical_mb
    buffer_bytes = physical_mb // 4 * MB
    control.set_memory_limits(physical_memory_mb=physical_mb, oversub_ratio=2.0)
    rng = np.random.default_rng(5)
    guests = []
    for index in range(2):  # 2 x 4 buffers: twice the physical memory
        connection = open_session(server, allocation_id="a%d" % index, vgpu_id="v%d" % index,
                                  memory_mb=physical_mb)
        buffers = {}
        for _ in range(4):
            (dptr,) = connection.mem_alloc(buffer_bytes)
            data = rng.integers(0, 256, buffer_bytes, dtype=np.uint8).tobytes()
            connection.memcpy_htod(dptr, buffer=data)
            buffers[dptr] = hashlib.sha256(data).digest()
        guests.append((connection, buffers))
    for _ in range(3):
        for connection, buffers in guests:
            for dptr, digest in buffers.items():
                (data,) = connection.memcpy_dtoh(dptr, buffer_bytes, 0)
                assert hashlib.sha256(data).digest() == digest
    gpu = control.usage()["gpu"]
    assert gpu["evictions"] >= 8 and gpu["bytes_restored"] >= physical_mb * MB
    assert gpu["memory_resident_mb"] <= physical_mb
    for connection, _ in guests:
        connection.close()
    deadline = time.monotonic() + 5
    while control.usage()["sessions"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert control.usage()["gpu"]["memory_used_mb"] == 0
    if backend.vmm is not None:
        assert backend.vmm["physical_used"] == 0 and not backend.vmm["handles"]


@fake_only
def test_small_buffers_stay_on_the_device(backend, cuda_server, open_session):
    server, _control = cuda_server("elastic")
    connection = open_session(server, memory_mb=16)
    connection.mem_alloc(64 << 10)
    assert "cuMemAlloc" in backend.calls and "cuMemCreate" not in backend.calls
    connection.mem_alloc(fake_cuda_driver.GRANULARITY)
    assert "cuMemCreate" in backend.calls


# -- compute shares: real device time only -------------------------------------

def _gemm_loop(server, connection, stop, n=GEMM_N):
    gemm = _builtin(connection, b"gemm_f32")
    a, b, c = (connection.mem_alloc(4 * n * n)[0] for _ in range(3))
    params = struct.pack("<QQQIII", c, a, b, n, n, n)
    tile = 16
    while not stop.is_set():
        for _ in range(16):
            connection.launch_kernel(gemm, (n + tile - 1) // tile, (n + tile - 1) // tile, 1,
                                     tile, tile, 1, 0, 0, buffer=params)
        connection.ctx_synchronize()


def _measure(server, control, open_session, shares_pct, seconds=3.0):
    """Each session's part of the device time, and of the wall time."""
    stop = threading.Event()
    connections = [open_session(server, allocation_id="a%d" % i, vgpu_id="v%d" % i,
                                compute_pct=pct, memory_mb=256)
                   for i, pct in enumerate(shares_pct)]
    threads = [threading.Thread(target=_gemm_loop, args=(server, connection, stop))
               for connection in connections]
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


@gpu_only
def test_one_session_keeps_the_device_busy(backend, cuda_server, open_session):
    server, control = cuda_server("elastic")
    _, (busy,) = _measure(server, control, open_session, [100], seconds=1.0)
    assert 0.5 < busy <= 1.05


@gpu_only
def test_hard_30_alone_holds(backend, cuda_server, open_session):
    server, control = cuda_server("hard")
    _, (busy,) = _measure(server, control, open_session, [30])
    assert busy <= 0.33


@gpu_only
def test_25_75_under_contention(backend, cuda_server, open_session):
    server, control = cuda_server("elastic")
    shares, _ = _measure(server, control, open_session, [25, 75])
    assert abs(shares[0] - 0.25) <= 0.05 and abs(shares[1] - 0.75) <= 0.05
