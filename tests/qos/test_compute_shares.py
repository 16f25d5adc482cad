"""Compute shares hold, measured: saturating gemm sessions on the sim backend.

The GPU server runs in its own process (one BLAS thread: a simulated GPU of
one steady core) and every session in its own client process, as guests
would; device time is read from the server, where the engine measured it.
Each mix runs a few seconds, enough for dozens of share windows.
"""

import struct
import threading
import time

import pytest

from guest_runtime import protocol
from guest_runtime.client import Connection
from orionx_agent.server.control import ControlClient
from tests.qos.conftest import make_token
from tests.qos.workload import ServerProcess, run_mix

MEASURE_S = 3.0
LONG_GEMM_N = 480
TOLERANCE = 0.05


@pytest.fixture
def gpu_process(socket_dir):
    """gpu_process(compute_mode) -> (ServerProcess, ControlClient)."""
    started = []

    def start(compute_mode):
        server = ServerProcess(socket_dir, compute_mode)
        control = ControlClient(server.control_path)
        started.append((server, control))
        return server, control
    yield start
    for server, control in started:
        control.close()
        server.stop()


def _token(index, pct):
    return make_token("alloc-%d" % index, "vgpu-%d" % index, pct, 64)


def _assert_shares(measured, targets_pct):
    for got, want in zip(measured, targets_pct, strict=True):
        assert abs(got - want / 100.0) <= TOLERANCE, (
            "measured shares %s, targets %s %%" % (["%.3f" % m for m in measured],
                                                  targets_pct))


@pytest.mark.parametrize("mode", ["elastic", "hard"])
def test_25_75_split_the_device_in_that_ratio(gpu_process, mode):
    server, control = gpu_process(mode)
    shares, _ = run_mix(server, control, _token, [25, 75], MEASURE_S)
    _assert_shares(shares, [25, 75])


@pytest.mark.parametrize("mode", ["elastic", "hard"])
def test_10_20_30_40_each_get_their_share(gpu_process, mode):
    server, control = gpu_process(mode)
    shares, _ = run_mix(server, control, _token, [10, 20, 30, 40], MEASURE_S)
    _assert_shares(shares, [10, 20, 30, 40])


def test_hard_30_alone_never_gets_more(gpu_process):
    server, control = gpu_process("hard")
    _, (busy,) = run_mix(server, control, _token, [30], MEASURE_S)
    assert busy <= 0.33


def test_elastic_alone_borrows_the_idle_device(gpu_process):
    server, control = gpu_process("elastic")
    # Longer kernels: what is measured is the server's gate, not how fast a
    # busy two-core machine wakes the session's thread between kernels.
    _, (busy,) = run_mix(server, control, _token, [30], MEASURE_S, n=LONG_GEMM_N)
    assert busy >= 0.90


def test_a_capped_session_waits_in_the_server_not_in_the_client(qos_server):
    """A hard 5 % session launching far more than its share: the client
    thread sleeps in a socket read while the server holds its launches."""
    server = qos_server(compute_mode="hard", share_window_ms=100)
    connection = Connection(server.endpoints[0], _token(0, 5), transport="unix")
    (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (fill,) = connection.module_get_function(module, buffer=b"fill_f32")
    n = 1 << 20
    (dptr,) = connection.mem_alloc(4 * n)
    cpu = {}

    def client():
        started = time.thread_time()
        for _ in range(300):
            connection.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                                     buffer=struct.pack("<QQf", dptr, n, 1.0))
        connection.ctx_synchronize()
        cpu["s"] = time.thread_time() - started
    wall = time.monotonic()
    thread = threading.Thread(target=client)
    thread.start()
    thread.join(60)
    wall = time.monotonic() - wall
    connection.close()
    assert wall > 0.5  # it was held back...
    assert cpu["s"] < 0.25 * wall  # ...without spinning


def test_resize_changes_the_share_at_once(qos_server):
    server = qos_server(compute_mode="hard", share_window_ms=100)
    control = ControlClient(server.control.path)
    connection = Connection(server.endpoints[0], _token(0, 10), transport="unix")
    (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (fill,) = connection.module_get_function(module, buffer=b"fill_f32")
    n = 1 << 20
    (dptr,) = connection.mem_alloc(4 * n)

    def busy_fraction(seconds):
        before = control.usage()["sessions"][0]["device_time_s"]
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            for _ in range(8):
                connection.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                                         buffer=struct.pack("<QQf", dptr, n, 1.0))
            connection.ctx_synchronize()
        return (control.usage()["sessions"][0]["device_time_s"] - before) / (
            time.monotonic() - started)
    low = busy_fraction(1.0)
    control.resize("vgpu-0", 60, 64)
    high = busy_fraction(1.0)
    connection.close()
    control.close()
    assert low <= 0.13
    assert high >= 2.5 * low
