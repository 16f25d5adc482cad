"""PTX executor benchmark: how fast the simulated GPU runs real kernels.

Compiles the test corpus (tests/ptx/corpus.py) with NVRTC, runs each kernel
on the PTX executor in this process (no server: the executor alone), and
the same computation written in numpy, all in this run. Prints per kernel:
thread-instructions executed, wall time, thread-instructions per second,
the numpy time and the ratio, and how much of the executor's time is the
fixed cost of dispatching each instruction (against numpy's work per lane).

Usage: python benchmarks/ptx.py [--scale 1.0]
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from orionx_agent.server.ptx.executor import BATCH_LANES, Launch, Program, run  # noqa: E402
from orionx_agent.server.ptx.memory import GlobalMemory  # noqa: E402
from tests.ptx import compilers, corpus  # noqa: E402

BASE = 0x7_0000_0000
SLOT_BYTES = 16 << 20
RNG = np.random.default_rng(1)


class Device:
    """An arena of fixed slots, one per kernel argument."""

    def __init__(self, slots=6):
        self.arena = np.zeros(slots * SLOT_BYTES, dtype=np.uint8)
        self.memory = GlobalMemory(self.arena, [(BASE + i * SLOT_BYTES, SLOT_BYTES,
                                                 i * SLOT_BYTES) for i in range(slots)],
                                   "benchmark")

    def put(self, slot, array):
        data = np.ascontiguousarray(array).view(np.uint8).ravel()
        self.arena[slot * SLOT_BYTES:slot * SLOT_BYTES + len(data)] = data
        return BASE + slot * SLOT_BYTES

    def get(self, slot, count, dtype):
        nbytes = count * np.dtype(dtype).itemsize
        return self.arena[slot * SLOT_BYTES:slot * SLOT_BYTES + nbytes].view(dtype)


def _params(*values):
    """Packed with natural alignment: (value, struct code) pairs."""
    out = b""
    for value, code in values:
        size = np.dtype({"Q": np.uint64, "i": np.int32, "f": np.float32}[code]).itemsize
        out += b"\0" * (-len(out) % size)
        out += np.array([value], dtype={"Q": np.uint64, "i": np.int32,
                                         "f": np.float32}[code]).tobytes()
    return out


def cases(scale):
    n = int(262_144 * scale)
    m = int(96 * max(scale, 0.25))
    x, y = RNG.random(n, dtype=np.float32), RNG.random(n, dtype=np.float32)
    ints = RNG.integers(-1000, 1000, n).astype(np.int32)
    data = RNG.integers(0, 256, n).astype(np.uint8)
    a, b = RNG.random((m, m), dtype=np.float32), RNG.random((m, m), dtype=np.float32)
    starts = RNG.integers(1, 5000, n // 16).astype(np.uint32)
    halves = (RNG.random(n) * 4).astype(np.float16)

    def vector_add(d):
        return ((d.put(0, x), "Q"), (d.put(1, y), "Q"), (d.put(2, np.zeros(n, np.float32)),
                                                         "Q"), (n, "i"))
    yield ("vector_add", vector_add, (n // 256, 1, 1), (256, 1, 1), 0, lambda: x + y)

    def saxpy(d):
        return ((d.put(0, y), "Q"), (d.put(1, x), "Q"), (2.5, "f"), (n, "Q"))
    yield ("saxpy64", saxpy, (n // 1024, 1, 1), (256, 1, 1), 0,
           lambda: np.float32(2.5) * x + y)

    def block_sum(d):
        return ((d.put(0, x), "Q"), (d.put(1, np.zeros(64, np.float32)), "Q"), (n, "i"))
    yield ("block_sum", block_sum, (64, 1, 1), (256, 1, 1), 1024,
           lambda: x.reshape(-1, 64 * 256).sum(axis=0).reshape(64, 256).sum(axis=1))

    def warp_sum(d):
        return ((d.put(0, ints), "Q"), (d.put(1, np.zeros(1, np.int32)), "Q"), (n, "i"))
    yield ("warp_sum", warp_sum, (n // 256, 1, 1), (256, 1, 1), 0, lambda: ints.sum())

    def histogram(d):
        return ((d.put(0, data), "Q"), (d.put(1, np.zeros(64, np.uint32)), "Q"), (n, "i"))
    yield ("histogram", histogram, (64, 1, 1), (256, 1, 1), 0,
           lambda: np.bincount(data & 63, minlength=64))

    def matmul(d):
        return ((d.put(0, a), "Q"), (d.put(1, b), "Q"), (d.put(2, np.zeros(m * m, np.float32)),
                                                         "Q"), (m, "i"), (m, "i"), (m, "i"))
    yield ("tiled_matmul", matmul, ((m + 15) // 16, (m + 15) // 16, 1), (16, 16, 1), 0,
           lambda: a @ b)

    def collatz(d):
        return ((d.put(0, starts), "Q"), (d.put(1, np.zeros(len(starts), np.int32)), "Q"),
                (len(starts), "i"))

    def collatz_numpy():
        v = starts.astype(np.uint64)
        count = np.zeros(len(v), dtype=np.int32)
        while (v != 1).any():
            active = v != 1
            count += active
            v = np.where(active, np.where(v & 1, 3 * v + 1, v >> 1), v)
        return count
    yield ("collatz_steps", collatz, ((len(starts) + 255) // 256, 1, 1), (256, 1, 1), 0,
           collatz_numpy)

    def calls(d):
        return ((d.put(0, x), "Q"), (d.put(1, np.zeros(n, np.float32)), "Q"), (n, "i"))
    yield ("device_calls", calls, (n // 256, 1, 1), (256, 1, 1), 0,
           lambda: np.where(np.arange(n) & 1, 2 * x * x - x + 1, x))

    def half(d):
        return tuple((d.put(i, arr), "Q") for i, arr in enumerate(
            (halves, halves, np.zeros(n, np.float16), np.zeros(n, np.float32),
             np.zeros(n, np.uint16)))) + ((n, "i"),)
    yield ("half_math", half, (n // 256, 1, 1), (256, 1, 1), 0,
           lambda: (halves * halves + np.float16(0.25)) - halves)


def measure(program, case, grid=None, block=None):
    """(thread-instructions, executor seconds, numpy seconds) of one case,
    the second of two runs (the first warms caches and device pages)."""
    name, make_args, case_grid, case_block, shared, numpy_fn = case
    device = Device()
    for _ in range(2):
        params = _params(*make_args(device))
        padded = np.frombuffer(params.ljust((len(params) + 15) // 16 * 16, b"\0"), np.uint8)
        launch = Launch(program, name, grid or case_grid, block or case_block, shared, padded,
                        len(params), device.memory, 10 ** 12)
        started = time.perf_counter()
        run(launch)
        ptx_s = time.perf_counter() - started
        started = time.perf_counter()
        numpy_fn()
        numpy_s = time.perf_counter() - started
    return launch.executed, ptx_s, numpy_s


def fixed_cost_per_step(program, case):
    """Seconds one instruction costs whatever its lane count, approximately:
    the kernel run by one block, where numpy's work per lane is small."""
    block = case[3]
    executed, ptx_s, _ = measure(program, case, grid=(1, 1, 1))
    return ptx_s / (executed / (block[0] * block[1] * block[2]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="problem size relative to the default (262144 elements)")
    args = parser.parse_args()
    program = Program(compilers.nvrtc(corpus.CORPUS_SOURCE))
    print("%-14s %14s %10s %14s %10s %9s %10s" % (
        "kernel", "thread-instr", "PTX ms", "instr/s", "numpy ms", "PTX/numpy", "dispatch"))
    for case in cases(args.scale):
        executed, ptx_s, numpy_s = measure(program, case)
        steps = executed / min(BATCH_LANES, _lanes(case))
        dispatch = fixed_cost_per_step(program, case) * steps / ptx_s
        print("%-14s %14d %10.1f %14.3g %10.2f %9.0f %9.0f%%" % (
            case[0], executed, ptx_s * 1000, executed / ptx_s, numpy_s * 1000,
            ptx_s / max(numpy_s, 1e-9), 100 * min(dispatch, 1.0)))
    print("\ndispatch: the share of the executor's time that is the fixed cost of "
          "each instruction\n(Python: decoding operands, scheduling, one numpy call "
          "each), measured as the\nsame kernel's time per instruction on one block; the "
          "rest is numpy's work per lane.")


def _lanes(case):
    _, _, grid, block, _, _ = case
    return grid[0] * grid[1] * grid[2] * block[0] * block[1] * block[2]


if __name__ == "__main__":
    main()
