"""Single-precision matrix multiply with cuda-python's driver API, timed
with CUDA events.

Run it on a vGPU of the pool with ``orionx-run -- python examples/gemm.py``.
"""

import ctypes
import sys

import numpy as np
from cuda.bindings import driver as cuda

# cuModuleLoadData of this image returns the pool's built-in kernels.
BUILTIN_MODULE_IMAGE = b"orionx:builtin-kernels\x00"
TILE = 16


def check(result):
    """The values of a (CUresult, value...) tuple; exit on an error."""
    err, *values = result
    if err != cuda.CUresult.CUDA_SUCCESS:
        _, name = cuda.cuGetErrorName(err)
        sys.exit("CUDA call failed: %s" % name.decode())
    return values[0] if len(values) == 1 else values


def main(m=512, n=384, k=256, repeats=5):
    check(cuda.cuInit(0))
    device = check(cuda.cuDeviceGet(0))
    context = check(cuda.cuCtxCreate(0, device))
    name = check(cuda.cuDeviceGetName(128, device)).split(b"\0")[0].decode()
    free_bytes, total_bytes = check(cuda.cuMemGetInfo())
    print("device: %s, %d of %d MB free" % (name, free_bytes >> 20, total_bytes >> 20))
    module = check(cuda.cuModuleLoadData(BUILTIN_MODULE_IMAGE))
    kernel = check(cuda.cuModuleGetFunction(module, b"gemm_f32"))

    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), dtype=np.float32)
    d_a, d_b, d_c = (check(cuda.cuMemAlloc(arr.nbytes)) for arr in (a, b, c))
    check(cuda.cuMemcpyHtoD(d_a, a, a.nbytes))
    check(cuda.cuMemcpyHtoD(d_b, b, b.nbytes))

    start, end = check(cuda.cuEventCreate(0)), check(cuda.cuEventCreate(0))
    # kernel signature: gemm_f32(float *c, const float *a, const float *b,
    #                            uint32 m, uint32 n, uint32 k)
    args = ((d_c, d_a, d_b, m, n, k),
            (None, None, None, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32))
    grid = ((n + TILE - 1) // TILE, (m + TILE - 1) // TILE, 1)
    check(cuda.cuEventRecord(start, 0))
    for _ in range(repeats):
        check(cuda.cuLaunchKernel(kernel, *grid, TILE, TILE, 1, 0, 0, args, 0))
    check(cuda.cuEventRecord(end, 0))
    check(cuda.cuEventSynchronize(end))
    elapsed_ms = check(cuda.cuEventElapsedTime(start, end))
    check(cuda.cuMemcpyDtoH(c, d_c, c.nbytes))

    ok = np.allclose(c, a @ b, rtol=1e-3, atol=1e-3)
    gflops = 2.0 * m * n * k * repeats / max(elapsed_ms, 1e-6) / 1e6
    print("gemm %dx%dx%d x%d: %.2f ms, %.1f GFLOP/s: %s"
          % (m, n, k, repeats, elapsed_ms, gflops, "OK" if ok else "MISMATCH"))

    for event in (start, end):
        check(cuda.cuEventDestroy(event))
    for ptr in (d_a, d_b, d_c):
        check(cuda.cuMemFree(ptr))
    check(cuda.cuCtxDestroy(context))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
