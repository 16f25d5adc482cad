"""Data-plane checks as a program sees them: NVIDIA's own cuda.bindings.driver
over OrionX's libcuda.so.1, in a child process (a program's driver is
loaded once per process, so each run is one client of the pool).

``python -m tests.dataplane.driver_checks CHECK...`` initialises the driver,
makes the primary context current, runs the named checks in order on that
one session and prints PASSED. The parent's side is :func:`run_checks`; the
library directory and environment come from tests/libcuda/conftest.py.
Checks read their sizes from ``ORIONX_CHECK_*`` variables.
"""

import ctypes
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def run_checks(env, *checks, timeout_s=120):
    """Run CHECKS in one child with ENV; its stderr (the library's messages)."""
    result = subprocess.run([sys.executable, "-m", "tests.dataplane.driver_checks", *checks],
                            cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=timeout_s)
    assert result.returncode == 0 and "PASSED" in result.stdout, (
        result.stdout + result.stderr)
    return result.stderr


# -- the child's side ----------------------------------------------------------------

def ok(result):
    """The values of a (CUresult, ...) tuple whose result is success."""
    from cuda.bindings import driver
    assert result[0] == driver.CUresult.CUDA_SUCCESS, result
    values = result[1:]
    return values[0] if len(values) == 1 else values


def fails(result, name):
    assert result[0].name == name, (result, name)


def _ctype(code):
    return {"P": None, "Q": ctypes.c_uint64, "I": ctypes.c_uint32, "f": ctypes.c_float}[code]


_functions = {}


def launch(name, stream=0, **values):
    """Launch built-in kernel NAME with its parameters by name, as a
    program does: kernelParams as cuda-python's (values, types), which the
    library packs by the layout the server gives."""
    from cuda.bindings import driver

    from guest_runtime import protocol
    from guest_runtime.builtin_kernels import KERNELS, launch_shape
    if name not in _functions:
        module = ok(driver.cuModuleLoadData(protocol.BUILTIN_MODULE_IMAGE))
        _functions[name] = ok(driver.cuModuleGetFunction(module, name.encode()))
    kernel = KERNELS[name]
    params = (tuple(values[p] for p in kernel.param_names),
              tuple(_ctype(code) for code in kernel.param_codes))
    grid, block = launch_shape(name, values)
    ok(driver.cuLaunchKernel(_functions[name], *grid, *block, 0, stream, params, 0))


def _setting(name, default):
    return int(os.environ.get("ORIONX_CHECK_" + name, default))


def check_queries_memsets_and_events():
    """Memory info is the vGPU's quota; memsets, device copies, events."""
    import numpy as np
    from cuda.bindings import driver
    total = _setting("MEMORY_BYTES", 64 << 20)
    free_bytes, total_bytes = ok(driver.cuMemGetInfo())
    assert total_bytes == total and free_bytes == total_bytes, (free_bytes, total_bytes)
    device = ok(driver.cuDeviceGet(0))
    assert ok(driver.cuDeviceTotalMem(device)) == total
    attribute = driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_WARP_SIZE
    assert ok(driver.cuDeviceGetAttribute(attribute, device)) == 32
    assert b"vgpu-1" in ok(driver.cuDeviceGetName(64, device))
    src, dst = ok(driver.cuMemAlloc(1024)), ok(driver.cuMemAlloc(1024))
    ok(driver.cuMemsetD32(src, 0x01020304, 256))
    ok(driver.cuMemcpyDtoD(dst, src, 1024))
    out = np.empty(256, np.uint32)
    ok(driver.cuMemcpyDtoH(out.ctypes.data, dst, 1024))
    assert (out == 0x01020304).all()
    ok(driver.cuMemsetD8Async(dst, 7, 1024, 0))
    raw = bytearray(1024)
    ok(driver.cuMemcpyDtoH(raw, dst, 1024))
    assert raw == bytes([7]) * 1024
    start, end = ok(driver.cuEventCreate(0)), ok(driver.cuEventCreate(0))
    ok(driver.cuEventRecord(start, 0))
    launch("fill_f32", out=src, n=256, value=1.0)
    ok(driver.cuEventRecord(end, 0))
    ok(driver.cuEventSynchronize(end))
    assert ok(driver.cuEventElapsedTime(start, end)) >= 0.0
    assert ok(driver.cuMemGetInfo())[0] == total - 2048
    ok(driver.cuMemFree(src))
    ok(driver.cuMemFree(dst))


def check_builtin_kernels():
    """Each built-in kernel matches numpy."""
    import numpy as np
    from cuda.bindings import driver
    n = 10_000
    rng = np.random.default_rng(7)
    x, y = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    d_x, d_y = ok(driver.cuMemAlloc(x.nbytes)), ok(driver.cuMemAlloc(y.nbytes))
    ok(driver.cuMemcpyHtoD(d_x, x.ctypes.data, x.nbytes))
    ok(driver.cuMemcpyHtoD(d_y, y.ctypes.data, y.nbytes))
    launch("axpy_f32", y=d_y, x=d_x, n=n, a=3.0)
    out = np.empty_like(y)
    ok(driver.cuMemcpyDtoH(out.ctypes.data, d_y, out.nbytes))
    np.testing.assert_allclose(out, np.float32(3.0) * x + y, rtol=1e-6)
    launch("scale_f32", x=d_x, n=n, a=0.5)
    ok(driver.cuMemcpyDtoH(out.ctypes.data, d_x, out.nbytes))
    np.testing.assert_allclose(out, x * np.float32(0.5), rtol=1e-6)
    d_sum = ok(driver.cuMemAlloc(4))
    launch("sum_f32", out=d_sum, x=d_x, n=n)
    total = np.empty(1, np.float32)
    ok(driver.cuMemcpyDtoH(total.ctypes.data, d_sum, 4))
    expected = float(np.sum(x * np.float32(0.5)))
    assert abs(total[0] - expected) <= 1e-4 * expected, (total[0], expected)
    launch("fill_f32", out=d_y, n=n, value=1.25)
    ok(driver.cuMemcpyDtoH(out.ctypes.data, d_y, out.nbytes))
    assert (out == np.float32(1.25)).all()
    for dptr in (d_x, d_y, d_sum):
        ok(driver.cuMemFree(dptr))


def check_gemm_and_async_copies():
    import numpy as np
    from cuda.bindings import driver
    m, n, k = 64, 48, 32
    rng = np.random.default_rng(3)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    d_a, d_b, d_c = (ok(driver.cuMemAlloc(nbytes)) for nbytes in (a.nbytes, b.nbytes, 4 * m * n))
    stream = ok(driver.cuStreamCreate(0))
    ok(driver.cuMemcpyHtoDAsync(d_a, a.ctypes.data, a.nbytes, stream))
    ok(driver.cuMemcpyHtoDAsync(d_b, b.ctypes.data, b.nbytes, stream))
    launch("gemm_f32", stream, c=d_c, a=d_a, b=d_b, m=m, n=n, k=k)
    c = np.empty((m, n), np.float32)
    ok(driver.cuMemcpyDtoHAsync(c.ctypes.data, d_c, c.nbytes, stream))
    ok(driver.cuStreamSynchronize(stream))
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
    ok(driver.cuStreamDestroy(stream))
    for dptr in (d_a, d_b, d_c):
        ok(driver.cuMemFree(dptr))


def check_bulk_copy():
    """A copy larger than the server's 1 MB shared-memory ring, both ways."""
    import numpy as np
    from cuda.bindings import driver
    data = np.random.default_rng(5).integers(0, 255, 9 << 20, dtype=np.uint8)
    d_data = ok(driver.cuMemAlloc(data.nbytes))
    ok(driver.cuMemcpyHtoD(d_data, data.ctypes.data, data.nbytes))
    back = np.zeros_like(data)
    ok(driver.cuMemcpyDtoH(back.ctypes.data, d_data, back.nbytes))
    assert np.array_equal(back, data)
    ok(driver.cuMemFree(d_data))


def check_host_allocations():
    """Page-locked host memory is this process's own; copies from its address."""
    from cuda.bindings import driver
    host = ok(driver.cuMemAllocHost(4096))
    ctypes.memmove(host, b"orionx" * 100, 600)
    d_buf = ok(driver.cuMemAlloc(600))
    ok(driver.cuMemcpyHtoD(d_buf, host, 600))
    back = bytearray(600)
    ok(driver.cuMemcpyDtoH(back, d_buf, 600))
    assert bytes(back) == b"orionx" * 100
    ok(driver.cuMemFreeHost(host))
    fails(driver.cuMemFreeHost(host), "CUDA_ERROR_INVALID_VALUE")
    name = ok(driver.cuGetErrorName(driver.CUresult.CUDA_ERROR_OUT_OF_MEMORY))
    assert name == b"CUDA_ERROR_OUT_OF_MEMORY"
    ok(driver.cuMemFree(d_buf))


def check_staged_copies():
    """Copies several times the cuda backend's staging buffer, the kernels
    on them, a gemm whose shape is no multiple of the tile."""
    import numpy as np
    from cuda.bindings import driver
    copy_bytes = _setting("COPY_BYTES", 1 << 20)
    n = copy_bytes // 4
    rng = np.random.default_rng(0)
    x, y = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    d_x, d_y, d_sum = (ok(driver.cuMemAlloc(size)) for size in (x.nbytes, y.nbytes, 4))
    ok(driver.cuMemcpyHtoD(d_x, x.ctypes.data, x.nbytes))
    ok(driver.cuMemcpyHtoD(d_y, y.ctypes.data, y.nbytes))
    launch("axpy_f32", y=d_y, x=d_x, n=n, a=2.0)
    launch("sum_f32", out=d_sum, x=d_y, n=n)
    out, total = np.empty_like(y), np.empty(1, np.float32)
    ok(driver.cuMemcpyDtoH(out.ctypes.data, d_y, out.nbytes))
    ok(driver.cuMemcpyDtoH(total.ctypes.data, d_sum, 4))
    np.testing.assert_allclose(out, np.float32(2.0) * x + y, rtol=1e-6)
    expected = float(out.astype(np.float64).sum())
    assert abs(total[0] - expected) <= 1e-3 * expected, (total[0], expected)

    m, k, nn = 200, 70, 130
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, nn), dtype=np.float32)
    d_a, d_b, d_c = (ok(driver.cuMemAlloc(s)) for s in (a.nbytes, b.nbytes, 4 * m * nn))
    ok(driver.cuMemcpyHtoD(d_a, a.ctypes.data, a.nbytes))
    ok(driver.cuMemcpyHtoD(d_b, b.ctypes.data, b.nbytes))
    launch("gemm_f32", c=d_c, a=d_a, b=d_b, m=m, n=nn, k=k)
    c = np.empty((m, nn), np.float32)
    ok(driver.cuMemcpyDtoH(c.ctypes.data, d_c, c.nbytes))
    np.testing.assert_allclose(c, a @ b, rtol=1e-3, atol=1e-3)

    ok(driver.cuMemsetD32(d_x, 5, 4))
    head = np.empty(4, np.uint32)
    ok(driver.cuMemcpyDtoH(head.ctypes.data, d_x, 16))
    assert (head == 5).all()


def check_preemption_is_a_cuda_error():
    """The session is preempted while this process waits on stdin (the
    parent preempts it, then writes a line): the next call and every later
    one fail with CUDA's CUDA_ERROR_MPS_CLIENT_TERMINATED, which NVIDIA's
    bindings name."""
    from cuda.bindings import driver
    ok(driver.cuMemAlloc(1 << 20))
    print("READY", flush=True)
    sys.stdin.readline()
    terminated = driver.CUresult.CUDA_ERROR_MPS_CLIENT_TERMINATED
    assert driver.cuMemAlloc(1 << 20)[0] == terminated
    assert driver.cuCtxSynchronize()[0] == terminated  # sticky
    _, name = driver.cuGetErrorName(terminated)
    assert name == b"CUDA_ERROR_MPS_CLIENT_TERMINATED"


def check_programs_own_ptx():
    """CUDA C compiled with NVRTC in this process, loaded and launched."""
    import numpy as np
    from cuda.bindings import driver, nvrtc
    source = rb"""
    extern "C" __global__ void my_saxpy(float a, const float *x, float *y, int n)
    {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] = a * x[i] + y[i];
    }
    """
    prog = nvrtc.nvrtcCreateProgram(source, b"saxpy.cu", 0, [], [])[1]
    assert int(nvrtc.nvrtcCompileProgram(prog, 1, [b"--gpu-architecture=compute_80"])[0]) == 0
    ptx = b" " * nvrtc.nvrtcGetPTXSize(prog)[1]
    nvrtc.nvrtcGetPTX(prog, ptx)
    module = ok(driver.cuModuleLoadData(ptx))
    function = ok(driver.cuModuleGetFunction(module, b"my_saxpy"))
    n = 5000
    x, y = np.arange(n, dtype=np.float32), np.ones(n, dtype=np.float32)
    d_x, d_y = ok(driver.cuMemAlloc(x.nbytes)), ok(driver.cuMemAlloc(y.nbytes))
    ok(driver.cuMemcpyHtoD(d_x, x.ctypes.data, x.nbytes))
    ok(driver.cuMemcpyHtoD(d_y, y.ctypes.data, y.nbytes))
    args = ((3.0, d_x, d_y, n), (ctypes.c_float, None, None, ctypes.c_int))
    ok(driver.cuLaunchKernel(function, (n + 255) // 256, 1, 1, 256, 1, 1, 0, 0, args, 0))
    ok(driver.cuMemcpyDtoH(y.ctypes.data, d_y, y.nbytes))
    np.testing.assert_allclose(y, 3.0 * x + 1.0)


def main(names):
    from cuda.bindings import driver
    checks = [globals()["check_" + name] for name in names]
    ok(driver.cuInit(0))
    context = ok(driver.cuDevicePrimaryCtxRetain(ok(driver.cuDeviceGet(0))))
    ok(driver.cuCtxSetCurrent(context))
    for check in checks:
        check()
    print("PASSED", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
