"""What NVRTC emits beyond the corpus, run on the sim and compared with numpy:
structs by value, local arrays, votes, atomics, libdevice math, 64-bit ints."""

import ctypes
import functools

import numpy as np
import pytest

from tests.ptx import compilers, corpus
from tests.ptx.device import Device, ptr

C_INT = ctypes.c_int
RNG = np.random.default_rng(99)


class Pair(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("offset", ctypes.c_int)]


class Eight(ctypes.Structure):
    _fields_ = [("v", ctypes.c_float * 8)]


@functools.cache
def more_ptx():
    return compilers.nvrtc(corpus.MORE_SOURCE)


@pytest.fixture
def device(cuda):
    opened = Device(cuda, more_ptx())
    yield opened
    opened.close()


def test_struct_parameter_by_value(device):
    n = 300
    d_out = device.zeros(n, np.float32)
    device.launch("by_value", 2, 256, [ptr(d_out), (Pair(0.5, 7), Pair), (n, C_INT)])
    np.testing.assert_array_equal(device.download(d_out, n, np.float32),
                                  (np.float32(0.5) * np.arange(n) + 7).astype(np.float32))


def test_local_arrays_are_per_thread(device):
    n = 512
    x = RNG.integers(-50, 50, n).astype(np.int32)
    d_out = device.zeros(n, np.int32)
    device.launch("local_array", 2, 256, [ptr(device.upload(x)), ptr(d_out), (n, C_INT)])
    i = np.arange(n)[:, None]
    k = np.arange(16)[None, :]
    buf = x[(i + k) % n] * k
    expected = buf[np.arange(n)[:, None], (k * 7 + i) & 15].sum(axis=1)
    np.testing.assert_array_equal(device.download(d_out, n, np.int32), expected)


def test_warp_votes_matches_and_shuffles(device):
    n = 256
    v = RNG.integers(-120, 120, n).astype(np.int32)
    d_ballots, d_flags = device.zeros(2 * n, np.uint32), device.zeros(2 * n, np.int32)
    device.launch("votes", 1, 256, [ptr(device.upload(v)), ptr(d_ballots), ptr(d_flags),
                                    (n, C_INT)])
    ballots, flags = device.download(d_ballots, 2 * n, np.uint32), device.download(
        d_flags, 2 * n, np.int32)
    warps = v.reshape(-1, 32)
    bits = (1 << np.arange(32, dtype=np.uint64))
    ballot = ((warps > 0) * bits).sum(axis=1).astype(np.uint32)
    np.testing.assert_array_equal(ballots[:n], np.repeat(ballot, 32))
    all_ = np.repeat((warps > -100).all(axis=1), 32)
    any_ = np.repeat((warps > 50).any(axis=1), 32)
    np.testing.assert_array_equal(flags[:n], all_.astype(int) | (any_.astype(int) << 1))
    key = warps & 3
    same = ((key[:, :, None] == key[:, None, :]) * bits).sum(axis=2).astype(np.uint32)
    np.testing.assert_array_equal(ballots[n:], same.ravel())
    lane = np.arange(32)
    xor = warps[:, lane ^ 1]
    idx = np.repeat(warps[:, 3:4], 32, axis=1)
    up = np.where(lane >= 2, warps[:, np.maximum(lane - 2, 0)], warps)
    np.testing.assert_array_equal(flags[n:], (xor + 1000 * (idx & 7) + 100000 * (up & 3))
                                  .ravel())


def test_atomics_of_every_kind(device):
    n = 1000
    x = RNG.random(n, dtype=np.float32) * 10
    d_max = device.upload(np.array([-1.0], dtype=np.float32))
    d_sum = device.zeros(1, np.uint64)
    d_counter = device.zeros(1, np.uint32)
    d_exch = device.upload(np.array([-1, 0, 0], dtype=np.int32))
    device.launch("atomics", 4, 256, [ptr(device.upload(x)), ptr(d_max), ptr(d_sum),
                                      ptr(d_counter), ptr(d_exch), (n, C_INT)])
    assert device.download(d_max, 1, np.float32)[0] == x.max()
    assert device.download(d_sum, 1, np.uint64)[0] == (x * np.float32(1000)).astype(
        np.uint64).sum()
    assert device.download(d_counter, 1, np.uint32)[0] == n
    exch = device.download(d_exch, 3, np.int32)
    assert 0 <= exch[0] < n  # some thread's index: exchanges serialise
    assert exch[1] == -(n - 1)
    assert exch[2] == -1  # every bit set


def test_libdevice_f32_math(device):
    n = 256
    x = (RNG.random(n, dtype=np.float32) * 4 + 0.1).astype(np.float32)
    d_out = device.zeros(6 * n, np.float32)
    device.launch("mathf", 1, 256, [ptr(device.upload(x)), ptr(d_out), (n, C_INT)])
    out = device.download(d_out, 6 * n, np.float32).reshape(n, 6)
    x64 = x.astype(np.float64)
    expected = np.stack([np.exp(x64), np.sin(x64), np.sqrt(x64), 1 / np.sqrt(x64),
                         np.log(x64), np.tanh(x64) + x64 ** 1.5], axis=1)
    # libdevice's own f32 algorithms: within a few ulps of the exact values.
    np.testing.assert_allclose(out, expected, rtol=4e-6, atol=1e-6)


def test_libdevice_f64_math_with_carry_arithmetic_and_global_tables(device):
    n = 64
    x = RNG.random(n) * 40 + 0.5  # large enough for sin's argument reduction
    x[:4] = [1e6, 123456.789, 2.0 ** 30, 1e15]  # the slow path: carries and tables
    d_out = device.zeros(4 * n, np.float64)
    device.launch("mathd", 1, 64, [ptr(device.upload(x)), ptr(d_out), (n, C_INT)])
    out = device.download(d_out, 4 * n, np.float64).reshape(n, 4)
    with np.errstate(over="ignore"):
        expected = np.stack([np.exp(x), np.sqrt(x), np.log(x), np.sin(x)], axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-14, atol=1e-15)


def test_64_bit_integer_operations(device):
    n = 128
    a = RNG.integers(0, 2 ** 64, n, dtype=np.uint64)
    b = RNG.integers(1, 2 ** 40, n, dtype=np.uint64)
    d_out = device.zeros(8 * n, np.uint64)
    device.launch("intops", 1, 128, [ptr(device.upload(a)), ptr(device.upload(b)),
                                     ptr(d_out), (n, C_INT)])
    out = device.download(d_out, 8 * n, np.uint64).reshape(n, 8)
    for i in range(n):
        x, y = int(a[i]), int(b[i]) | 1
        sx, sy = x - (1 << 64) if x >> 63 else x, y
        quotient = abs(sx) // sy * (-1 if sx < 0 else 1)
        xb, yb = x & 0xFFFFFFFF, y & 0xFFFFFFFF
        pool = xb | (yb << 32)
        perm = sum(((pool >> (8 * ((0x5140 >> (4 * k)) & 7))) & 0xFF) << (8 * k)
                   for k in range(4))
        want = [x // y, x % y, quotient & (2 ** 64 - 1),
                bin(x).count("1") + (64 - y.bit_length()) * 100,
                int(f"{x:064b}"[::-1], 2), perm,
                (x & -x).bit_length() if x else 0, (x * y) >> 64]
        assert [int(v) for v in out[i]] == want, i


def test_half_comparisons(device):
    n = 200
    a = RNG.integers(-4, 4, n).astype(np.float16)
    b = RNG.integers(-4, 4, n).astype(np.float16)
    a[:3] = np.nan
    d_out = device.zeros(n, np.int32)
    device.launch("half_compare", 1, 256, [ptr(device.upload(a)), ptr(device.upload(b)),
                                           ptr(d_out), (n, C_INT)])
    with np.errstate(invalid="ignore"):
        expected = (a < b) | ((a >= b) << 1) | ((a == b) << 2) | (np.isnan(a) << 3)
    np.testing.assert_array_equal(device.download(d_out, n, np.int32), expected)


def _half(x):
    return np.asarray(x, dtype=np.float64).astype(np.float16).astype(np.float64)


def test_packed_half2_and_bfloat162_arithmetic(device):
    n = 128
    a = (RNG.random((n, 2)) * 4 - 2).astype(np.float16)
    b = (RNG.random((n, 2)) * 4 - 2).astype(np.float16)
    d_c, d_f = device.zeros(2 * n, np.float16), device.zeros(n, np.float32)
    device.launch("h2", 1, 128, [ptr(device.upload(a)), ptr(device.upload(b)), ptr(d_c),
                                 ptr(d_f), (n, C_INT)])
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    r = _half(a64 * b64 + np.array([0.5, -1.0]))  # fma: one rounding per half
    r = np.maximum(r, -a64)
    other = np.stack([a64[:, 0], b64[:, 1]], axis=1)
    np.testing.assert_array_equal(device.download(d_c, 2 * n, np.float16).reshape(n, 2),
                                  _half(r + other).astype(np.float16))
    f = device.download(d_f, n, np.float32)
    np.testing.assert_allclose(f, r[:, 0] + r[:, 1] + _half(np.exp(a64[:, 0])), rtol=2e-3)
    bf = (RNG.random((n, 2)) * 4).astype(np.float32)
    bf_bits = (bf.view(np.uint32) >> 16).astype(np.uint16)  # truncated to bf16
    d_bc = device.zeros(2 * n, np.uint16)
    device.launch("b2", 1, 128, [ptr(device.upload(bf_bits)), ptr(d_bc), (n, C_INT)])
    values = (bf_bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    square = (values * values).astype(np.float32).view(np.uint32)
    rounded = ((square + 0x7FFF + ((square >> 16) & 1)) >> 16).astype(np.uint16)
    np.testing.assert_array_equal(device.download(d_bc, 2 * n, np.uint16).reshape(n, 2),
                                  rounded)


def test_barrier_reductions_count_and_or_over_the_block(device):
    n = 3 * 128
    x = RNG.integers(-6, 10, n).astype(np.int32)
    d_out = device.zeros(n, np.int32)
    device.launch("block_votes", 3, 128, [ptr(device.upload(x)), ptr(d_out), (n, C_INT)])
    blocks = x.reshape(3, 128)
    per_block = ((blocks > 0).sum(axis=1) + 1000 * (blocks > -5).all(axis=1)
                 + 10000 * (blocks > 8).any(axis=1))
    np.testing.assert_array_equal(device.download(d_out, n, np.int32),
                                  np.repeat(per_block, 128))


def test_constant_memory_and_module_variables(device):
    n = 100
    x = RNG.random(n, dtype=np.float32)
    d_out, d_seen = device.zeros(n, np.float32), device.zeros(1, np.int32)
    for launch in range(3):
        device.launch("polynomial", 1, 128, [ptr(device.upload(x)), ptr(d_out), ptr(d_seen),
                                             (n, C_INT)])
        assert device.download(d_seen, 1, np.int32)[0] == launch  # the variable persists
    c = [np.float32(v) for v in (0.5, -1.25, 2.0, 3.0)]
    acc = np.zeros(n, np.float32)
    for k in range(3, -1, -1):
        acc = (acc.astype(np.longdouble) * x + c[k]).astype(np.float32)  # fma: one rounding
    np.testing.assert_array_equal(device.download(d_out, n, np.float32), acc)


def test_a_device_function_reads_its_callers_local_memory(device):
    values = np.arange(1, 9, dtype=np.float32)
    d_out = device.zeros(32, np.float32)
    device.launch("pointer_to_parameter", 1, 32, [(Eight((ctypes.c_float * 8)(*values)), Eight),
                                                  ptr(d_out), (1, C_INT)])
    np.testing.assert_array_equal(device.download(d_out, 32, np.float32),
                                  values.sum() + values[np.arange(32) & 7])


def test_async_copies_to_shared_memory(device):
    blocks = 2
    data = RNG.random((blocks * 64, 4), dtype=np.float32)
    d_out = device.zeros(blocks * 64, np.float32)
    device.launch("staged", blocks, 64, [ptr(device.upload(data)), ptr(d_out),
                                         (blocks * 64, C_INT)])
    staged = data.reshape(blocks, 64, 4).copy()
    staged[:, 5, 2:] = 0  # thread 5 copied 8 bytes of 16
    expected = staged[:, ::-1, :].sum(axis=2, dtype=np.float32)
    np.testing.assert_allclose(device.download(d_out, blocks * 64, np.float32),
                               expected.ravel(), rtol=1e-6)
