"""Allocate, copy in, run each built-in kernel, copy out, compare with numpy,
over every transport, through the cuda-python-shaped API."""

import ctypes

import numpy as np
import pytest

from guest_runtime import kernels, protocol
from tests.dataplane.conftest import TRANSPORTS

N = 10_000


def ok(result):
    assert result[0] == 0, result
    return result[1] if len(result) == 2 else result[1:]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_builtin_kernels_match_numpy(driver, transport):
    cuda = driver(transport)
    assert cuda.cuDeviceGetCount() == (cuda.CUresult.CUDA_SUCCESS, 1)
    rng = np.random.default_rng(7)
    x, y = rng.random(N, dtype=np.float32), rng.random(N, dtype=np.float32)
    d_x, d_y = ok(cuda.cuMemAlloc(x.nbytes)), ok(cuda.cuMemAlloc(y.nbytes))
    ok(cuda.cuMemcpyHtoD(d_x, x, x.nbytes))
    ok(cuda.cuMemcpyHtoD(d_y, y, y.nbytes))

    module = ok(cuda.cuModuleLoadData(protocol.BUILTIN_MODULE_IMAGE))
    axpy = ok(cuda.cuModuleGetFunction(module, b"axpy_f32"))
    args = ((d_y, d_x, N, 3.0), (None, None, ctypes.c_uint64, ctypes.c_float))
    ok(cuda.cuLaunchKernel(axpy, 40, 1, 1, 256, 1, 1, 0, 0, args, 0))
    out = np.empty_like(y)
    ok(cuda.cuMemcpyDtoH(out, d_y, out.nbytes))
    np.testing.assert_allclose(out, np.float32(3.0) * x + y, rtol=1e-6)

    kernels.scale_f32(d_x, N, 0.5)
    ok(cuda.cuMemcpyDtoH(out, d_x, out.nbytes))
    np.testing.assert_allclose(out, x * np.float32(0.5), rtol=1e-6)

    d_sum = ok(cuda.cuMemAlloc(4))
    kernels.sum_f32(d_sum, d_x, N)
    total = np.empty(1, np.float32)
    ok(cuda.cuMemcpyDtoH(total, d_sum, 4))
    assert total[0] == pytest.approx(float(np.sum(x * np.float32(0.5))), rel=1e-4)

    kernels.fill_f32(d_y, 1.25, N)
    ok(cuda.cuMemcpyDtoH(out, d_y, out.nbytes))
    assert (out == np.float32(1.25)).all()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_gemm_and_async_copies(driver, transport):
    cuda = driver(transport)
    m, n, k = 64, 48, 32
    rng = np.random.default_rng(3)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    d_a, d_b, d_c = (ok(cuda.cuMemAlloc(nbytes)) for nbytes in (a.nbytes, b.nbytes, 4 * m * n))
    stream = ok(cuda.cuStreamCreate(0))
    ok(cuda.cuMemcpyHtoDAsync(d_a, a, a.nbytes, stream))
    ok(cuda.cuMemcpyHtoDAsync(d_b, b, b.nbytes, stream))
    kernels.gemm_f32(d_c, d_a, d_b, m, n, k, stream=stream)
    c = np.empty((m, n), np.float32)
    ok(cuda.cuMemcpyDtoHAsync(c, d_c, c.nbytes, stream))
    ok(cuda.cuStreamSynchronize(stream))
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
    ok(cuda.cuStreamDestroy(stream))


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_bulk_copy_larger_than_the_shm_ring(driver, transport):
    cuda = driver(transport, memory_mb=32)
    data = np.random.default_rng(5).integers(0, 255, 9 << 20, dtype=np.uint8)
    d_data = ok(cuda.cuMemAlloc(data.nbytes))
    ok(cuda.cuMemcpyHtoD(d_data, data, data.nbytes))
    back = np.zeros_like(data)
    ok(cuda.cuMemcpyDtoH(back, d_data, back.nbytes))
    assert np.array_equal(back, data)


def test_memset_dtod_events_and_queries(driver):
    cuda = driver("unix", memory_mb=16)
    free_bytes, total_bytes = ok(cuda.cuMemGetInfo())
    assert total_bytes == 16 << 20 and free_bytes == total_bytes
    assert ok(cuda.cuDeviceTotalMem(0)) == 16 << 20
    attribute = cuda.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_WARP_SIZE
    assert ok(cuda.cuDeviceGetAttribute(attribute, 0)) == 32
    assert b"vgpu-1" in ok(cuda.cuDeviceGetName(64, 0))
    src, dst = ok(cuda.cuMemAlloc(1024)), ok(cuda.cuMemAlloc(1024))
    ok(cuda.cuMemsetD32(src, 0x01020304, 256))
    ok(cuda.cuMemcpyDtoD(dst, src, 1024))
    out = np.empty(256, np.uint32)
    ok(cuda.cuMemcpyDtoH(out, dst, 1024))
    assert (out == 0x01020304).all()
    ok(cuda.cuMemsetD8Async(dst, 7, 1024, 0))
    raw = bytearray(1024)
    ok(cuda.cuMemcpyDtoH(raw, dst, 1024))
    assert raw == bytes([7]) * 1024
    start, end = ok(cuda.cuEventCreate(0)), ok(cuda.cuEventCreate(0))
    ok(cuda.cuEventRecord(start, 0))
    kernels.fill_f32(src, 1.0, 256)
    ok(cuda.cuEventRecord(end, 0))
    ok(cuda.cuEventSynchronize(end))
    assert ok(cuda.cuEventElapsedTime(start, end)) >= 0.0
    assert ok(cuda.cuMemGetInfo())[0] == (16 << 20) - 2048


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


def test_host_allocations_and_address_copies(driver):
    cuda = driver("shm")
    err, host = cuda.cuMemAllocHost(4096)
    assert err == 0
    ctypes.memmove(host, b"orionx" * 100, 600)
    d_buf = ok(cuda.cuMemAlloc(600))
    ok(cuda.cuMemcpyHtoD(d_buf, host, 600))  # an integer host address, as cuda-python takes
    back = bytearray(600)
    ok(cuda.cuMemcpyDtoH(back, d_buf, 600))
    assert bytes(back) == b"orionx" * 100
    assert cuda.cuMemFreeHost(host) == (cuda.CUresult.CUDA_SUCCESS,)
    assert cuda.cuMemFreeHost(host)[0] == cuda.CUresult.CUDA_ERROR_INVALID_VALUE
    assert cuda.cuGetErrorName(2) == (cuda.CUresult.CUDA_SUCCESS, b"CUDA_ERROR_OUT_OF_MEMORY")


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


def test_builtin_handles_do_not_outlive_their_session(driver):
    from guest_runtime import runtime
    cuda = driver("unix")
    for _ in range(5):  # new connections may reuse the old one's memory address
        d_x = ok(cuda.cuMemAlloc(64))
        kernels.fill_f32(d_x, 1.0, 16)
        ok(cuda.cuCtxSynchronize())
        settings = dict(runtime._settings)
        runtime.reset()
        runtime.configure(**settings)
        ok(cuda.cuInit(0))
