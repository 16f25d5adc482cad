"""Single-precision matrix multiply with NVIDIA's cuda-python driver API,
timed with CUDA events.

A plain CUDA program: it runs on a machine with its own GPU as it is, and on
a vGPU of the pool with ``orionx-run -- python examples/gemm.py``. The
kernel (kernels.py, PTX) is a naive one, one thread per element of C.
"""

import ctypes
import sys

import numpy as np
from cuda.bindings import driver as cuda
from kernels import check, load, run

TILE = 16


def main(m=128, n=96, k=64, repeats=3):
    check(cuda.cuInit(0))
    device = check(cuda.cuDeviceGet(0))
    context = check(cuda.cuDevicePrimaryCtxRetain(device))
    check(cuda.cuCtxSetCurrent(context))
    name = check(cuda.cuDeviceGetName(128, device)).split(b"\0")[0].decode()
    free_bytes, total_bytes = check(cuda.cuMemGetInfo())
    print("device: %s, %d of %d MB free" % (name, free_bytes >> 20, total_bytes >> 20))
    module, kernel = load("gemm_f32")

    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), dtype=np.float32)
    d_a, d_b, d_c = (check(cuda.cuMemAlloc(arr.nbytes)) for arr in (a, b, c))
    check(cuda.cuMemcpyHtoD(d_a, a, a.nbytes))
    check(cuda.cuMemcpyHtoD(d_b, b, b.nbytes))

    start, end = check(cuda.cuEventCreate(0)), check(cuda.cuEventCreate(0))
    # gemm_f32(float *c, const float *a, const float *b, unsigned m, unsigned n, unsigned k)
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
    print("gemm %dx%dx%d x%d: %.2f ms, %.3g GFLOP/s: %s"
          % (m, n, k, repeats, elapsed_ms, gflops, "OK" if ok else "MISMATCH"))

    for event in (start, end):
        check(cuda.cuEventDestroy(event))
    for ptr in (d_a, d_b, d_c):
        check(cuda.cuMemFree(ptr))
    check(cuda.cuModuleUnload(module))
    check(cuda.cuDevicePrimaryCtxRelease(device))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run(main))
