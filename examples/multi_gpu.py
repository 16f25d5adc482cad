"""Data-parallel saxpy over every GPU the program sees, gathered on the
first with peer copies, with NVIDIA's cuda-python driver API.

A plain CUDA program for one machine's GPUs; on the pool the vGPUs of one
allocation sit on distinct GPUs, possibly on different hosts, and the
program sees them as devices 0..N-1 either way:

    orionx-run --compute-pct 25 --memory-mb 512 --count 2 -- python examples/multi_gpu.py
"""

import ctypes
import sys

import numpy as np
from cuda.bindings import driver as cuda
from kernels import check, load, run

BLOCK = 256


def saxpy_on_device(ordinal, a, x, y):
    """y := a*x + y on device ``ordinal``; returns (device, context, module, device y)."""
    device = check(cuda.cuDeviceGet(ordinal))
    context = check(cuda.cuDevicePrimaryCtxRetain(device))
    check(cuda.cuCtxSetCurrent(context))
    module, kernel = load("axpy_f32")
    d_x, d_y = check(cuda.cuMemAlloc(x.nbytes)), check(cuda.cuMemAlloc(y.nbytes))
    check(cuda.cuMemcpyHtoD(d_x, x, x.nbytes))
    check(cuda.cuMemcpyHtoD(d_y, y, y.nbytes))
    # axpy_f32(float *y, const float *x, unsigned long long n, float a)
    args = ((d_y, d_x, x.size, a), (None, None, ctypes.c_uint64, ctypes.c_float))
    check(cuda.cuLaunchKernel(kernel, (x.size + BLOCK - 1) // BLOCK, 1, 1, BLOCK, 1, 1,
                              0, 0, args, 0))
    check(cuda.cuCtxSynchronize())
    check(cuda.cuMemFree(d_x))
    return device, context, module, d_y


def main(n=1 << 20, a=2.0):
    check(cuda.cuInit(0))
    devices = check(cuda.cuDeviceGetCount())
    rng = np.random.default_rng(3)
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    parts = np.array_split(np.arange(n), devices)
    results = [saxpy_on_device(i, a, x[p], y[p].copy()) for i, p in enumerate(parts)]

    # Gather every part on device 0 with peer copies, then read it back once.
    ctx0 = results[0][1]
    check(cuda.cuCtxSetCurrent(ctx0))
    d_all = check(cuda.cuMemAlloc(y.nbytes))
    offset_bytes = 0
    for (_, context, _, d_part), part in zip(results, parts, strict=True):
        size_bytes = part.size * 4
        check(cuda.cuMemcpyPeer(int(d_all) + offset_bytes, ctx0, d_part, context, size_bytes))
        offset_bytes += size_bytes
    gathered = np.empty_like(y)
    check(cuda.cuMemcpyDtoH(gathered, d_all, gathered.nbytes))

    ok = np.allclose(gathered, a * x + y, rtol=1e-5, atol=1e-5)
    print("saxpy over %d device(s), n=%d, gathered on device 0: %s"
          % (devices, n, "OK" if ok else "MISMATCH"))
    check(cuda.cuMemFree(d_all))
    for device, context, module, d_part in results:
        check(cuda.cuCtxSetCurrent(context))
        check(cuda.cuMemFree(d_part))
        check(cuda.cuModuleUnload(module))
        check(cuda.cuDevicePrimaryCtxRelease(device))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run(main))
