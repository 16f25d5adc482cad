"""Allocate, copy in, run each built-in kernel, copy out, compare with numpy,
over every transport, as a program does: NVIDIA's cuda.bindings over the
library (tests/dataplane/driver_checks.py); and the server's side of
sessions through the protocol-level client."""

import numpy as np
import pytest

from guest_runtime import protocol
from tests.dataplane.conftest import TRANSPORTS
from tests.dataplane.driver_checks import run_checks
from tests.dataplane.test_isolation import wait_until
from tests.libcuda.conftest import client_environment, libcuda_dir  # noqa: F401 - fixture
from tests.libcuda.test_transports import _tls_env


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_kernels_copies_and_queries_over_every_transport(request, libcuda_dir,  # noqa: F811
                                                         transport):
    if transport == "tls":
        srv = request.getfixturevalue("tls_server")
        env = _tls_env(srv, libcuda_dir, request.getfixturevalue("tls_files")[0])
    else:
        srv = request.getfixturevalue("server")
        env = client_environment(srv, libcuda_dir, transport=transport, memory_mb=64)
    env["ORIONX_CHECK_MEMORY_BYTES"] = str(64 << 20)
    run_checks(env, "queries_memsets_and_events", "builtin_kernels",
               "gemm_and_async_copies", "bulk_copy")
    assert wait_until(lambda: srv.sessions() == [])  # the program's exit ended it


def test_device_queries_are_cached(connect):
    connection = connect()
    first = connection.device_get_attribute(16, 0)
    connection.stream.close()  # a second, uncached query would now fail
    assert connection.device_get_attribute(16, 0) == first


def test_device_time_is_metered_per_session(server, connect):
    connection = connect()
    (dptr,) = connection.mem_alloc(4 << 20)
    (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (fill,) = connection.module_get_function(module, buffer=b"fill_f32")
    import struct
    for _ in range(20):
        connection.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                                 buffer=struct.pack("<QQf", dptr, 1 << 20, 2.0))
    connection.ctx_synchronize()
    (session,) = server.sessions()
    assert session.usage.launches == 20
    assert session.usage.device_s > 0


def test_client_picks_the_fastest_endpoint_offered(server):
    from guest_runtime.client import Connection
    from tests.dataplane.conftest import make_token
    both = "%s,%s" % (server.endpoints[1], server.endpoints[0])  # tcp listed first
    connection = Connection(both, make_token())
    assert connection.transport == "shm"
    connection.close()
    missing = "unix:/nonexistent/orionx.sock,%s" % server.endpoints[1]
    connection = Connection(missing, make_token())
    assert connection.transport == "tcp"
    connection.close()


def test_host_allocations_and_address_copies(server, libcuda_dir):  # noqa: F811
    stderr = run_checks(client_environment(server, libcuda_dir, transport="shm"),
                        "host_allocations")
    assert "cuMemFreeHost" in stderr and "CUDA_ERROR_INVALID_VALUE" in stderr


def test_many_sessions_at_once(server, connect):
    import struct
    import threading
    connections = [connect(transport) for transport in ("shm", "unix", "tcp") * 3]
    failures = []

    def work(index, connection):
        try:
            n = 50_000 + index
            x = np.full(n, index, np.float32)
            (d_x,) = connection.mem_alloc(x.nbytes)
            (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
            (scale,) = connection.module_get_function(module, buffer=b"scale_f32")
            for _ in range(10):
                connection.memcpy_htod(d_x, buffer=memoryview(x).cast("B"))
                for _ in range(3):
                    connection.launch_kernel(scale, 1, 1, 1, 256, 1, 1, 0, 0,
                                             buffer=struct.pack("<QQf", d_x, n, 2.0))
                out = np.empty_like(x)
                connection.memcpy_dtoh(d_x, x.nbytes, 0, reply_into=memoryview(out).cast("B"))
                assert (out == 8.0 * index).all()
            connection.mem_free(d_x)
        except Exception as exc:  # collected for the main thread
            failures.append((index, exc))

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(server.sessions()) == len(connections)
