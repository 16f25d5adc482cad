"""Run by test_cuda_bindings.py in a child whose LD_LIBRARY_PATH puts the
OrionX libcuda.so.1 first: NVRTC compiles CUDA C to PTX, the library loads
it on the sim GPU server (its PTX executor), finds the kernel and launches
it with a packed extra buffer, with kernelParams, as a library's kernel
through cuLaunchKernelEx, and linked from two relocatable inputs with
cuLink*. Prints "PASSED"."""

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

# Module variables: a __constant__ the host sets and a __device__ counter.
VARIABLES = b"""
__constant__ float scale = 2.0f;
__device__ unsigned int launches = 0;
extern "C" __global__ void scaled(float *y, const float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = scale * x[i];
    if (i == 0)
        atomicAdd(&launches, 1u);
}
"""


def fails(result, code):
    assert result[0] == code, (result, code)


def ok(result):
    """The values of a (result, ...) tuple whose result is success."""
    assert result[0] == 0, result
    values = result[1:]
    return values[0] if len(values) == 1 else values


# Two inputs of one link: the kernel calls a device function of the other.
LIBRARY = b"""
extern "C" __device__ float twice_plus(float x, float b) { return 2.0f * x + b; }
"""
KERNEL = b"""
extern "C" __device__ float twice_plus(float x, float b);
extern "C" __global__ void apply(float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] = twice_plus(x[i], 1.0f);
}
"""


def ptx_of(source, *options):
    program = ok(nvrtc.nvrtcCreateProgram(source, b"saxpy.cu", 0, [], []))
    options = [b"--gpu-architecture=compute_80", *options]
    ok(nvrtc.nvrtcCompileProgram(program, len(options), options))
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

    # kernelParams: the library packs them by the .entry's layout (the f32,
    # its padding, three 8-byte values): y = 2 x + y again.
    assert [ok(driver.cuFuncGetParamInfo(saxpy, i)) for i in range(4)] == [
        (0, 4), (8, 8), (16, 8), (24, 8)]
    typed = ((2.0, dx, dy, n), (ctypes.c_float, None, None, ctypes.c_uint64))
    ok(driver.cuLaunchKernel(saxpy, 4, 1, 1, 256, 1, 1, 0, 0, typed, 0))
    ok(driver.cuMemcpyDtoH(y.ctypes.data, dy, y.nbytes))
    assert (y == 4 * x + 1).all(), y[:4]

    # The same PTX as a library, its kernel launched with cuLaunchKernelEx.
    library = ok(driver.cuLibraryLoadData(ptx, [], [], 0, [], [], 0))
    kernel = ok(driver.cuLibraryGetKernel(library, b"saxpy"))
    assert ok(driver.cuKernelGetParamInfo(kernel, 3)) == (24, 8)
    fails(driver.cuKernelGetParamInfo(kernel, 4), driver.CUresult.CUDA_ERROR_INVALID_VALUE)
    config = driver.CUlaunchConfig()
    config.gridDimX, config.gridDimY, config.gridDimZ = 4, 1, 1
    config.blockDimX, config.blockDimY, config.blockDimZ = 256, 1, 1
    config.numAttrs = 0
    ok(driver.cuLaunchKernelEx(config, ok(driver.cuKernelGetFunction(kernel)), typed, 0))
    ok(driver.cuMemcpyDtoH(y.ctypes.data, dy, y.nbytes))
    assert (y == 6 * x + 1).all(), y[:4]
    module = ok(driver.cuLibraryGetModule(library))
    ok(driver.cuModuleGetFunction(module, b"saxpy"))
    ok(driver.cuLibraryUnload(library))

    # cuLink* of two relocatable inputs; the server links them at load.
    rdc = b"--relocatable-device-code=true"
    link = ok(driver.cuLinkCreate(0, [], []))
    pty = driver.CUjitInputType.CU_JIT_INPUT_PTX
    for name, source in ((b"kernel", KERNEL), (b"library", LIBRARY)):
        text = ptx_of(source, rdc)
        ok(driver.cuLinkAddData(link, pty, text, len(text), name, 0, [], []))
    cubin, size = ok(driver.cuLinkComplete(link))
    image = ctypes.string_at(int(cubin), size)
    apply = ok(driver.cuModuleGetFunction(ok(driver.cuModuleLoadData(image)), b"apply"))
    ok(driver.cuLinkDestroy(link))
    fails(driver.cuLinkDestroy(link), driver.CUresult.CUDA_ERROR_INVALID_HANDLE)
    data = np.arange(64, dtype=np.float32)
    ok(driver.cuMemcpyHtoD(dx, data.ctypes.data, data.nbytes))
    ok(driver.cuLaunchKernel(apply, 1, 1, 1, 64, 1, 1, 0, 0,
                             ((dx, 64), (None, ctypes.c_int)), 0))
    back = np.zeros_like(data)
    ok(driver.cuMemcpyDtoH(back.ctypes.data, dx, back.nbytes))
    assert (back == 2 * data + 1).all(), back[:4]
    # One input alone links into nothing to resolve its extern function:
    # the load says so.
    link = ok(driver.cuLinkCreate(0, [], []))
    text = ptx_of(KERNEL, rdc)
    ok(driver.cuLinkAddData(link, pty, text, len(text), b"kernel", 0, [], []))
    cubin, size = ok(driver.cuLinkComplete(link))
    result = driver.cuModuleLoadData(ctypes.string_at(int(cubin), size))
    assert result[0] == driver.CUresult.CUDA_ERROR_INVALID_PTX, result
    ok(driver.cuLinkDestroy(link))

    # cuModuleGetGlobal / cuLibraryGetGlobal: copies reach the variables and
    # kernels started later see them.
    variables = ok(driver.cuModuleLoadData(ptx_of(VARIABLES)))
    scaled = ok(driver.cuModuleGetFunction(variables, b"scaled"))
    scale, scale_bytes = ok(driver.cuModuleGetGlobal(variables, b"scale"))
    assert scale_bytes == 4
    three = np.array([3.0], dtype=np.float32)
    ok(driver.cuMemcpyHtoD(scale, three.ctypes.data, 4))
    ok(driver.cuMemcpyHtoD(dx, x.ctypes.data, x.nbytes))
    for _ in range(2):
        ok(driver.cuLaunchKernel(scaled, 4, 1, 1, 256, 1, 1, 0, 0,
                                 ((dy, dx, n), (None, None, ctypes.c_int)), 0))
    ok(driver.cuMemcpyDtoH(y.ctypes.data, dy, y.nbytes))
    assert (y == 3 * x).all(), y[:4]
    launches, _ = ok(driver.cuModuleGetGlobal(variables, b"launches"))
    count = np.zeros(1, dtype=np.uint32)
    ok(driver.cuMemcpy(count.ctypes.data, launches, 4))  # unified: the library knows it
    assert count[0] == 2, count
    fails(driver.cuModuleGetGlobal(variables, b"nothing"),
          driver.CUresult.CUDA_ERROR_NOT_FOUND)
    library = ok(driver.cuLibraryLoadData(ptx_of(VARIABLES), [], [], 0, [], [], 0))
    own_scale, _ = ok(driver.cuLibraryGetGlobal(library, b"scale"))
    assert int(own_scale) != int(scale)
    back_scale = np.zeros(1, dtype=np.float32)
    ok(driver.cuMemcpyDtoH(back_scale.ctypes.data, own_scale, 4))
    assert back_scale[0] == 2.0, back_scale
    ok(driver.cuLibraryUnload(library))
    ok(driver.cuModuleUnload(variables))
    print("PASSED")


if __name__ == "__main__":
    main()
