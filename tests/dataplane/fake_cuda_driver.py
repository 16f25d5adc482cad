"""A stand-in for cuda-python's ``cuda.bindings.driver`` and ``nvrtc`` so the
cuda backend's own code runs on machines without a GPU.

Device memory is host memory (device pointers are real addresses), kernels
are the built-ins run with numpy after reading their parameters back
through the ``void**`` array the backend builds, so what this checks is the
backend's marshalling: contexts, copies through pinned staging, parameter
layout. Real GPUs are covered by tests/gpu.
"""

import ctypes
import enum
import struct
import sys
import time
import types

import numpy as np

from guest_runtime.builtin_kernels import KERNELS
from orionx_agent.server import cuda_backend, sim_kernels


class CUresult(enum.IntEnum):
    CUDA_SUCCESS = 0
    CUDA_ERROR_INVALID_VALUE = 1
    CUDA_ERROR_OUT_OF_MEMORY = 2


class CUdevice_attribute(enum.IntEnum):
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76


ATTRIBUTES = {10: 32, 16: 132, 75: 9, 76: 0}
OK = CUresult.CUDA_SUCCESS
DEVICE_MEMORY_BYTES = 64 << 20


class _Number:
    def __init__(self, value=0):
        self.value = int(value)

    def __int__(self):
        return self.value


class CUdeviceptr(_Number):
    pass


class CUstream(_Number):
    pass


def recorder(driver, calls):
    """A decorator that puts a function on ``driver`` under its own name,
    noting each call's name in ``calls``."""
    def record(function):
        def wrapper(*args):
            calls.append(function.__name__)
            return function(*args)
        setattr(driver, function.__name__, wrapper)
        return wrapper
    return record


def install(monkeypatch, driver, nvrtc):
    """Make ``import cuda.bindings.driver`` (and nvrtc) find the fakes for
    the test, with a 1 MB staging buffer so copies take several rounds."""
    bindings = types.ModuleType("cuda.bindings")
    bindings.driver, bindings.nvrtc = driver, nvrtc
    package = types.ModuleType("cuda")
    package.bindings = bindings
    for name, module in (("cuda", package), ("cuda.bindings", bindings),
                         ("cuda.bindings.driver", driver), ("cuda.bindings.nvrtc", nvrtc)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(cuda_backend, "STAGING_BYTES", 1 << 20)


def make_modules(calls):
    """(driver, nvrtc) fake modules; ``calls`` collects the names called."""
    state = {"buffers": {}, "used": 0, "current": None}
    driver = types.ModuleType("cuda.bindings.driver")
    driver.CUresult, driver.CUdevice_attribute = CUresult, CUdevice_attribute
    driver.CUdeviceptr, driver.CUstream = CUdeviceptr, CUstream
    record = recorder(driver, calls)

    def buffer(nbytes):
        if state["used"] + nbytes > DEVICE_MEMORY_BYTES:
            return None
        raw = ctypes.create_string_buffer(max(nbytes, 1))
        state["buffers"][ctypes.addressof(raw)] = raw
        state["used"] += nbytes
        return ctypes.addressof(raw)

    @record
    def cuInit(flags):
        return (OK,)

    @record
    def cuDeviceGetCount():
        return OK, 1

    @record
    def cuDeviceGet(ordinal):
        return OK, ordinal

    @record
    def cuDeviceGetName(length, dev):
        return OK, b"Fake GPU".ljust(length, b"\0")

    @record
    def cuDeviceTotalMem(dev):
        return OK, DEVICE_MEMORY_BYTES

    @record
    def cuDeviceGetUuid(dev):
        return OK, types.SimpleNamespace(bytes=bytes(range(16)))

    @record
    def cuDeviceGetAttribute(attrib, dev):
        return OK, ATTRIBUTES[int(attrib)]

    @record
    def cuDriverGetVersion():
        return OK, 12040

    @record
    def cuGetErrorString(err):
        return OK, CUresult(int(err)).name.encode()

    @record
    def cuCtxCreate(flags, dev):
        return OK, object()

    @record
    def cuCtxSetCurrent(ctx):
        state["current"] = ctx
        return (OK,)

    @record
    def cuCtxDestroy(ctx):
        return (OK,)

    @record
    def cuCtxSynchronize():
        return (OK,)

    @record
    def cuMemHostAlloc(nbytes, flags):
        return OK, buffer(nbytes)

    @record
    def cuMemFreeHost(pointer):
        state["used"] -= len(state["buffers"].pop(int(pointer)))
        return (OK,)

    @record
    def cuMemAlloc(nbytes):
        address = buffer(nbytes)
        if address is None:
            return CUresult.CUDA_ERROR_OUT_OF_MEMORY, None
        return OK, CUdeviceptr(address)

    @record
    def cuMemFree(dptr):
        raw = state["buffers"].pop(int(dptr))
        state["used"] -= len(raw)
        return (OK,)

    @record
    def cuMemcpyHtoDAsync(dst, src, nbytes, stream):
        ctypes.memmove(int(dst), int(src), nbytes)
        return (OK,)

    @record
    def cuMemcpyDtoHAsync(dst, src, nbytes, stream):
        ctypes.memmove(int(dst), int(src), nbytes)
        return (OK,)

    @record
    def cuMemcpyDtoDAsync(dst, src, nbytes, stream):
        ctypes.memmove(int(dst), int(src), nbytes)
        return (OK,)

    @record
    def cuMemsetD8Async(dst, value, count, stream):
        ctypes.memset(int(dst), value, count)
        return (OK,)

    @record
    def cuMemsetD8(dst, value, count):
        ctypes.memset(int(dst), value, count)
        return (OK,)

    @record
    def cuMemsetD32Async(dst, value, count, stream):
        (ctypes.c_uint32 * count).from_address(int(dst))[:] = [value] * count
        return (OK,)

    @record
    def cuStreamCreate(flags):
        return OK, CUstream(7)

    @record
    def cuStreamDestroy(stream):
        return (OK,)

    @record
    def cuStreamSynchronize(stream):
        return (OK,)

    @record
    def cuModuleLoadData(image):
        return OK, types.SimpleNamespace(image=image)

    @record
    def cuModuleGetFunction(module, name):
        return OK, name.decode()

    @record
    def cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        kernel = KERNELS[f]
        pointers = (ctypes.c_void_p * len(kernel.param_codes)).from_address(params)
        values = {}
        for name, code, pointer in zip(kernel.param_names, kernel.param_codes, pointers,
                                       strict=True):
            fmt = "<" + code.replace("P", "Q")
            values[name] = struct.unpack(fmt, ctypes.string_at(pointer, struct.calcsize(fmt)))[0]

        def f32_at(dptr, count):
            return np.ctypeslib.as_array((ctypes.c_float * max(count, 1)).from_address(dptr))[
                :count]
        sim_kernels.run(f, values, f32_at)
        return (OK,)

    nvrtc = types.ModuleType("cuda.bindings.nvrtc")
    nvrtc.nvrtcCreateProgram = lambda src, name, n, headers, names: (OK, object())
    nvrtc.nvrtcCompileProgram = lambda prog, n, options: (OK,)
    nvrtc.nvrtcGetPTXSize = lambda prog: (OK, 16)
    nvrtc.nvrtcGetPTX = lambda prog, buf: (OK,)
    nvrtc.nvrtcDestroyProgram = lambda prog: (OK,)
    return driver, nvrtc, state


def install_with_events_and_vmm(monkeypatch, calls):
    """The fake driver with CUDA events (kernel timing) and virtual memory
    management (eviction): "device memory" is host memory at real
    addresses; a reserved range keeps its address while unmapped, and
    unmapping scribbles over it, so a buffer that was not really copied out
    and back fails its checksum. Physical memory is a budget of
    VMM_PHYSICAL_BYTES that cuMemCreate draws from. Returns the VMM state."""
    driver, nvrtc, state = make_modules(calls)
    vmm = _add_events_and_vmm(driver, state, calls)
    # The GPU says it supports virtual memory management (attribute 102).
    attributes = {**ATTRIBUTES, 102: 1}
    monkeypatch.setitem(globals(), "ATTRIBUTES", attributes)

    def known_attribute(value):
        if int(value) not in attributes:
            raise ValueError(value)
        return int(value)
    monkeypatch.setattr(driver, "CUdevice_attribute", known_attribute)
    install(monkeypatch, driver, nvrtc)
    return vmm


# The virtual memory management of install_with_events_and_vmm: pages of
# GRANULARITY bytes, VMM_PHYSICAL_BYTES of physical memory in all.
GRANULARITY = 2 << 20
VMM_PHYSICAL_BYTES = 16 << 20


def _add_events_and_vmm(driver, state, calls):
    """Give the fake driver CUDA events and the virtual memory calls."""
    vmm = {"reserved": {}, "physical_used": 0, "handles": {}}
    record = recorder(driver, calls)

    @record
    def cuEventCreate(flags):
        return OK, types.SimpleNamespace(at=None)

    @record
    def cuEventRecord(event, stream):
        event.at = time.perf_counter()  # the fake runs kernels inside the launch call
        return (OK,)

    @record
    def cuEventSynchronize(event):
        return (OK,)

    @record
    def cuEventElapsedTime(start, end):
        return OK, (end.at - start.at) * 1000.0

    @record
    def cuEventDestroy(event):
        return (OK,)

    _add_vmm(driver, record, vmm, state)
    return vmm


def _add_vmm(driver, record, vmm, state):
    ok = OK
    driver.CUmemAllocationProp = lambda: types.SimpleNamespace(
        location=types.SimpleNamespace())
    driver.CUmemAccessDesc = lambda: types.SimpleNamespace(location=types.SimpleNamespace())
    driver.CUmemAllocationType = types.SimpleNamespace(CU_MEM_ALLOCATION_TYPE_PINNED=1)
    driver.CUmemLocationType = types.SimpleNamespace(CU_MEM_LOCATION_TYPE_DEVICE=1)
    driver.CUmemAccess_flags = types.SimpleNamespace(CU_MEM_ACCESS_FLAGS_PROT_READWRITE=3)
    driver.CUmemAllocationGranularity_flags = types.SimpleNamespace(
        CU_MEM_ALLOC_GRANULARITY_MINIMUM=0)

    @record
    def cuMemGetAllocationGranularity(prop, flags):
        return ok, GRANULARITY

    @record
    def cuMemAddressReserve(size, alignment, addr, flags):
        raw = ctypes.create_string_buffer(size)
        vmm["reserved"][ctypes.addressof(raw)] = raw
        return ok, CUdeviceptr(ctypes.addressof(raw))

    @record
    def cuMemAddressFree(ptr, size):
        vmm["reserved"].pop(int(ptr))
        return (ok,)

    @record
    def cuMemCreate(size, prop, flags):
        if vmm["physical_used"] + size > VMM_PHYSICAL_BYTES:
            return CUresult.CUDA_ERROR_OUT_OF_MEMORY, None
        vmm["physical_used"] += size
        handle = object()
        vmm["handles"][handle] = size
        return ok, handle

    @record
    def cuMemRelease(handle):
        vmm["physical_used"] -= vmm["handles"].pop(handle)
        return (ok,)

    @record
    def cuMemMap(ptr, size, offset, handle, flags):
        return (ok,)

    @record
    def cuMemSetAccess(ptr, size, descs, count):
        return (ok,)

    @record
    def cuMemUnmap(ptr, size):
        ctypes.memset(int(ptr), 0xEE, size)  # the physical pages are gone
        return (ok,)

    @record
    def cuMemAllocHost(nbytes):
        # Kept where the base fake's cuMemFreeHost looks for it.
        raw = ctypes.create_string_buffer(nbytes)
        state["buffers"][ctypes.addressof(raw)] = raw
        state["used"] += nbytes
        return ok, ctypes.addressof(raw)

    @record
    def cuMemcpyDtoH(dst, src, nbytes):
        ctypes.memmove(int(dst), int(src), nbytes)
        return (ok,)

    @record
    def cuMemcpyHtoD(dst, src, nbytes):
        ctypes.memmove(int(dst), int(src), nbytes)
        return (ok,)
