"""A guest program for the agent tests, written for cuda-python's driver API
and run under orionx-run.

    workload.py once          copy in, gemm, copy out, check; print "ok"
    workload.py devices       print "devices N" and each device's memory
    workload.py peer          two devices: fill on 0, copy to 1, check on 1
    workload.py loop SECONDS  keep computing; on an error print it and exit 3
"""

import ctypes
import sys
import time

import numpy as np
from cuda.bindings import driver as cuda

from guest_runtime.cuda import last_error_message

BUILTIN_MODULE_IMAGE = b"orionx:builtin-kernels\x00"
TILE = 16


def check(result):
    err, *values = result
    if err != cuda.CUresult.CUDA_SUCCESS:
        _, name = cuda.cuGetErrorName(err)
        print("error %s: %s" % (name.decode(), last_error_message()), flush=True)
        sys.exit(3)
    return values[0] if len(values) == 1 else values


def context(ordinal):
    return check(cuda.cuCtxCreate(0, check(cuda.cuDeviceGet(ordinal))))


def gemm(size=64):
    module = check(cuda.cuModuleLoadData(BUILTIN_MODULE_IMAGE))
    kernel = check(cuda.cuModuleGetFunction(module, b"gemm_f32"))
    rng = np.random.default_rng(1)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    c = np.empty_like(a)
    d_a, d_b, d_c = (check(cuda.cuMemAlloc(x.nbytes)) for x in (a, b, c))
    check(cuda.cuMemcpyHtoD(d_a, a, a.nbytes))
    check(cuda.cuMemcpyHtoD(d_b, b, b.nbytes))
    args = ((d_c, d_a, d_b, size, size, size),
            (None, None, None, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32))
    grid = ((size + TILE - 1) // TILE, (size + TILE - 1) // TILE, 1)
    check(cuda.cuLaunchKernel(kernel, *grid, TILE, TILE, 1, 0, 0, args, 0))
    check(cuda.cuMemcpyDtoH(c, d_c, c.nbytes))
    for pointer in (d_a, d_b, d_c):
        check(cuda.cuMemFree(pointer))
    check(cuda.cuModuleUnload(module))
    return bool(np.allclose(c, a @ b, rtol=1e-3, atol=1e-3))


def once():
    check(cuda.cuInit(0))
    context(0)
    print("ok" if gemm() else "wrong result", flush=True)


def devices():
    check(cuda.cuInit(0))
    count = check(cuda.cuDeviceGetCount())
    print("devices %d" % count)
    for ordinal in range(count):
        print("device %d memory_mb %d" % (ordinal, check(cuda.cuDeviceTotalMem(ordinal)) >> 20))


def peer():
    check(cuda.cuInit(0))
    assert check(cuda.cuDeviceGetCount()) == 2
    ctx0, ctx1 = context(0), context(1)
    data = np.arange(1 << 18, dtype=np.float32)
    check(cuda.cuCtxSetCurrent(ctx0))
    src = check(cuda.cuMemAlloc(data.nbytes))
    check(cuda.cuMemcpyHtoD(src, data, data.nbytes))
    check(cuda.cuCtxSetCurrent(ctx1))
    dst = check(cuda.cuMemAlloc(data.nbytes))
    check(cuda.cuMemcpyPeer(dst, ctx1, src, ctx0, data.nbytes))
    back = np.empty_like(data)
    check(cuda.cuMemcpyDtoH(back, dst, back.nbytes))
    print("peer copy ok" if np.array_equal(back, data) else "peer copy wrong", flush=True)
    print("gemm on device 1 ok" if gemm() else "wrong result", flush=True)


def loop(seconds):
    check(cuda.cuInit(0))
    context(0)
    print("running", flush=True)
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        if not gemm(32):
            print("wrong result", flush=True)
            sys.exit(4)
        rounds += 1
    print("finished %d rounds" % rounds, flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "loop":
        loop(float(sys.argv[2]))
    else:
        {"once": once, "devices": devices, "peer": peer}[mode]()
