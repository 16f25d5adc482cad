"""Run by test_cuda_bindings.py in a child whose LD_LIBRARY_PATH puts the
OrionX libcuda.so.1 first: NVRTC compiles CUDA C to PTX, the library loads
it on the sim GPU server (its PTX executor), finds the kernel and launches
it with a packed extra buffer. Prints "PASSED"."""

import ctypes
import struct

import numpy as np
from cuda.bindings import driver, nvrtc

SOURCE = b"""
extern "C" __global__ void saxpy(float a, const float *x, float *y, unsigned long long n)
{
    unsigned long long i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}
"""


def ok(result):
    """The values of a (result, ...) tuple whose result is success."""
    assert result[0] == 0, result
    values = result[1:]
    return values[0] if len(values) == 1 else values


def ptx_of(source):
    program = ok(nvrtc.nvrtcCreateProgram(source, b"saxpy.cu", 0, [], []))
    ok(nvrtc.nvrtcCompileProgram(program, 1, [b"--gpu-architecture=compute_80"]))
    ptx = b" " * ok(nvrtc.nvrtcGetPTXSize(program))
    ok(nvrtc.nvrtcGetPTX(program, ptx))
    return ptx


def main():
    ptx = ptx_of(SOURCE)
    ok(driver.cuInit(0))
    context = ok(driver.cuDevicePrimaryCtxRetain(ok(driver.cuDeviceGet(0))))
    ok(driver.cuCtxSetCurrent(context))
    saxpy = ok(driver.cuModuleGetFunction(ok(driver.cuModuleLoadData(ptx)), b"saxpy"))
    n = 1000
    x = np.arange(n, dtype=np.float32)
    y = np.ones(n, dtype=np.float32)
    dx, dy = ok(driver.cuMemAlloc(x.nbytes)), ok(driver.cuMemAlloc(y.nbytes))
    ok(driver.cuMemcpyHtoD(dx, x.ctypes.data, x.nbytes))
    ok(driver.cuMemcpyHtoD(dy, y.ctypes.data, y.nbytes))
    # C's natural alignment: a f32, 4 bytes of padding, three 8-byte values.
    params = struct.pack("<f4xQQQ", 2.0, int(dx), int(dy), n)
    data = ctypes.create_string_buffer(params, len(params))
    size = ctypes.c_size_t(len(params))
    extra = (ctypes.c_void_p * 5)(1, ctypes.addressof(data), 2, ctypes.addressof(size), 0)
    ok(driver.cuLaunchKernel(saxpy, 4, 1, 1, 256, 1, 1, 0, 0, 0, ctypes.addressof(extra)))
    ok(driver.cuCtxSynchronize())
    ok(driver.cuMemcpyDtoH(y.ctypes.data, dy, y.nbytes))
    assert (y == 2 * x + 1).all(), y[:4]
    print("PASSED")


if __name__ == "__main__":
    main()
