"""A saturating PTX workload in its own process, for measuring compute shares.

Like tests.qos.workload.GemmLoad (the same LoadProcess), but each launch is a kernel of PTX that
NVRTC compiled, run by the sim's executor: batches of launches, each batch
followed by a synchronising call, until stdin closes.
"""

import os
import struct
import sys
import threading

from guest_runtime.client import Connection
from tests.qos.workload import LoadProcess

LAUNCHES_PER_SYNC = 16
THREADS = 256

BUSY_SOURCE = r"""
extern "C" __global__ void busy(float *x, int iterations)
{
    float acc = x[threadIdx.x];
    for (int i = 0; i < iterations; ++i)
        acc = acc * 0.999f + 1.0f;
    x[threadIdx.x] = acc;
}
"""
# A few milliseconds per launch on one core.
ITERATIONS = 60


class PtxLoad(LoadProcess):
    """One client session in a child process that keeps the GPU busy."""

    def __init__(self, endpoint, token, ptx_path):
        super().__init__(token, "tests.ptx.ptx_load", endpoint, ptx_path)


def _child_main(endpoint, ptx_path):
    conn = Connection(endpoint, os.environ["ORIONX_TOKEN"], transport="unix")
    with open(ptx_path, "rb") as f:
        (module,) = conn.module_load_data(buffer=f.read())
    (busy,) = conn.module_get_function(module, buffer=b"busy")
    (x,) = conn.mem_alloc(4 * THREADS)
    params = struct.pack("<Qi", x, ITERATIONS)
    print("session %d" % conn.session_id, flush=True)
    sys.stdin.readline()  # "go"
    stopped = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stopped.set()), daemon=True).start()
    while not stopped.is_set():
        for _ in range(LAUNCHES_PER_SYNC):
            conn.launch_kernel(busy, 1, 1, 1, THREADS, 1, 1, 0, 0, buffer=params)
        conn.ctx_synchronize()
    conn.close()


if __name__ == "__main__":
    _child_main(sys.argv[1], sys.argv[2])
