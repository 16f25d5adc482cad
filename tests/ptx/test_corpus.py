"""The corpus, compiled by NVRTC and Numba at test time, run on the sim through
a GPU server and the guest's CUDA API, compared with numpy."""

import ctypes
import functools

import numpy as np
import pytest

from tests.ptx import compilers, corpus
from tests.ptx.device import Device, ok, ptr

C_INT, C_UINT64, C_FLOAT = ctypes.c_int, ctypes.c_uint64, ctypes.c_float


@functools.cache
def corpus_ptx():
    return compilers.nvrtc(corpus.CORPUS_SOURCE)


@pytest.fixture
def device(cuda):
    opened = Device(cuda, corpus_ptx())
    yield opened
    opened.close()


RNG = np.random.default_rng(15)


def test_vector_add(device):
    n = 1000
    a, b = RNG.random(n, dtype=np.float32), RNG.random(n, dtype=np.float32)
    d_c = device.zeros(n, np.float32)
    device.launch("vector_add", 4, 256, [ptr(device.upload(a)), ptr(device.upload(b)),
                                         ptr(d_c), (n, C_INT)])
    np.testing.assert_array_equal(device.download(d_c, n, np.float32), a + b)


def test_saxpy_with_64_bit_sizes_and_a_grid_stride_loop(device):
    n = 5000
    x, y = RNG.random(n, dtype=np.float32), RNG.random(n, dtype=np.float32)
    d_y = device.upload(y)
    device.launch("saxpy64", 3, 128, [ptr(d_y), ptr(device.upload(x)), (2.5, C_FLOAT),
                                      (n, C_UINT64)])
    # NVRTC contracts a * x + y into one fma: rounded once, from the exact
    # value (which a longdouble holds for these operands).
    exact = np.longdouble(2.5) * x.astype(np.longdouble) + y.astype(np.longdouble)
    np.testing.assert_array_equal(device.download(d_y, n, np.float32),
                                  exact.astype(np.float32))


def test_shared_memory_tree_reduction(device):
    n, blocks, threads = 10_000, 8, 256
    x = RNG.integers(0, 100, n).astype(np.float32)  # exact in any order of addition
    d_partial = device.zeros(blocks, np.float32)
    device.launch("block_sum", blocks, threads, [ptr(device.upload(x)), ptr(d_partial),
                                                 (n, C_INT)], shared_bytes=4 * threads)
    partial = device.download(d_partial, blocks, np.float32)
    assert partial.sum() == x.sum()
    stride = blocks * threads
    for block in range(blocks):
        index = np.arange(n)
        assert partial[block] == x[(index % stride) // threads == block].sum()


def test_warp_shuffle_reduction(device):
    n = 3000
    x = RNG.integers(-1000, 1000, n).astype(np.int32)
    d_total = device.zeros(1, np.int32)
    device.launch("warp_sum", 12, 256, [ptr(device.upload(x)), ptr(d_total), (n, C_INT)])
    assert device.download(d_total, 1, np.int32)[0] == x.sum()


def test_histogram_with_shared_and_global_atomics(device):
    n = 20_000
    data = RNG.integers(0, 256, n).astype(np.uint8)
    d_bins = device.zeros(64, np.uint32)
    device.launch("histogram", 6, 256, [ptr(device.upload(data)), ptr(d_bins), (n, C_INT)])
    np.testing.assert_array_equal(device.download(d_bins, 64, np.uint32),
                                  np.bincount(data & 63, minlength=64))


def test_tiled_matmul(device):
    m, n, k = 37, 29, 45  # not multiples of the tile: the edges are guarded
    a = RNG.random((m, k), dtype=np.float32)
    b = RNG.random((k, n), dtype=np.float32)
    d_c = device.zeros(m * n, np.float32)
    device.launch("tiled_matmul", ((n + 15) // 16, (m + 15) // 16, 1), (16, 16, 1),
                  [ptr(device.upload(a)), ptr(device.upload(b)), ptr(d_c), (m, C_INT),
                   (n, C_INT), (k, C_INT)])
    np.testing.assert_allclose(device.download(d_c, m * n, np.float32).reshape(m, n), a @ b,
                               rtol=1e-5)


def _collatz(v):
    count = 0
    while v != 1 and count <= 1000:
        count += 1
        v = 3 * v + 1 if v & 1 else v >> 1
    return count


def test_divergent_loops_reconverge(device):
    n = 700
    start = RNG.integers(1, 5000, n).astype(np.uint32)
    d_steps = device.zeros(n, np.int32)
    device.launch("collatz_steps", 3, 256, [ptr(device.upload(start)), ptr(d_steps),
                                            (n, C_INT)])
    expected = np.array([_collatz(int(v)) * (-1 if i % 3 == 0 else 1)
                         for i, v in enumerate(start)], dtype=np.int32)
    np.testing.assert_array_equal(device.download(d_steps, n, np.int32), expected)


def test_clock_moves_forward(device):
    d_elapsed, d_sink = device.zeros(64, np.int64), device.zeros(32, np.float32)
    device.launch("clock_ticks", 1, 32, [ptr(d_elapsed), ptr(d_sink)])
    elapsed = device.download(d_elapsed, 64, np.int64)
    assert (elapsed[0::2] > 0).all() and (elapsed[1::2] > 0).all()
    acc = np.float32(0)
    for i in range(100):
        acc = np.float32(acc * np.float32(0.5) + np.float32(i))
    np.testing.assert_array_equal(device.download(d_sink, 32, np.float32), acc)


def test_device_function_calls(device):
    n = 300
    x = RNG.random(n, dtype=np.float32)
    d_y = device.zeros(n, np.float32)
    device.launch("device_calls", 2, 256, [ptr(device.upload(x)), ptr(d_y), (n, C_INT)])
    v = x[np.clip(np.arange(n) - 1, 0, n - 1)]
    poly = (np.float32(2) * v * v + np.float32(-1) * v + np.float32(1)).astype(np.float32)
    expected = np.where(np.arange(n) & 1, poly, v)
    np.testing.assert_allclose(device.download(d_y, n, np.float32), expected, rtol=1e-6)


def test_half_arithmetic_and_conversions(device):
    n = 500
    a = (RNG.random(n) * 8 - 4).astype(np.float16)
    b = (RNG.random(n) * 8 - 4).astype(np.float16)
    d_out, d_f32, d_bf16 = (device.zeros(n, np.float16), device.zeros(n, np.float32),
                            device.zeros(n, np.uint16))
    device.launch("half_math", 2, 256, [ptr(device.upload(a)), ptr(device.upload(b)),
                                        ptr(d_out), ptr(d_f32), ptr(d_bf16), (n, C_INT)])
    # fma rounds once; then the add of -b rounds again.
    fused = (a.astype(np.float64) * b.astype(np.float64) + 0.25).astype(np.float16)
    expected = (fused.astype(np.float64) - b.astype(np.float64)).astype(np.float16)
    np.testing.assert_array_equal(device.download(d_out, n, np.float16), expected)
    np.testing.assert_array_equal(device.download(d_f32, n, np.float32),
                                  a.astype(np.float32) * 2)
    third = (a.astype(np.float32) / np.float32(3)).astype(np.float32)
    bits = third.view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    np.testing.assert_array_equal(device.download(d_bf16, n, np.uint16), rounded)


# -- Numba ----------------------------------------------------------------------------

def _numba_kernels():
    import math

    from numba import cuda as numba_cuda

    def axpy(out, x, y, a):
        i = numba_cuda.grid(1)
        if i < out.size:
            out[i] = a * x[i] + y[i]

    def block_max(x, out):
        tile = numba_cuda.shared.array(128, dtype=np.int32)
        t = numba_cuda.threadIdx.x
        i = numba_cuda.grid(1)
        tile[t] = x[i] if i < x.size else -(1 << 30)
        numba_cuda.syncthreads()
        stride = 64
        while stride > 0:
            if t < stride:
                tile[t] = max(tile[t], tile[t + stride])
            numba_cuda.syncthreads()
            stride //= 2
        if t == 0:
            numba_cuda.atomic.max(out, 0, tile[0])

    def g2(a, out, total):  # short: the protocol caps function names at 256 bytes
        i, j = numba_cuda.grid(2)
        if i < a.shape[0] and j < a.shape[1]:
            out[i, j] = math.sqrt(a[i, j]) + math.exp(a[i, j] * 0.1) + a[i, j] ** 2
            numba_cuda.atomic.add(total, 0, a[i, j])
    return axpy, block_max, g2


def test_numba_axpy(device):
    axpy, _, _ = _numba_kernels()
    ptx, name = compilers.numba_ptx(axpy, "void(float32[:], float32[:], float32[:], float32)")
    module = device.load(ptx)
    n = 777
    x, y = RNG.random(n, dtype=np.float32), RNG.random(n, dtype=np.float32)
    d_out = device.zeros(n, np.float32)
    params = (compilers.numba_array(d_out, n, 4) + compilers.numba_array(device.upload(x), n, 4)
              + compilers.numba_array(device.upload(y), n, 4)
              + np.float32(1.5).tobytes())
    function = ok(device.cuda.cuModuleGetFunction(module, name.encode()))
    device.launch_packed(function, (4, 1, 1), (256, 1, 1), params)
    expected = (np.float32(1.5) * x + y).astype(np.float32)
    np.testing.assert_allclose(device.download(d_out, n, np.float32), expected, rtol=1e-6)


def test_numba_shared_reduction_with_atomic_max(device):
    _, block_max, _ = _numba_kernels()
    ptx, name = compilers.numba_ptx(block_max, "void(int32[:], int32[:])")
    module = device.load(ptx)
    n = 1000
    x = RNG.integers(-10**6, 10**6, n).astype(np.int32)
    d_out = device.upload(np.array([-(1 << 31)], dtype=np.int32))
    params = compilers.numba_array(device.upload(x), n, 4) + compilers.numba_array(d_out, 1, 4)
    function = ok(device.cuda.cuModuleGetFunction(module, name.encode()))
    device.launch_packed(function, (8, 1, 1), (128, 1, 1), params)
    assert device.download(d_out, 1, np.int32)[0] == x.max()


def test_numba_2d_grid_math_and_float_atomics(device):
    _, _, grid_2d = _numba_kernels()
    ptx, name = compilers.numba_ptx(grid_2d, "void(float64[:, :], float64[:, :], float64[:])")
    module = device.load(ptx)
    rows, cols = 37, 21
    a = RNG.random((rows, cols))
    d_out, d_total = device.zeros(rows * cols, np.float64), device.zeros(1, np.float64)
    params = (compilers.numba_array(device.upload(a), (rows, cols), 8)
              + compilers.numba_array(d_out, (rows, cols), 8)
              + compilers.numba_array(d_total, 1, 8))
    function = ok(device.cuda.cuModuleGetFunction(module, name.encode()))
    device.launch_packed(function, (3, 2, 1), (16, 16, 1), params)
    expected = np.sqrt(a) + np.exp(a * 0.1) + a ** 2
    np.testing.assert_allclose(device.download(d_out, rows * cols, np.float64)
                               .reshape(rows, cols), expected, rtol=1e-15)
    np.testing.assert_allclose(device.download(d_total, 1, np.float64)[0], a.sum(),
                               rtol=1e-12)
