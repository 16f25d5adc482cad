"""Runs inside the test VM (python3 with numpy, NVIDIA's cuda-python and the
pool's libcuda.so.1 first on the library path, nothing configured): load the
examples' PTX, copy data in, run axpy, copy the result out, check it, and
print the verdict on the serial console.

The library finds the host's agent by itself (the virtio-serial port, with
the ivshmem region for bulk data); which it used is read from this process's
own open files and mappings, so the check does not take the library's word.
"""

import ctypes
import os
import sys

import numpy as np
from cuda.bindings import driver as cuda
from kernels import check, load


def axpy_round_trip(factor):
    """Copy 1 MB in (through the shared region where the VM has one), compute
    FACTOR * x + 0 on device 0, copy it out: True when right."""
    check(cuda.cuInit(0))
    device = check(cuda.cuDeviceGet(0))
    context = check(cuda.cuCtxCreate(None, 0, device))
    module, kernel = load("axpy_f32")
    x = np.arange(1 << 18, dtype=np.float32)
    d_x = check(cuda.cuMemAlloc(x.nbytes))
    d_y = check(cuda.cuMemAlloc(x.nbytes))
    check(cuda.cuMemcpyHtoD(d_x, x, x.nbytes))
    check(cuda.cuMemsetD32(d_y, 0, x.size))
    # axpy_f32(float *y, const float *x, unsigned long long n, float a)
    args = ((d_y, d_x, x.size, factor), (None, None, ctypes.c_uint64, ctypes.c_float))
    check(cuda.cuLaunchKernel(kernel, (x.size + 255) // 256, 1, 1, 256, 1, 1, 0, 0, args, 0))
    out = np.empty_like(x)
    check(cuda.cuMemcpyDtoH(out, d_y, out.nbytes))
    right = bool(np.array_equal(out, x * np.float32(factor)))
    route = _route()
    check(cuda.cuModuleUnload(module))
    check(cuda.cuCtxDestroy(context))
    return right, route


def _route():
    """("serial"/"vsock"/"?", whether the ivshmem BAR is mapped) of this process."""
    kinds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if target.startswith("/dev/vport"):
            kinds.add("serial")
        elif target.startswith("socket:"):
            kinds.add("socket")
    with open("/proc/self/maps") as maps:
        region = any("/resource2" in line for line in maps)
    return ("serial" if "serial" in kinds else "socket" if kinds else "?"), region


def main():
    right, (transport, region) = axpy_round_trip(3.0)
    print("ORIONX-E2E: transport %s, region %s" % (transport, "yes" if region else "no"))
    verdict = "ok" if right else "wrong result"
    print("ORIONX-E2E: verdict %s" % verdict, flush=True)
    # The session ends with the process: the next one on the port starts clean.
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # the console is all the test sees
        print("ORIONX-E2E: verdict failed: %s" % exc, flush=True)
        sys.exit(2)
