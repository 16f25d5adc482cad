"""Saturating workloads for measuring compute shares (tests and benchmarks/qos.py).

A :class:`GemmLoad` is one client session that keeps the GPU busy: batches
of gemm_f32 launches, each batch followed by a synchronising call, until it
is stopped. :func:`measure` reads every session's device time from the GPU
server's control channel at the start and end of an interval, so shares are
measured where the time is spent: on the device (the sim engine's clock).
"""

import os
import struct
import subprocess
import sys
import threading
import time

from guest_runtime import protocol
from guest_runtime.client import Connection

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEMM_N = 400           # two to three milliseconds per kernel on one core
LAUNCHES_PER_SYNC = 64


class LoadProcess:
    """A saturating client session in its own process (as a guest would be:
    its Python work does not compete with the server's for one interpreter
    lock). The child, ``python -m <module> <args>``, prints its session id,
    waits for "go", then runs until stdin closes."""

    def __init__(self, token, module, *args):
        self._child = subprocess.Popen(
            [sys.executable, "-m", module, *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, cwd=_REPO, env=dict(os.environ, ORIONX_TOKEN=token),
            text=True)
        line = self._child.stdout.readline()
        if not line.startswith("session "):
            self._child.kill()
            raise RuntimeError("%s process failed to start a session: %r" % (module, line))
        self.session_id = int(line.split()[1])
        self.error = None

    def start(self):
        self._child.stdin.write("go\n")
        self._child.stdin.flush()
        return self

    def stop(self):
        try:
            self._child.stdin.close()
        except OSError:
            pass
        try:
            self._child.wait(30)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        if self._child.returncode:
            self.error = RuntimeError("workload process exited with %d"
                                      % self._child.returncode)


class GemmLoad(LoadProcess):
    """Batches of gemm_f32 launches, each followed by a synchronising call."""

    def __init__(self, endpoint, token, n=GEMM_N, launches_per_sync=LAUNCHES_PER_SYNC):
        super().__init__(token, "tests.qos.workload", endpoint, str(n), str(launches_per_sync))


class ServerProcess:
    """A sim-backend GPU server in its own process, with a control socket.
    Its BLAS runs one thread, so the simulated GPU is one core with kernels
    of steady length, and the clients keep the other core."""

    def __init__(self, socket_dir, compute_mode="elastic", share_window_ms=100, enforce=True,
                 memory_mb=256):
        self.unix_path = os.path.join(socket_dir, "gpu.sock")
        self.control_path = os.path.join(socket_dir, "gpu.control.sock")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1")
        self._child = subprocess.Popen(
            [sys.executable, "-m", "tests.qos.workload", "--serve", socket_dir, compute_mode,
             str(share_window_ms), "1" if enforce else "0", str(memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=_REPO, env=env, text=True)
        if self._child.stdout.readline().strip() != "ready":
            self._child.kill()
            raise RuntimeError("the GPU server process did not start")
        self.endpoints = ["unix:%s" % self.unix_path]

    def stop(self):
        self._child.stdin.close()
        try:
            self._child.wait(30)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()


def _serve_main(socket_dir, compute_mode, share_window_ms, enforce, memory_mb):
    from orionx_agent.server.scheduler import ComputeScheduler
    from orionx_agent.server.server import GpuServer
    from orionx_agent.server.sim_backend import SimGpu
    from tests.qos.conftest import SECRET
    server = GpuServer(SimGpu(memory_mb << 20), SECRET,
                       unix_socket_path=os.path.join(socket_dir, "gpu.sock"),
                       scheduler=ComputeScheduler(compute_mode, share_window_ms,
                                                  enforce=enforce),
                       control_socket_path=os.path.join(socket_dir, "gpu.control.sock")).start()
    print("ready", flush=True)
    sys.stdin.read()
    server.stop()
    server.backend.close()


def _child_main(endpoint, n, launches_per_sync):
    conn = Connection(endpoint, os.environ["ORIONX_TOKEN"], transport="unix")
    params, gemm = _prepare(conn, n)
    print("session %d" % conn.session_id, flush=True)
    sys.stdin.readline()  # "go"
    stopped = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stopped.set()), daemon=True).start()
    while not stopped.is_set():
        for _ in range(launches_per_sync):
            conn.launch_kernel(gemm, 1, 1, 1, 16, 16, 1, 0, 0, buffer=params)
        conn.ctx_synchronize()
    conn.close()


def _prepare(conn, n):
    (module,) = conn.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (gemm,) = conn.module_get_function(module, buffer=b"gemm_f32")
    (fill,) = conn.module_get_function(module, buffer=b"fill_f32")
    a, b, c = (conn.mem_alloc(4 * n * n)[0] for _ in range(3))
    for dptr in (a, b):
        conn.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                           buffer=struct.pack("<QQf", dptr, n * n, 0.5))
    conn.ctx_synchronize()
    return struct.pack("<QQQIII", c, a, b, n, n, n), gemm


def device_times(control):
    """session id -> device seconds so far, from the GPU server."""
    return {s["session_id"]: s["device_time_s"] for s in control.usage()["sessions"]}


def measure(control, loads, seconds, warmup_s=0.5):
    """(device seconds of each load during ``seconds``, wall seconds)."""
    time.sleep(warmup_s)
    before, started = device_times(control), time.monotonic()
    time.sleep(seconds)
    after, wall_s = device_times(control), time.monotonic() - started
    return [after[load.session_id] - before[load.session_id] for load in loads], wall_s


def run_mix(server, control, token_for, shares_pct, seconds, n=GEMM_N):
    """Run one GemmLoad per share at once; fractions of device time each got
    (of all device time, and of the wall-clock interval)."""
    loads = [GemmLoad(server.endpoints[0], token_for(index, pct), n=n)
             for index, pct in enumerate(shares_pct)]
    for load in loads:
        load.start()
    try:
        used, wall_s = measure(control, loads, seconds)
    finally:
        for load in loads:
            load.stop()
    for load in loads:
        if load.error is not None:
            raise load.error
    total = sum(used) or 1.0
    return [u / total for u in used], [u / wall_s for u in used]


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        _serve_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1",
                    int(sys.argv[6]))
    else:
        _child_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
