"""Run by test_cuda_runtime.py in a child process whose LD_LIBRARY_PATH puts
the OrionX libcuda.so.1 first: NVIDIA's cuda.bindings.runtime (its static
CUDA runtime), unchanged, against a sim GPU server with a 64 MB vGPU.
Prints "PASSED" when every check held."""

import ctypes
import pathlib
import sys

import numpy as np
from cuda.bindings import driver, runtime

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "examples"))
from kernels import PTX  # noqa: E402 - the examples' kernels, beside this repository's tests

E = runtime.cudaError_t
QUOTA_BYTES = 64 << 20


def ok(result):
    """The values of a (cudaError_t, ...) tuple whose result is success."""
    assert result[0] == E.cudaSuccess, result
    values = result[1:]
    return values[0] if len(values) == 1 else (values or None)


def fails(result, code):
    assert result[0] == code, (result, code)


def main():
    ok(runtime.cudaFree(0))  # what every runtime program does first: the runtime starts
    assert ok(runtime.cudaGetDeviceCount()) == 1
    assert ok(runtime.cudaGetDevice()) == 0
    assert ok(runtime.cudaDriverGetVersion()) >= ok(runtime.cudaRuntimeGetVersion()) // 1000 * 1000

    properties = ok(runtime.cudaGetDeviceProperties(0))
    assert b"vGPU" in properties.name, properties.name
    assert properties.totalGlobalMem == QUOTA_BYTES
    assert (properties.major, properties.warpSize) == (8, 32)
    assert properties.maxThreadsPerBlock >= 256 and properties.multiProcessorCount > 0
    attribute = runtime.cudaDeviceAttr
    assert ok(runtime.cudaDeviceGetAttribute(attribute.cudaDevAttrComputeCapabilityMajor, 0)) == 8
    # What a remote GPU cannot give says so, and programs take their other path.
    for name in ("cudaDevAttrCanMapHostMemory", "cudaDevAttrManagedMemory",
                 "cudaDevAttrConcurrentManagedAccess", "cudaDevAttrPageableMemoryAccess"):
        assert ok(runtime.cudaDeviceGetAttribute(getattr(attribute, name), 0)) == 0, name
    free_bytes, total_bytes = ok(runtime.cudaMemGetInfo())
    assert total_bytes == QUOTA_BYTES and 0 < free_bytes <= total_bytes

    # Memory: allocate, copy both ways, set.
    n = 1 << 16
    host = np.arange(n, dtype=np.float32)
    back = np.zeros(n, dtype=np.float32)
    x = ok(runtime.cudaMalloc(host.nbytes))
    y = ok(runtime.cudaMalloc(host.nbytes))
    kind = runtime.cudaMemcpyKind
    ok(runtime.cudaMemcpy(x, host.ctypes.data, host.nbytes, kind.cudaMemcpyHostToDevice))
    ok(runtime.cudaMemcpy(y, x, host.nbytes, kind.cudaMemcpyDeviceToDevice))
    ok(runtime.cudaMemcpy(back.ctypes.data, y, host.nbytes, kind.cudaMemcpyDefault))
    assert np.array_equal(back, host)
    ok(runtime.cudaMemset(y, 0, host.nbytes))
    ok(runtime.cudaMemcpy(back.ctypes.data, y, host.nbytes, kind.cudaMemcpyDeviceToHost))
    assert not back.any()

    # A stream and events around an asynchronous copy.
    stream = ok(runtime.cudaStreamCreateWithFlags(runtime.cudaStreamNonBlocking))
    start, stop = ok(runtime.cudaEventCreate()), ok(runtime.cudaEventCreate())
    ok(runtime.cudaEventRecord(start, stream))
    ok(runtime.cudaMemcpyAsync(y, host.ctypes.data, host.nbytes, kind.cudaMemcpyHostToDevice,
                               stream))
    ok(runtime.cudaEventRecord(stop, stream))
    ok(runtime.cudaEventSynchronize(stop))
    assert ok(runtime.cudaEventElapsedTime(start, stop)) >= 0.0
    ok(runtime.cudaStreamSynchronize(stream))
    assert ok(runtime.cudaStreamQuery(stream)) is None

    # A library's kernel, launched as NVIDIA's examples do: the runtime loads,
    # the driver launches (cuda.bindings.runtime has no cudaLaunchKernel; the
    # nvcc-built program of test_cuda_runtime.py launches through it). The
    # CUkernel goes where cuLaunchKernel takes a CUfunction, as CUDA allows.
    library = ok(runtime.cudaLibraryLoadData(PTX, None, None, 0, None, None, 0))
    kernel = ok(runtime.cudaLibraryGetKernel(library, b"axpy_f32"))
    params = [ctypes.c_void_p(int(y)), ctypes.c_void_p(int(x)), ctypes.c_uint64(n),
              ctypes.c_float(2.0)]
    pointers = (ctypes.c_void_p * len(params))(*(ctypes.addressof(p) for p in params))
    result = driver.cuLaunchKernel(driver.CUfunction(int(kernel)), n // 256, 1, 1, 256, 1, 1,
                                   0, driver.CUstream(int(stream)),
                                   ctypes.addressof(pointers), 0)
    assert result[0] == driver.CUresult.CUDA_SUCCESS, result
    ok(runtime.cudaStreamSynchronize(stream))
    ok(runtime.cudaMemcpy(back.ctypes.data, y, host.nbytes, kind.cudaMemcpyDeviceToHost))
    assert np.array_equal(back, 3 * host), back[:4]
    ok(runtime.cudaLibraryUnload(library))

    # Stream-ordered allocation from the default pool and from a pool made here.
    assert ok(runtime.cudaDeviceGetAttribute(attribute.cudaDevAttrMemoryPoolsSupported, 0)) == 1
    pool = ok(runtime.cudaDeviceGetDefaultMemPool(0))
    pool_attribute = runtime.cudaMemPoolAttr
    threshold = pool_attribute.cudaMemPoolAttrReleaseThreshold
    ok(runtime.cudaMemPoolSetAttribute(pool, threshold, driver.cuuint64_t(1 << 30)))
    assert int(ok(runtime.cudaMemPoolGetAttribute(pool, threshold))) == 1 << 30
    pooled = ok(runtime.cudaMallocAsync(host.nbytes, stream))
    ok(runtime.cudaMemcpyAsync(pooled, x, host.nbytes, kind.cudaMemcpyDeviceToDevice, stream))
    ok(runtime.cudaMemcpyAsync(back.ctypes.data, pooled, host.nbytes,
                               kind.cudaMemcpyDeviceToHost, stream))
    used = pool_attribute.cudaMemPoolAttrUsedMemCurrent
    assert int(ok(runtime.cudaMemPoolGetAttribute(pool, used))) == host.nbytes
    ok(runtime.cudaFreeAsync(pooled, stream))
    ok(runtime.cudaStreamSynchronize(stream))
    assert np.array_equal(back, host)
    assert int(ok(runtime.cudaMemPoolGetAttribute(pool, used))) == 0
    assert int(ok(runtime.cudaMemPoolGetAttribute(
        pool, pool_attribute.cudaMemPoolAttrUsedMemHigh))) == host.nbytes
    props = runtime.cudaMemPoolProps()
    props.allocType = runtime.cudaMemAllocationType.cudaMemAllocationTypePinned
    props.location.type = runtime.cudaMemLocationType.cudaMemLocationTypeDevice
    props.location.id = 0
    mine = ok(runtime.cudaMemPoolCreate(props))
    ok(runtime.cudaFree(ok(runtime.cudaMallocFromPoolAsync(1024, mine, stream))))
    ok(runtime.cudaMemPoolDestroy(mine))
    fails(runtime.cudaMemPoolDestroy(pool), E.cudaErrorInvalidValue)  # a default pool stays
    props.handleTypes = runtime.cudaMemAllocationHandleType.cudaMemHandleTypePosixFileDescriptor
    fails(runtime.cudaMemPoolCreate(props), E.cudaErrorNotSupported)  # no IPC export

    # Errors, by CUDA's names.
    assert ok(runtime.cudaGetErrorName(E.cudaErrorInvalidValue)) == b"cudaErrorInvalidValue"
    fails(runtime.cudaMalloc(QUOTA_BYTES * 2), E.cudaErrorMemoryAllocation)
    fails(runtime.cudaSetDevice(1), E.cudaErrorInvalidDevice)
    fails(runtime.cudaMallocManaged(4096, runtime.cudaMemAttachGlobal),
          E.cudaErrorNotSupported)
    fails(runtime.cudaIpcGetMemHandle(x), E.cudaErrorNotSupported)
    assert runtime.cudaGetLastError()[0] == E.cudaErrorNotSupported  # and clears it
    assert runtime.cudaGetLastError()[0] == E.cudaSuccess
    ok(runtime.cudaFree(x))
    ok(runtime.cudaFree(y))
    ok(runtime.cudaEventDestroy(start))
    ok(runtime.cudaEventDestroy(stop))
    ok(runtime.cudaStreamDestroy(stream))
    ok(runtime.cudaDeviceSynchronize())
    ok(runtime.cudaDeviceReset())
    print("PASSED")


if __name__ == "__main__":
    main()
