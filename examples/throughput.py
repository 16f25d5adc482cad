"""A compute-bound job: repeated single-precision matrix multiplies for a
given time, reporting its throughput. The all-in-one demo runs several at
once on slices of one GPU to show that compute shares hold.

    orionx-run --compute-pct 30 --memory-mb 512 -- python examples/throughput.py --seconds 8

It prints ``throughput: N GFLOP/s`` about every second and, at the end, one
line ``RESULT {...}`` with the totals as JSON. A session the pool preempts
ends with exit status 3.
"""

import argparse
import ctypes
import json
import sys
import time

import numpy as np
from cuda.bindings import driver as cuda
from kernels import CudaError, check, load

TILE = 16
EXIT_PREEMPTED = 3
LAUNCHES_PER_SYNC = 4


def run(seconds, n, label):
    check(cuda.cuInit(0))
    device = check(cuda.cuDeviceGet(0))
    context = check(cuda.cuDevicePrimaryCtxRetain(device))
    check(cuda.cuCtxSetCurrent(context))
    module, kernel = load("gemm_f32")
    a = np.random.default_rng(7).standard_normal((n, n), dtype=np.float32)
    d_a, d_c = check(cuda.cuMemAlloc(a.nbytes)), check(cuda.cuMemAlloc(a.nbytes))
    check(cuda.cuMemcpyHtoD(d_a, a, a.nbytes))
    args = ((d_c, d_a, d_a, n, n, n),
            (None, None, None, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32))
    grid = ((n + TILE - 1) // TILE, (n + TILE - 1) // TILE, 1)
    flop_per_gemm = 2.0 * n * n * n
    started = last_report = time.monotonic()
    gemms = reported_gemms = 0
    while time.monotonic() - started < seconds:
        # A batch in flight per synchronisation keeps the GPU busy while the
        # host waits, as a real training step does.
        for _ in range(LAUNCHES_PER_SYNC):
            check(cuda.cuLaunchKernel(kernel, *grid, TILE, TILE, 1, 0, 0, args, 0))
        check(cuda.cuCtxSynchronize())
        gemms += LAUNCHES_PER_SYNC
        now = time.monotonic()
        if now - last_report >= 1.0:
            rate = flop_per_gemm * (gemms - reported_gemms) / (now - last_report) / 1e9
            print("%s throughput: %.3g GFLOP/s" % (label, rate), flush=True)
            last_report, reported_gemms = now, gemms
    elapsed_s = time.monotonic() - started
    c = np.empty_like(a)
    check(cuda.cuMemcpyDtoH(c, d_c, c.nbytes))
    ok = bool(np.allclose(c, a @ a, rtol=1e-3, atol=1e-2))
    for ptr in (d_a, d_c):
        check(cuda.cuMemFree(ptr))
    check(cuda.cuModuleUnload(module))
    check(cuda.cuDevicePrimaryCtxRelease(device))
    return {"label": label, "gemms": gemms, "seconds": round(elapsed_s, 3),
            "gflops": float("%.4g" % (flop_per_gemm * gemms / elapsed_s / 1e9)), "ok": ok}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--n", type=int, default=64, help="matrix size")
    parser.add_argument("--label", default="job")
    args = parser.parse_args(argv)
    try:
        result = run(args.seconds, args.n, args.label)
    except CudaError as exc:
        print("RESULT %s" % json.dumps({"label": args.label, "error": exc.name}), flush=True)
        return EXIT_PREEMPTED if exc.name == "CUDA_ERROR_MPS_CLIENT_TERMINATED" else 1
    print("RESULT %s" % json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
