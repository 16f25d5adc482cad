"""The subset of ``cuda.bindings.driver`` that OrionX serves, same names.

Every function takes cuda-python's arguments in cuda-python's order and
returns its ``(CUresult, value...)`` tuple, so a program written for
cuda-python runs unchanged (``orionx-run`` makes ``from cuda.bindings import
driver`` resolve to this module). Errors also log their message, which
names the limit and what to do; :func:`last_error_message` returns it.

Host buffers may be anything with the buffer protocol (numpy arrays,
bytearrays) or an integer host address, as cuda-python accepts.
"""

import ctypes
import enum
import functools
import logging

from guest_runtime import runtime
from guest_runtime.curesult import CudaError, CUresult, error_name
from guest_runtime.kernel_params import pack_kernel_params

LOG = logging.getLogger("guest_runtime.cuda")

# Copies are split so that one frame's payload length fits its u32 field.
COPY_CHUNK_BYTES = 1 << 30
# Copies between devices go through this process in chunks of this size.
PEER_COPY_CHUNK_BYTES = 64 << 20

_last_error = {"message": ""}


class _Handle:
    """A driver object standing for a number, like cuda-python's types."""

    def __init__(self, init_value=0):
        self._value = int(init_value or 0)

    def __int__(self):
        return self._value

    __index__ = __int__

    def getPtr(self):
        return self._value

    def __eq__(self, other):
        return type(self) is type(other) and self._value == other._value

    def __hash__(self):
        return hash((type(self).__name__, self._value))

    def __repr__(self):
        return "<%s 0x%x>" % (type(self).__name__, self._value)


class CUdevice(_Handle):
    pass


class CUdeviceptr(_Handle):
    pass


class CUcontext(_Handle):
    pass


class CUstream(_Handle):
    pass


class CUevent(_Handle):
    pass


class CUmodule(_Handle):
    pass


class CUfunction(_Handle):
    pass


class CUdevice_attribute(enum.IntEnum):
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y = 3
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z = 4
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10
    CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76


class CUstream_flags(enum.IntEnum):
    CU_STREAM_DEFAULT = 0
    CU_STREAM_NON_BLOCKING = 1


class CUevent_flags(enum.IntEnum):
    CU_EVENT_DEFAULT = 0
    CU_EVENT_BLOCKING_SYNC = 1
    CU_EVENT_DISABLE_TIMING = 2


class CUctx_flags(enum.IntEnum):
    CU_CTX_SCHED_AUTO = 0


def last_error_message():
    """The message of the most recent failed call in this process."""
    return _last_error["message"]


def _driver_call(value_count):
    """Turn a function returning a tuple of values (or raising CudaError)
    into one returning cuda-python's ``(CUresult, value...)``."""
    def wrap(function):
        @functools.wraps(function)
        def call(*args, **kwargs):
            try:
                values = function(*args, **kwargs)
            except CudaError as exc:
                _last_error["message"] = str(exc)
                LOG.warning("%s failed: %s", function.__name__, exc)
                code = exc.code if isinstance(exc.code, CUresult) else CUresult.CUDA_ERROR_UNKNOWN
                return (code,) + (None,) * value_count
            return (CUresult.CUDA_SUCCESS,) + tuple(values or ())
        return call
    return wrap


def _conn(dev=None):
    """The connection of device ``dev``, or of the calling thread's context."""
    if not runtime.initialised():
        raise CudaError(CUresult.CUDA_ERROR_NOT_INITIALIZED, "call cuInit(0) first")
    return runtime.connection(None if dev is None else _int(dev))


def _int(handle):
    return 0 if handle is None else int(handle)


def _check_device(dev):
    count = runtime.device_count()
    if not 0 <= _int(dev) < count:
        raise CudaError(CUresult.CUDA_ERROR_INVALID_DEVICE,
                        "device %d does not exist: this process has %d OrionX device(s), "
                        "one per vGPU of its allocation" % (_int(dev), count))


def _context_device(ctx):
    """The device a context handle stands for (handles are ordinal + 1)."""
    ordinal = _int(ctx) - 1
    _check_device(ordinal)
    return ordinal


def _host_view(host, nbytes, writable):
    """A byte memoryview of the first ``nbytes`` of a host buffer."""
    if isinstance(host, int):
        return memoryview((ctypes.c_char * nbytes).from_address(host)).cast("B")
    try:
        view = memoryview(host)
        view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
    except (TypeError, ValueError) as exc:
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "host buffer must be a C-contiguous buffer or an address: %s"
                        % exc) from None
    if writable and view.readonly:
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "destination host buffer is read-only")
    if view.nbytes < nbytes:
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "host buffer of %d bytes is smaller than ByteCount %d"
                        % (view.nbytes, nbytes))
    return view[:nbytes]


def _chunks(nbytes):
    for offset in range(0, nbytes, COPY_CHUNK_BYTES):
        yield offset, min(COPY_CHUNK_BYTES, nbytes - offset)


# -- initialisation, devices, contexts ------------------------------------

@_driver_call(0)
def cuInit(Flags):
    runtime.initialise()


@_driver_call(1)
def cuDriverGetVersion():
    return _conn().driver_get_version()


@_driver_call(1)
def cuDeviceGetCount():
    return (runtime.device_count(),)


@_driver_call(1)
def cuDeviceGet(ordinal):
    _check_device(ordinal)
    return (CUdevice(ordinal),)


# Each device is its own session on its own GPU server, where it is device 0.

@_driver_call(1)
def cuDeviceGetName(length, dev):
    _check_device(dev)
    (name,) = _conn(dev).device_get_name(0)
    return (name[:max(length - 1, 0)].ljust(length, b"\x00"),)


@_driver_call(1)
def cuDeviceTotalMem(dev):
    _check_device(dev)
    return _conn(dev).device_total_mem(0)


@_driver_call(1)
def cuDeviceGetAttribute(attrib, dev):
    _check_device(dev)
    return _conn(dev).device_get_attribute(int(attrib), 0)


@_driver_call(1)
def cuDeviceCanAccessPeer(dev, peerDev):
    # Devices may be on different hosts: no direct loads and stores between
    # them, but cuMemcpyPeer copies work.
    _check_device(dev)
    _check_device(peerDev)
    return (0,)


@_driver_call(1)
def cuCtxCreate(*args):
    # cuda-python 12 takes (flags, dev); 13 takes (ctxCreateParams, flags, dev).
    # Creating the first context is where an acquire-mode allocation binds.
    ordinal = _int(args[-1])
    _check_device(ordinal)
    _conn(ordinal)
    runtime.set_current_device(ordinal)
    return (CUcontext(ordinal + 1),)


cuCtxCreate_v2 = cuCtxCreate


@_driver_call(0)
def cuCtxDestroy(ctx):
    _context_device(ctx)


@_driver_call(1)
def cuDevicePrimaryCtxRetain(dev):
    _check_device(dev)
    _conn(dev)
    return (CUcontext(_int(dev) + 1),)


@_driver_call(0)
def cuDevicePrimaryCtxRelease(dev):
    _check_device(dev)


@_driver_call(0)
def cuCtxSetCurrent(ctx):
    runtime.set_current_device(_context_device(ctx) if _int(ctx) else 0)


@_driver_call(0)
def cuCtxPushCurrent(ctx):
    runtime.set_current_device(_context_device(ctx))


@_driver_call(1)
def cuCtxPopCurrent():
    ordinal = runtime.current_device()
    runtime.set_current_device(0)
    return (CUcontext(ordinal + 1),)


@_driver_call(1)
def cuCtxGetCurrent():
    _conn()
    return (CUcontext(runtime.current_device() + 1),)


@_driver_call(1)
def cuCtxGetDevice():
    return (CUdevice(runtime.current_device()),)


@_driver_call(0)
def cuCtxSynchronize():
    _conn().ctx_synchronize()


# -- memory -------------------------------------------------------------------

@_driver_call(2)
def cuMemGetInfo():
    return _conn().mem_get_info()


@_driver_call(1)
def cuMemAlloc(bytesize):
    (dptr,) = _conn().mem_alloc(int(bytesize))
    return (CUdeviceptr(dptr),)


@_driver_call(0)
def cuMemFree(dptr):
    _conn().mem_free(_int(dptr))


# Host buffers handed out by cuMemAllocHost, by address: plain memory here,
# since pinning only matters to a DMA engine in this process, and there is none.
_host_buffers = {}


@_driver_call(1)
def cuMemAllocHost(bytesize):
    buffer = ctypes.create_string_buffer(max(int(bytesize), 1))
    _host_buffers[ctypes.addressof(buffer)] = buffer
    return (ctypes.addressof(buffer),)


@_driver_call(1)
def cuMemHostAlloc(bytesize, Flags):
    return cuMemAllocHost(bytesize)[1:]


@_driver_call(0)
def cuMemFreeHost(p):
    if _host_buffers.pop(int(p), None) is None:
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "cuMemFreeHost of 0x%x: not a buffer from cuMemAllocHost" % int(p))


def _htod(dstDevice, srcHost, ByteCount, hStream, asynchronous):
    connection, dst = _conn(), _int(dstDevice)
    view = _host_view(srcHost, ByteCount, writable=False)
    for offset, nbytes in _chunks(ByteCount):
        part = view[offset:offset + nbytes]
        if asynchronous:
            connection.memcpy_htod_async(dst + offset, _int(hStream), buffer=part)
        else:
            connection.memcpy_htod(dst + offset, buffer=part)


def _dtoh(dstHost, srcDevice, ByteCount, hStream):
    # Even the asynchronous form waits for the bytes: they must cross the
    # wire into this process's memory before anything can read them.
    connection, src = _conn(), _int(srcDevice)
    view = _host_view(dstHost, ByteCount, writable=True)
    for offset, nbytes in _chunks(ByteCount):
        connection.memcpy_dtoh(src + offset, nbytes, _int(hStream),
                               reply_into=view[offset:offset + nbytes])


@_driver_call(0)
def cuMemcpyHtoD(dstDevice, srcHost, ByteCount):
    _htod(dstDevice, srcHost, ByteCount, 0, asynchronous=False)


@_driver_call(0)
def cuMemcpyHtoDAsync(dstDevice, srcHost, ByteCount, hStream):
    _htod(dstDevice, srcHost, ByteCount, hStream, asynchronous=True)


@_driver_call(0)
def cuMemcpyDtoH(dstHost, srcDevice, ByteCount):
    _dtoh(dstHost, srcDevice, ByteCount, 0)


@_driver_call(0)
def cuMemcpyDtoHAsync(dstHost, srcDevice, ByteCount, hStream):
    _dtoh(dstHost, srcDevice, ByteCount, hStream)


@_driver_call(0)
def cuMemcpyDtoD(dstDevice, srcDevice, ByteCount):
    _conn().memcpy_dtod(_int(dstDevice), _int(srcDevice), int(ByteCount), 0)


@_driver_call(0)
def cuMemcpyDtoDAsync(dstDevice, srcDevice, ByteCount, hStream):
    _conn().memcpy_dtod_async(_int(dstDevice), _int(srcDevice), int(ByteCount), _int(hStream))


def _peer_copy(dst, dst_ctx, src, src_ctx, nbytes):
    """Copy between two devices (maybe on two hosts): out of the source
    session and into the destination one, one chunk at a time."""
    source, destination = _conn(_context_device(src_ctx)), _conn(_context_device(dst_ctx))
    if source is destination:
        source.memcpy_dtod(dst, src, nbytes, 0)
        return
    chunk = bytearray(min(nbytes, PEER_COPY_CHUNK_BYTES))
    view = memoryview(chunk)
    for offset in range(0, nbytes, len(chunk) or 1):
        part = view[:min(len(chunk), nbytes - offset)]
        source.memcpy_dtoh(src + offset, len(part), 0, reply_into=part)
        destination.memcpy_htod(dst + offset, buffer=part)


@_driver_call(0)
def cuMemcpyPeer(dstDevice, dstContext, srcDevice, srcContext, ByteCount):
    _peer_copy(_int(dstDevice), dstContext, _int(srcDevice), srcContext, int(ByteCount))


@_driver_call(0)
def cuMemcpyPeerAsync(dstDevice, dstContext, srcDevice, srcContext, ByteCount, hStream):
    # Ordered after earlier work of both sessions by their synchronous calls.
    _peer_copy(_int(dstDevice), dstContext, _int(srcDevice), srcContext, int(ByteCount))


@_driver_call(0)
def cuMemsetD8(dstDevice, uc, N):
    _conn().memset_d8(_int(dstDevice), int(uc), int(N), 0)


@_driver_call(0)
def cuMemsetD8Async(dstDevice, uc, N, hStream):
    _conn().memset_d8_async(_int(dstDevice), int(uc), int(N), _int(hStream))


@_driver_call(0)
def cuMemsetD32(dstDevice, ui, N):
    _conn().memset_d32(_int(dstDevice), int(ui), int(N), 0)


@_driver_call(0)
def cuMemsetD32Async(dstDevice, ui, N, hStream):
    _conn().memset_d32_async(_int(dstDevice), int(ui), int(N), _int(hStream))


# -- streams and events ----------------------------------------------------------

@_driver_call(1)
def cuStreamCreate(Flags):
    (stream,) = _conn().stream_create(int(Flags))
    return (CUstream(stream),)


@_driver_call(0)
def cuStreamDestroy(hStream):
    _conn().stream_destroy(_int(hStream))


@_driver_call(0)
def cuStreamSynchronize(hStream):
    _conn().stream_synchronize(_int(hStream))


@_driver_call(1)
def cuEventCreate(Flags):
    (event,) = _conn().event_create(int(Flags))
    return (CUevent(event),)


@_driver_call(0)
def cuEventDestroy(hEvent):
    _conn().event_destroy(_int(hEvent))


@_driver_call(0)
def cuEventRecord(hEvent, hStream):
    _conn().event_record(_int(hEvent), _int(hStream))


@_driver_call(0)
def cuEventSynchronize(hEvent):
    _conn().event_synchronize(_int(hEvent))


@_driver_call(1)
def cuEventElapsedTime(hStart, hEnd):
    return _conn().event_elapsed_time(_int(hStart), _int(hEnd))


# -- modules and launches ----------------------------------------------------------

@_driver_call(1)
def cuModuleLoadData(image):
    if isinstance(image, int):
        raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                        "cuModuleLoadData with a host address: pass the image as bytes")
    image = image.encode("utf-8") if isinstance(image, str) else bytes(image)
    (module,) = _conn().module_load_data(buffer=image)
    return (CUmodule(module),)


@_driver_call(0)
def cuModuleUnload(hmod):
    _conn().module_unload(_int(hmod))


@_driver_call(1)
def cuModuleGetFunction(hmod, name):
    name = name.encode("utf-8") if isinstance(name, str) else bytes(name)
    (function,) = _conn().module_get_function(_int(hmod), buffer=name)
    return (CUfunction(function),)


@_driver_call(0)
def cuLaunchKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                   sharedMemBytes, hStream, kernelParams, extra):
    if extra not in (None, 0):
        raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                        "cuLaunchKernel's extra argument is not supported: pass kernelParams")
    params = pack_kernel_params(kernelParams)
    _conn().launch_kernel(_int(f), gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                          blockDimZ, sharedMemBytes, _int(hStream), buffer=params)


# -- errors -------------------------------------------------------------------------

def cuGetErrorName(error):
    try:
        return CUresult.CUDA_SUCCESS, CUresult(int(error)).name.encode()
    except ValueError:
        return CUresult.CUDA_ERROR_INVALID_VALUE, None


def cuGetErrorString(error):
    try:
        code = CUresult(int(error))
    except ValueError:
        return CUresult.CUDA_ERROR_INVALID_VALUE, None
    text = error_name(code).replace("CUDA_ERROR_", "").replace("_", " ").lower()
    return CUresult.CUDA_SUCCESS, text.encode()
