"""The session memory map (quota, bisect lookups) and the sim arena allocator."""

import random

import pytest

from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server.memory_map import MB, Allocation, SessionMemoryMap, VGpuAccount
from orionx_agent.server.sim_backend import ALIGNMENT_BYTES, ArenaAllocator


def test_resolve_finds_the_right_allocation_among_many():
    memory = SessionMemoryMap("vGPU t", 1 << 30)
    rng = random.Random(1)
    starts = rng.sample(range(0, 1 << 24, 4096), 500)
    for start in starts:
        memory.add(Allocation(start, 1000))
    for start in rng.sample(starts, 50):
        assert memory.resolve(start + 10, 990).dptr == start
        with pytest.raises(CudaError, match="runs 1 bytes past"):
            memory.resolve(start + 10, 991)
        with pytest.raises(CudaError, match="no allocation"):
            memory.resolve(start + 2000, 1)
    assert memory.used_bytes == 500 * 1000


def test_quota_and_remove():
    memory = SessionMemoryMap("vGPU q", 4 * MB)
    memory.reserve(4000)
    memory.add(Allocation(100, 4000))
    with pytest.raises(CudaError) as caught:
        memory.reserve(4 * MB - 3999)
    assert caught.value.code == CUresult.CUDA_ERROR_OUT_OF_MEMORY
    memory.reserve(4 * MB - 4000)  # exactly what is left
    memory.cancel_reservation(4 * MB - 4000)
    assert memory.remove(100).nbytes == 4000
    with pytest.raises(CudaError, match="cuMemFree of 0x64"):
        memory.remove(100)
    assert memory.used_bytes == 0
    assert memory.vgpu_used_bytes == 0


def test_sessions_of_one_vgpu_share_its_account():
    account = VGpuAccount("alloc-1", "vgpu-1", 10, 1)
    first, second = SessionMemoryMap("a", MB, account), SessionMemoryMap("b", MB, account)
    first.reserve(MB // 2)
    first.add(Allocation(0, MB // 2))
    with pytest.raises(CudaError, match="quota 1 MB"):
        second.reserve(MB // 2 + 1)
    first.clear()
    second.reserve(MB)


def test_arena_first_fit_and_coalescing():
    arena = ArenaAllocator(16 * ALIGNMENT_BYTES)
    blocks = [arena.allocate(ALIGNMENT_BYTES) for _ in range(16)]
    assert blocks == [i * ALIGNMENT_BYTES for i in range(16)]
    assert arena.allocate(1) is None
    for offset in blocks[::2]:
        arena.release(offset, ALIGNMENT_BYTES)
    assert arena.allocate(2 * ALIGNMENT_BYTES) is None  # fragmented
    for offset in blocks[1::2]:
        arena.release(offset, ALIGNMENT_BYTES)
    assert arena.free_bytes() == 16 * ALIGNMENT_BYTES
    assert arena.allocate(16 * ALIGNMENT_BYTES) == 0  # all coalesced again
