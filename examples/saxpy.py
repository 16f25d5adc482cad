"""SAXPY (y = a * x + y) with NVIDIA's cuda-python driver API.

A plain CUDA program: it runs on a machine with its own GPU as it is, and on
a vGPU of the pool with ``orionx-run -- python examples/saxpy.py``. The
kernel is PTX text (kernels.py), which every driver compiles when it loads
the module.
"""

import ctypes
import sys

import numpy as np
from cuda.bindings import driver as cuda
from kernels import check, load, run

THREADS_PER_BLOCK = 256


def main(n=1 << 20, a=2.5):
    check(cuda.cuInit(0))
    device = check(cuda.cuDeviceGet(0))
    context = check(cuda.cuDevicePrimaryCtxRetain(device))
    check(cuda.cuCtxSetCurrent(context))
    module, kernel = load("axpy_f32")

    rng = np.random.default_rng(0)
    x = rng.random(n, dtype=np.float32)
    y = rng.random(n, dtype=np.float32)
    nbytes = x.nbytes
    d_x = check(cuda.cuMemAlloc(nbytes))
    d_y = check(cuda.cuMemAlloc(nbytes))
    stream = check(cuda.cuStreamCreate(0))

    check(cuda.cuMemcpyHtoDAsync(d_x, x, nbytes, stream))
    check(cuda.cuMemcpyHtoDAsync(d_y, y, nbytes, stream))
    # axpy_f32(float *y, const float *x, unsigned long long n, float a)
    args = ((d_y, d_x, n, a), (None, None, ctypes.c_uint64, ctypes.c_float))
    blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    check(cuda.cuLaunchKernel(kernel, blocks, 1, 1, THREADS_PER_BLOCK, 1, 1, 0, stream,
                              args, 0))
    result = np.empty_like(y)
    check(cuda.cuMemcpyDtoHAsync(result, d_y, nbytes, stream))
    check(cuda.cuStreamSynchronize(stream))

    expected = np.float32(a) * x + y
    ok = np.allclose(result, expected, rtol=1e-6)
    print("saxpy n=%d a=%g: %s" % (n, a, "OK" if ok else "MISMATCH"))

    check(cuda.cuStreamDestroy(stream))
    check(cuda.cuMemFree(d_x))
    check(cuda.cuMemFree(d_y))
    check(cuda.cuModuleUnload(module))
    check(cuda.cuDevicePrimaryCtxRelease(device))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run(main))
