"""A guest program for the agent tests: a plain program on NVIDIA's
cuda-python driver API, run under orionx-run (the OrionX libcuda.so.1, in
acquire mode through orionx-run's broker).

    workload.py once          copy in, gemm, copy out, check; print "ok"
    workload.py devices       print "devices N" and each device's memory
    workload.py peer          two devices: fill on 0, copy to 1, check on 1
    workload.py loop SECONDS  keep computing; on an error print it and exit 3

A failed call prints "error CUDA_ERROR_..." on stdout and exits 3; the
library has said why on stderr ("orionx libcuda: CALL: ...").
"""

import ctypes
import os
import sys
import time

import numpy as np
from cuda.bindings import driver as cuda

# The examples' PTX kernels and helpers: one copy of them.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples"))
from kernels import CudaError, check, load  # noqa: E402

TILE = 16


def context(ordinal):
    device = check(cuda.cuDeviceGet(ordinal))
    primary = check(cuda.cuDevicePrimaryCtxRetain(device))
    check(cuda.cuCtxSetCurrent(primary))
    # The first call that needs the GPU server binds (and waits in the
    # queue): done here, so "running" means bound and connected.
    check(cuda.cuMemGetInfo())
    return primary


def gemm(size=64):
    module, kernel = load("gemm_f32")
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


def main(argv):
    mode = argv[1]
    try:
        if mode == "loop":
            loop(float(argv[2]))
        else:
            {"once": once, "devices": devices, "peer": peer}[mode]()
    except CudaError as exc:
        print("error %s" % exc.name, flush=True)
        sys.exit(3)


if __name__ == "__main__":
    main(sys.argv)
