"""A PTX kernel's session whose buffers were moved to host RAM gets them back
before the kernel runs, at whatever device address: the kernel sees its own
data through its own pointers, and the other session's data is untouched."""

import os
import struct

import numpy as np

from guest_runtime.client import Connection
from orionx_agent.server.control import ControlClient
from orionx_agent.server.cuda_kernels import BUILTIN_KERNELS_SOURCE
from orionx_agent.server.scheduler import ComputeScheduler
from orionx_agent.server.server import GpuServer
from orionx_agent.server.sim_backend import SimGpu
from tests.ptx import compilers
from tests.qos.conftest import SECRET, make_token

MB = 1 << 20
BUFFER_BYTES = 20 * MB   # two sessions' buffers do not fit 32 MB at once
TOUCHED = 1 << 16        # floats the kernel scales


def test_evicted_buffers_come_back_before_a_ptx_kernel(socket_dir):
    server = GpuServer(SimGpu(32 * MB), SECRET,
                       unix_socket_path=os.path.join(socket_dir, "gpu.sock"),
                       scheduler=ComputeScheduler("elastic", 100),
                       control_socket_path=os.path.join(socket_dir, "gpu.control.sock"),
                       oversub_ratio=2.0).start()
    control = ControlClient(server.control.path)
    sessions = []
    try:
        sessions = [Connection(server.endpoints[0],
                               make_token("alloc-%d" % i, "vgpu-%d" % i, 50, 32),
                               transport="unix") for i in range(2)]
        first, second = sessions
        data = [np.random.default_rng(i).standard_normal(BUFFER_BYTES // 4).astype(np.float32)
                for i in range(2)]
        (first_dptr,) = first.mem_alloc(BUFFER_BYTES)
        first.memcpy_htod(first_dptr, buffer=data[0].tobytes())
        (second_dptr,) = second.mem_alloc(BUFFER_BYTES)  # moves the first's out
        second.memcpy_htod(second_dptr, buffer=data[1].tobytes())
        assert control.usage()["gpu"]["evictions"] >= 1

        (module,) = first.module_load_data(buffer=compilers.nvrtc(BUILTIN_KERNELS_SOURCE)
                                           .encode())
        (scale,) = first.module_get_function(module, buffer=b"scale_f32")
        first.launch_kernel(scale, TOUCHED // 256, 1, 1, 256, 1, 1, 0, 0,
                            buffer=struct.pack("<QQf", first_dptr, TOUCHED, 2.0))
        first.ctx_synchronize()

        expected = data[0].copy()
        expected[:TOUCHED] *= np.float32(2.0)
        (got,) = first.memcpy_dtoh(first_dptr, BUFFER_BYTES, 0)
        np.testing.assert_array_equal(np.frombuffer(got, dtype=np.float32), expected)
        (got,) = second.memcpy_dtoh(second_dptr, BUFFER_BYTES, 0)
        np.testing.assert_array_equal(np.frombuffer(got, dtype=np.float32), data[1])
    finally:
        for connection in sessions:
            connection.close()
        control.close()
        server.stop()
        server.backend.close()
