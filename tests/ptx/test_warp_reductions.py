"""sm_80's warp reductions (redux.sync) and packed 16-bit min/max, as NVRTC
emits them for __reduce_*_sync and __vmins2/__vmaxu2, on the sim, compared
with numpy. CUB's kernels (CuPy's reductions among them) use both."""

import ctypes
import functools

import numpy as np
import pytest

from tests.ptx import compilers
from tests.ptx.device import Device, ptr

SOURCE = r"""
extern "C" __global__ void reductions(const int *x, int *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int v = i < n ? x[i] : 0;
    unsigned all = 0xffffffffu;
    out[6 * i + 0] = __reduce_add_sync(all, v);
    out[6 * i + 1] = __reduce_min_sync(all, v);
    out[6 * i + 2] = (int)__reduce_max_sync(all, (unsigned)v);
    out[6 * i + 3] = (int)__reduce_or_sync(all, (unsigned)v);
    out[6 * i + 4] = (int)__reduce_and_sync(all, (unsigned)v);
    out[6 * i + 5] = (int)__reduce_xor_sync(all, (unsigned)v);
}

extern "C" __global__ void packed(const unsigned *a, const unsigned *b, unsigned *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[2 * i] = __vmins2(a[i], b[i]);
        out[2 * i + 1] = __vmaxu2(a[i], b[i]);
    }
}
"""
C_INT = ctypes.c_int
RNG = np.random.default_rng(80)


@functools.cache
def ptx():
    # compute_90: for compute_80 NVRTC spells __vmins2 out in 32-bit steps.
    return compilers.nvrtc(SOURCE, arch="compute_90")


@pytest.fixture
def device(cuda):
    opened = Device(cuda, ptx())
    yield opened
    opened.close()


def test_the_compiler_emits_the_instructions():
    text = ptx()
    assert "redux.sync.add.s32" in text and "redux.sync.min.s32" in text
    assert "min.s16x2" in text and "max.u16x2" in text


def test_warp_reductions(device):
    n = 128
    x = RNG.integers(-1000, 1000, n).astype(np.int32)
    d_out = device.zeros(6 * n, np.int32)
    device.launch("reductions", 1, n, [ptr(device.upload(x)), ptr(d_out), (n, C_INT)])
    out = device.download(d_out, 6 * n, np.int32).reshape(n, 6)
    warps = x.reshape(-1, 32)
    unsigned = warps.view(np.uint32)
    expected = np.stack([
        warps.sum(axis=1, dtype=np.int64).astype(np.int32), warps.min(axis=1),
        unsigned.max(axis=1).view(np.int32), np.bitwise_or.reduce(warps, axis=1),
        np.bitwise_and.reduce(warps, axis=1), np.bitwise_xor.reduce(warps, axis=1)], axis=1)
    np.testing.assert_array_equal(out, np.repeat(expected, 32, axis=0))


def test_packed_half_min_max(device):
    n = 256
    a = RNG.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    b = RNG.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    d_out = device.zeros(2 * n, np.uint32)
    device.launch("packed", 1, n, [ptr(device.upload(a)), ptr(device.upload(b)), ptr(d_out),
                                   (n, C_INT)])
    out = device.download(d_out, 2 * n, np.uint32).reshape(n, 2)
    a16, b16 = a.view(np.uint16).reshape(n, 2), b.view(np.uint16).reshape(n, 2)
    mins = np.minimum(a16.view(np.int16), b16.view(np.int16)).view(np.uint16)
    maxs = np.maximum(a16, b16)
    np.testing.assert_array_equal(out[:, 0], mins.reshape(-1).view(np.uint32))
    np.testing.assert_array_equal(out[:, 1], maxs.reshape(-1).view(np.uint32))
