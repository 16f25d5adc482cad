"""The cuda backend's QoS code against a stand-in driver: kernel timing with
events, and eviction through virtual memory management (same pointers,
pinned host copies). Real GPUs: tests/gpu/test_cuda_qos.py.

The stand-in extends tests/dataplane's fake driver: "device memory" is host
memory at real addresses; a reserved range keeps its address while
unmapped, and unmapping scribbles over it, so a buffer that was not really
copied out and back would fail its checksum. Physical memory is a budget
that cuMemCreate draws from.
"""

import ctypes
import hashlib
import os
import struct
import time
import types

import numpy as np
import pytest

from guest_runtime import protocol
from orionx_agent.server import cuda_backend
from orionx_agent.server.control import ControlClient
from orionx_agent.server.scheduler import ComputeScheduler
from orionx_agent.server.server import GpuServer
from tests.dataplane import fake_cuda_driver
from tests.qos.conftest import MB, SECRET

GRANULARITY = 2 * MB
PHYSICAL_BYTES = 16 * MB


def add_events_and_vmm(driver, state, calls):
    """Give the fake driver CUDA events and the virtual memory calls."""
    vmm = {"reserved": {}, "physical_used": 0, "handles": {}}
    record = fake_cuda_driver.recorder(driver, calls)

    @record
    def cuEventCreate(flags):
        return fake_cuda_driver.OK, types.SimpleNamespace(at=None)

    @record
    def cuEventRecord(event, stream):
        event.at = time.perf_counter()  # the fake runs kernels inside the launch call
        return (fake_cuda_driver.OK,)

    @record
    def cuEventSynchronize(event):
        return (fake_cuda_driver.OK,)

    @record
    def cuEventElapsedTime(start, end):
        return fake_cuda_driver.OK, (end.at - start.at) * 1000.0

    @record
    def cuEventDestroy(event):
        return (fake_cuda_driver.OK,)

    _add_vmm(driver, record, vmm, state)
    return vmm


def _add_vmm(driver, record, vmm, state):
    ok = fake_cuda_driver.OK
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
        return ok, fake_cuda_driver.CUdeviceptr(ctypes.addressof(raw))

    @record
    def cuMemAddressFree(ptr, size):
        vmm["reserved"].pop(int(ptr))
        return (ok,)

    @record
    def cuMemCreate(size, prop, flags):
        if vmm["physical_used"] + size > PHYSICAL_BYTES:
            return fake_cuda_driver.CUresult.CUDA_ERROR_OUT_OF_MEMORY, None
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


@pytest.fixture
def fake_cuda(monkeypatch):
    calls = []
    driver, nvrtc, state = fake_cuda_driver.make_modules(calls)
    vmm = add_events_and_vmm(driver, state, calls)
    # The GPU says it supports virtual memory management (attribute 102).
    attributes = {**fake_cuda_driver.ATTRIBUTES, 102: 1}
    monkeypatch.setattr(fake_cuda_driver, "ATTRIBUTES", attributes)

    def known_attribute(value):
        if int(value) not in attributes:
            raise ValueError(value)
        return int(value)
    monkeypatch.setattr(driver, "CUdevice_attribute", known_attribute)
    fake_cuda_driver.install(monkeypatch, driver, nvrtc)
    return calls, vmm


@pytest.fixture
def cuda_server(fake_cuda, socket_dir):
    server = GpuServer(cuda_backend.CudaGpu(0), SECRET,
                       unix_socket_path=os.path.join(socket_dir, "cuda.sock"),
                       scheduler=ComputeScheduler("hard", 100),
                       control_socket_path=os.path.join(socket_dir, "cuda.control.sock"),
                       physical_memory_bytes=PHYSICAL_BYTES, oversub_ratio=2.0).start()
    yield server
    server.stop()
    server.backend.close()


def test_kernels_are_timed_with_events_and_charged(cuda_server, fake_cuda, open_session):
    calls, _ = fake_cuda
    connection = open_session(cuda_server, memory_mb=16)
    (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (fill,) = connection.module_get_function(module, buffer=b"fill_f32")
    n = 1 << 20
    (dptr,) = connection.mem_alloc(4 * n)
    (session,) = cuda_server.sessions()
    for _ in range(2):
        for _ in range(20):
            connection.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                                     buffer=struct.pack("<QQf", dptr, n, 3.0))
        connection.ctx_synchronize()
        deadline = time.monotonic() + 5
        while session.context._timing._pending and time.monotonic() < deadline:
            time.sleep(0.01)  # the timer thread charges every kernel
    control = ControlClient(cuda_server.control.path)
    assert control.usage()["sessions"][0]["device_time_s"] > 0
    assert calls.count("cuEventRecord") == 80
    assert calls.count("cuEventCreate") <= 40  # the second burst reuses the first's
    (data,) = connection.memcpy_dtoh(dptr, 16, 0)
    assert np.frombuffer(data, np.float32).tolist() == [3.0] * 4
    control.close()


def test_eviction_keeps_pointers_and_bytes(cuda_server, fake_cuda, open_session):
    _, vmm = fake_cuda
    rng = np.random.default_rng(5)
    guests = []
    for index in range(2):  # 2 x 16 MB of buffers on 16 MB of physical memory
        connection = open_session(cuda_server, allocation_id="a%d" % index,
                                  vgpu_id="v%d" % index, memory_mb=16)
        buffers = {}
        for _ in range(4):
            (dptr,) = connection.mem_alloc(4 * MB)
            data = rng.integers(0, 256, 4 * MB, dtype=np.uint8).tobytes()
            connection.memcpy_htod(dptr, buffer=data)
            buffers[dptr] = hashlib.sha256(data).digest()
        guests.append((connection, buffers))
    for _ in range(3):
        for connection, buffers in guests:
            for dptr, digest in buffers.items():
                (data,) = connection.memcpy_dtoh(dptr, 4 * MB, 0)
                assert hashlib.sha256(data).digest() == digest
    control = ControlClient(cuda_server.control.path)
    gpu = control.usage()["gpu"]
    assert gpu["evictions"] >= 8 and gpu["bytes_restored"] >= 16 * MB
    assert vmm["physical_used"] <= PHYSICAL_BYTES
    for connection, _ in guests:
        connection.close()
    deadline = time.monotonic() + 5
    while control.usage()["sessions"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert vmm["physical_used"] == 0 and not vmm["handles"]
    control.close()


def test_small_buffers_stay_on_the_device(cuda_server, fake_cuda, open_session):
    calls, _ = fake_cuda
    connection = open_session(cuda_server, memory_mb=16)
    connection.mem_alloc(64 << 10)
    assert "cuMemAlloc" in calls and "cuMemCreate" not in calls
    connection.mem_alloc(GRANULARITY)
    assert "cuMemCreate" in calls
