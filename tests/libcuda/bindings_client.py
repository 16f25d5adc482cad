"""Run by test_cuda_bindings.py in a child process whose LD_LIBRARY_PATH puts
the OrionX libcuda.so.1 first: NVIDIA's own cuda.bindings.driver, unchanged,
against a sim GPU server. Prints "PASSED" when every check held."""

import ctypes
import importlib.util
import pathlib
import struct
import sys

import numpy as np
from cuda.bindings import driver

R = driver.CUresult


def ok(result):
    """The values of a (CUresult, ...) tuple whose result is success."""
    assert result[0] == R.CUDA_SUCCESS, result
    values = result[1:]
    return values[0] if len(values) == 1 else values


def fails(result, code):
    assert result[0] == code, (result, code)


def extra_buffer(params):
    """cuLaunchKernel's extra: a NULL-ended void* array naming the packed bytes."""
    data = ctypes.create_string_buffer(params, len(params))
    size = ctypes.c_size_t(len(params))
    array = (ctypes.c_void_p * 5)(1, ctypes.addressof(data), 2, ctypes.addressof(size), 0)
    return array, (data, size)


def main():
    fails(driver.cuDeviceGetCount(), R.CUDA_ERROR_NOT_INITIALIZED)
    ok(driver.cuInit(0))
    assert ok(driver.cuDriverGetVersion()) >= 12000
    assert ok(driver.cuDeviceGetCount()) == 1
    device = ok(driver.cuDeviceGet(0))
    fails(driver.cuDeviceGet(3), R.CUDA_ERROR_INVALID_DEVICE)
    assert b"vGPU" in ok(driver.cuDeviceGetName(64, device))
    assert ok(driver.cuDeviceTotalMem(device)) == 64 << 20
    attribute = driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_WARP_SIZE
    assert ok(driver.cuDeviceGetAttribute(attribute, device)) == 32
    assert len(bytes(ok(driver.cuDeviceGetUuid(device)).bytes)) == 16

    context = ok(driver.cuDevicePrimaryCtxRetain(device))
    ok(driver.cuCtxSetCurrent(context))
    assert int(ok(driver.cuCtxGetCurrent())) == int(context)
    assert int(ok(driver.cuCtxGetDevice())) == 0
    free_bytes, total_bytes = ok(driver.cuMemGetInfo())
    assert total_bytes == 64 << 20 and free_bytes <= total_bytes

    n = 4096
    host = np.arange(n, dtype=np.float32)
    back = np.zeros(n, dtype=np.float32)
    x = ok(driver.cuMemAlloc(host.nbytes))
    y = ok(driver.cuMemAlloc(host.nbytes))
    fails(driver.cuMemAlloc(1 << 30), R.CUDA_ERROR_OUT_OF_MEMORY)
    ok(driver.cuMemcpyHtoD(x, host.ctypes.data, host.nbytes))
    ok(driver.cuMemcpyDtoH(back.ctypes.data, x, host.nbytes))
    assert (back == host).all()
    ok(driver.cuMemsetD32(y, 0, n))

    stream = ok(driver.cuStreamCreate(0))
    start = ok(driver.cuEventCreate(0))
    end = ok(driver.cuEventCreate(0))
    ok(driver.cuEventRecord(start, stream))
    module = ok(driver.cuModuleLoadData(b"orionx:builtin-kernels\x00"))
    axpy = ok(driver.cuModuleGetFunction(module, b"axpy_f32"))
    fails(driver.cuModuleGetFunction(module, b"nope"), R.CUDA_ERROR_NOT_FOUND)
    params = struct.pack("<QQQf", int(y), int(x), n, 2.0)  # y = 2 x + y
    extra, keep = extra_buffer(params)
    ok(driver.cuLaunchKernel(axpy, 16, 1, 1, 256, 1, 1, 0, stream, 0, ctypes.addressof(extra)))
    ok(driver.cuEventRecord(end, stream))
    ok(driver.cuStreamWaitEvent(0, end, 0))
    ok(driver.cuStreamSynchronize(stream))
    ok(driver.cuStreamQuery(stream))
    ok(driver.cuEventQuery(end))
    assert ok(driver.cuEventElapsedTime(start, end)) >= 0
    ok(driver.cuMemcpyDtoHAsync(back.ctypes.data, y, host.nbytes, stream))
    assert (back == 2 * host).all(), back[:4]
    # kernelParams as cuda-bindings packs them: the library asks the
    # function's layout once and packs the values (y = 2 x + y again).
    typed = ((y, x, n, 2.0), (None, None, ctypes.c_uint64, ctypes.c_float))
    ok(driver.cuLaunchKernel(axpy, 16, 1, 1, 256, 1, 1, 0, stream, typed, 0))
    ok(driver.cuStreamSynchronize(stream))
    ok(driver.cuMemcpyDtoH(back.ctypes.data, y, host.nbytes))
    assert (back == 4 * host).all(), back[:4]
    fails(driver.cuLaunchKernel(axpy, 1, 1, 1, 1, 1, 1, 0, stream, typed,
                                ctypes.addressof(extra)), R.CUDA_ERROR_INVALID_VALUE)
    assert [ok(driver.cuFuncGetParamInfo(axpy, i)) for i in range(4)] == [
        (0, 8), (8, 8), (16, 8), (24, 4)]
    fails(driver.cuFuncGetParamInfo(axpy, 4), R.CUDA_ERROR_INVALID_VALUE)

    # cuLaunchKernelEx with attributes the pool honours or ignores, and the
    # ones it refuses (y = 2 x + y a third time).
    config = driver.CUlaunchConfig()
    config.gridDimX, config.gridDimY, config.gridDimZ = 16, 1, 1
    config.blockDimX, config.blockDimY, config.blockDimZ = 256, 1, 1
    config.hStream = stream
    priority = driver.CUlaunchAttribute()
    priority.id = driver.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_PRIORITY
    priority.value.priority = 0
    config.attrs, config.numAttrs = [priority], 1
    ok(driver.cuLaunchKernelEx(config, axpy, typed, 0))
    ok(driver.cuMemcpyDtoH(back.ctypes.data, y, host.nbytes))
    assert (back == 6 * host).all(), back[:4]
    cooperative = driver.CUlaunchAttribute()
    cooperative.id = driver.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_COOPERATIVE
    cooperative.value.cooperative = 1
    config.attrs, config.numAttrs = [cooperative], 1
    fails(driver.cuLaunchKernelEx(config, axpy, typed, 0), R.CUDA_ERROR_NOT_SUPPORTED)

    # Function attributes and occupancy (the sim: 2048 threads and 16 blocks
    # per multiprocessor, 16 multiprocessors, no registers to run out of).
    attr = driver.CUfunction_attribute
    assert ok(driver.cuFuncGetAttribute(attr.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                                        axpy)) == 1024
    assert ok(driver.cuOccupancyMaxActiveBlocksPerMultiprocessor(axpy, 256, 0)) == 8
    assert ok(driver.cuOccupancyMaxActiveBlocksPerMultiprocessor(axpy, 100, 0)) == 16
    assert ok(driver.cuOccupancyMaxPotentialBlockSize(axpy, None, 0, 0)) == (32, 1024)
    assert ok(driver.cuOccupancyMaxPotentialBlockSize(axpy, None, 0, 96)) == (256, 96)

    fails(driver.cuModuleGetGlobal(module, b"anything"), R.CUDA_ERROR_NOT_FOUND)
    # A name exported but not served yet answers NOT_SUPPORTED, never crashes.
    fails(driver.cuIpcGetMemHandle(x), R.CUDA_ERROR_NOT_SUPPORTED)
    # Names the library does not know are not found.
    result = driver.cuGetProcAddress(b"cuNoSuchEntryPoint", 12000, 0)
    assert result[0] == R.CUDA_ERROR_NOT_FOUND, result

    for handle in (start, end):
        ok(driver.cuEventDestroy(handle))
    ok(driver.cuStreamDestroy(stream))
    ok(driver.cuModuleUnload(module))
    ok(driver.cuMemFree(x))
    ok(driver.cuMemFree(y))
    fails(driver.cuMemFree(y), R.CUDA_ERROR_INVALID_VALUE)
    ok(driver.cuDevicePrimaryCtxRelease(device))
    check_every_served_name_resolves()
    print("PASSED")


def check_every_served_name_resolves():
    """cuda-bindings resolves each name at the ABI version it was built for:
    every name the library serves and the bindings know must come back
    non-NULL (an entry whose first version is set too late would not)."""
    try:
        from cuda.bindings._internal import driver as internal
        table = internal._inspect_function_pointers()
    except (ImportError, AttributeError):
        return  # a cuda-bindings without the table: nothing to compare
    spec = importlib.util.spec_from_file_location(
        "orionx_libcuda_entry_points", pathlib.Path(__file__).resolve().parents[2]
        / "guest_runtime" / "libcuda" / "entry_points.py")
    entry_points = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = entry_points
    spec.loader.exec_module(entry_points)
    unresolved = [version.symbol for entry in entry_points.ENTRY_POINTS if entry.served
                  for version in entry.versions
                  if "__" + version.symbol in table and not table["__" + version.symbol]]
    assert not unresolved, unresolved


if __name__ == "__main__":
    main()
    sys.stdout.flush()
