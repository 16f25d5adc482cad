"""Runs inside the test VM (python3 with numpy and guest_runtime, nothing
configured): copy data in, run a built-in kernel, copy the result out,
check it, and print the verdict on the serial console."""

import ctypes
import sys

import numpy as np

from guest_runtime import cuda, runtime

BUILTIN_MODULE_IMAGE = b"orionx:builtin-kernels\x00"


def ok(result):
    if result[0] != cuda.CUresult.CUDA_SUCCESS:
        raise RuntimeError("%s: %s" % (result[0], cuda.last_error_message()))
    return result[1] if len(result) == 2 else result[1:]


def scale_round_trip(factor):
    """Copy 1 MB in (through the shared region where the VM has one), scale
    it on device 0 with the built-in kernel, copy it out: True when right.
    The agent's VM channel tests run the same in their own process."""
    ok(cuda.cuInit(0))
    ok(cuda.cuCtxCreate(0, ok(cuda.cuDeviceGet(0))))
    module = ok(cuda.cuModuleLoadData(BUILTIN_MODULE_IMAGE))
    kernel = ok(cuda.cuModuleGetFunction(module, b"scale_f32"))
    data = np.arange(1 << 18, dtype=np.float32)
    device = ok(cuda.cuMemAlloc(data.nbytes))
    ok(cuda.cuMemcpyHtoD(device, data, data.nbytes))
    args = ((device, data.size, factor), (None, ctypes.c_uint64, ctypes.c_float))
    ok(cuda.cuLaunchKernel(kernel, (data.size + 255) // 256, 1, 1, 256, 1, 1, 0, 0, args, 0))
    out = np.empty_like(data)
    ok(cuda.cuMemcpyDtoH(out, device, out.nbytes))
    return bool(np.array_equal(out, data * factor))


def main():
    right = scale_round_trip(3.0)
    stream = runtime.connection(0).stream
    print("ORIONX-E2E: transport %s, region %s" % (
        stream.kind, "yes" if getattr(stream, "region", None) is not None else "no"))
    verdict = "ok" if right else "wrong result"
    runtime.reset()  # ends the session: the next one on the port starts clean
    print("ORIONX-E2E: verdict %s" % verdict, flush=True)
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # the console is all the test sees
        print("ORIONX-E2E: verdict failed: %s" % exc, flush=True)
        sys.exit(2)
