"""Memory oversubscription: quotas adding up to twice the physical memory,
buffers moving to host RAM and back, and never a byte lost or mixed."""

import hashlib
import struct
import threading
import time

import numpy as np
import pytest

from guest_runtime import protocol
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server.control import ControlClient
from tests.qos.conftest import MB

PHYSICAL_MB = 32
SESSIONS = 4
BUFFERS = 4
BUFFER_BYTES = 4 * MB  # 4 sessions x 4 buffers x 4 MB = 64 MB = 2 x physical


class Guest:
    """A session that knows what each of its buffers must hold."""

    def __init__(self, connection, index):
        self.connection = connection
        self.rng = np.random.default_rng(index)
        self.buffers = [connection.mem_alloc(BUFFER_BYTES)[0] for _ in range(BUFFERS)]
        self.expected = [None] * BUFFERS
        (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
        (self.scale,) = connection.module_get_function(module, buffer=b"scale_f32")
        for slot in range(BUFFERS):
            self.rewrite(slot)

    def rewrite(self, slot):
        data = self.rng.standard_normal(BUFFER_BYTES // 4).astype(np.float32)
        self.connection.memcpy_htod(self.buffers[slot], buffer=data.tobytes())
        self.expected[slot] = data

    def double_on_device(self, slot):
        count = BUFFER_BYTES // 4
        self.connection.launch_kernel(self.scale, 1, 1, 1, 256, 1, 1, 0, 0,
                                      buffer=struct.pack("<QQf", self.buffers[slot], count,
                                                         2.0))
        self.expected[slot] = self.expected[slot] * np.float32(2.0)

    def verify(self):
        for slot, dptr in enumerate(self.buffers):
            (data,) = self.connection.memcpy_dtoh(dptr, BUFFER_BYTES, 0)
            want = self.expected[slot].tobytes()
            assert hashlib.sha256(data).digest() == hashlib.sha256(want).digest(), (
                "buffer %d of session %d changed" % (slot, self.connection.session_id))

    def cycle(self, turn):
        self.verify()
        self.rewrite(turn % BUFFERS)
        self.double_on_device((turn + 1) % BUFFERS)
        self.verify()


@pytest.fixture
def oversubscribed(qos_server, open_session):
    server = qos_server(memory_mb=PHYSICAL_MB, oversub_ratio=2.0)
    control = ControlClient(server.control.path)
    guests = [Guest(open_session(server, allocation_id="alloc-%d" % i, vgpu_id="v%d" % i,
                                 memory_mb=BUFFERS * BUFFER_BYTES // MB), i)
              for i in range(SESSIONS)]
    yield server, control, guests
    control.close()


def test_every_buffer_survives_many_eviction_cycles(oversubscribed):
    server, control, guests = oversubscribed
    for turn in range(6):
        for guest in guests:
            guest.cycle(turn)
    gpu = control.usage()["gpu"]
    assert gpu["memory_used_mb"] == 2 * PHYSICAL_MB
    assert gpu["memory_resident_mb"] <= PHYSICAL_MB
    assert gpu["evictions"] >= 6 * SESSIONS
    assert gpu["bytes_evicted"] >= 6 * SESSIONS * BUFFER_BYTES
    assert gpu["bytes_restored"] >= gpu["bytes_evicted"] - 2 * PHYSICAL_MB * MB
    sessions = control.usage()["sessions"]
    assert all(s["evictions"] > 0 and s["bytes_restored"] > 0 for s in sessions)


def test_concurrent_sessions_never_lose_or_mix_data(oversubscribed):
    server, control, guests = oversubscribed
    failures = []

    def run(guest):
        try:
            for turn in range(5):
                guest.cycle(turn)
        except Exception as exc:  # reported below, with the others'
            failures.append(exc)
    threads = [threading.Thread(target=run, args=(guest,)) for guest in guests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert control.usage()["gpu"]["evictions"] > 0


def test_lowest_priority_is_evicted_first(oversubscribed):
    server, control, guests = oversubscribed
    control.set_priority("alloc-1", -5)  # not the least recently active one
    guests[2].verify()
    guests[3].verify()  # needs room: alloc-1 goes before alloc-0
    by_allocation = {s["allocation_id"]: s for s in control.usage()["sessions"]}
    assert by_allocation["alloc-1"]["memory_evicted_mb"] > 0


def test_quota_and_gpu_limit_still_bind(oversubscribed, open_session):
    server, control, guests = oversubscribed
    with pytest.raises(CudaError) as caught:
        guests[0].connection.mem_alloc(MB)  # its 16 MB quota is full
    assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
    assert "quota 16 MB" in caught.value.message
    newcomer = open_session(server, allocation_id="late", memory_mb=16)
    with pytest.raises(CudaError) as caught:
        newcomer.mem_alloc(MB)  # 64 MB = 32 MB x 2.0 are all held
    assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
    assert "memory limit of 64 MB" in caught.value.message


def test_freeing_and_preempting_evicted_buffers_frees_host_ram(oversubscribed):
    server, control, guests = oversubscribed
    for guest in guests:
        guest.verify()  # the last one leaves the first ones evicted
    assert control.usage()["gpu"]["evicted_bytes"] > 0
    first = guests[0].connection
    for dptr in guests[0].buffers:
        first.mem_free(dptr)
    first.ping()
    control.preempt("alloc-1", by_allocation="alloc-9")
    gpu = control.usage()["gpu"]
    held = sum(s["memory_used_mb"] for s in control.usage()["sessions"])
    assert gpu["memory_used_mb"] == held == 2 * BUFFERS * BUFFER_BYTES // MB
    assert gpu["evicted_bytes"] == sum(s["memory_evicted_mb"] * MB
                                       for s in control.usage()["sessions"])
    guests[2].verify()
    guests[3].verify()


def test_shrinking_physical_memory_moves_buffers_out(qos_server, open_session):
    server = qos_server(memory_mb=PHYSICAL_MB)
    control = ControlClient(server.control.path)
    guest = Guest(open_session(server, memory_mb=16), 0)
    result = control.set_memory_limits(physical_memory_mb=8, oversub_ratio=4.0)
    assert result["resident_over_physical_mb"] == 0
    assert control.usage()["gpu"]["memory_resident_mb"] <= 8
    with pytest.raises(CudaError) as caught:
        guest.verify()  # 16 MB of buffers cannot come back into 8 MB
    assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
    control.set_memory_limits(physical_memory_mb=PHYSICAL_MB)
    guest.verify()
    control.close()


def test_a_busy_session_still_gives_way(qos_server, open_session):
    """A session launching kernels without pause holds its lock most of the
    time; another that needs memory still gets its buffers moved out."""
    server = qos_server(memory_mb=PHYSICAL_MB, oversub_ratio=2.0)
    busy = open_session(server, allocation_id="busy", memory_mb=24)
    (module,) = busy.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
    (fill,) = busy.module_get_function(module, buffer=b"fill_f32")
    (work,) = busy.mem_alloc(MB)
    (kept,) = busy.mem_alloc(20 * MB)
    busy.memset_d32(kept, 0x01020304, 5 * MB, 0)
    stop = threading.Event()
    failures = []

    def launch_forever():
        try:
            while not stop.is_set():
                for _ in range(8):
                    busy.launch_kernel(fill, 1, 1, 1, 256, 1, 1, 0, 0,
                                       buffer=struct.pack("<QQf", work, MB // 4, 1.0))
                busy.ctx_synchronize()
        except Exception as exc:  # reported below
            failures.append(exc)
    thread = threading.Thread(target=launch_forever)
    thread.start()
    try:
        newcomer = open_session(server, allocation_id="new", memory_mb=24)
        started = time.monotonic()
        (dptr,) = newcomer.mem_alloc(20 * MB)
        newcomer.memset_d8(dptr, 7, 20 * MB, 0)
        assert time.monotonic() - started < 10
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures
    (data,) = busy.memcpy_dtoh(kept, 20 * MB, 0)
    assert data == struct.pack("<I", 0x01020304) * (5 * MB)
