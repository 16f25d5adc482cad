"""The built-in kernels on the simulated GPU, run with numpy.

Each kernel declares the device bytes each pointer parameter touches, so the
session checks every one against its memory map before the kernel runs: a
simulated kernel can never reach outside its session's allocations.
"""

import numpy as np

from guest_runtime.builtin_kernels import KERNELS

F32_BYTES = 4


def extents(name, values):
    """[(pointer parameter, bytes it spans)] of a launch of kernel ``name``."""
    n = values.get("n", 0)
    if name == "fill_f32":
        return [("out", F32_BYTES * n)]
    if name == "axpy_f32":
        return [("y", F32_BYTES * n), ("x", F32_BYTES * n)]
    if name == "scale_f32":
        return [("x", F32_BYTES * n)]
    if name == "gemm_f32":
        m, k = values["m"], values["k"]
        return [("c", F32_BYTES * m * n), ("a", F32_BYTES * m * k), ("b", F32_BYTES * k * n)]
    if name == "sum_f32":
        return [("out", F32_BYTES), ("x", F32_BYTES * n)]
    raise KeyError(name)


def run(name, values, f32_at):
    """Execute kernel ``name``; ``f32_at(dptr, count)`` is a float32 array view
    of device memory."""
    n = values.get("n", 0)
    if name == "fill_f32":
        f32_at(values["out"], n)[:] = values["value"]
    elif name == "axpy_f32":
        y = f32_at(values["y"], n)
        y += np.float32(values["a"]) * f32_at(values["x"], n)
    elif name == "scale_f32":
        x = f32_at(values["x"], n)
        x *= np.float32(values["a"])
    elif name == "gemm_f32":
        _gemm(values, f32_at)
    elif name == "sum_f32":
        f32_at(values["out"], 1)[0] = np.add.reduce(f32_at(values["x"], n), dtype=np.float32)
    else:
        raise KeyError(name)


def _gemm(values, f32_at):
    m, n, k = values["m"], values["n"], values["k"]
    a = f32_at(values["a"], m * k).reshape(m, k)
    b = f32_at(values["b"], k * n).reshape(k, n)
    c = f32_at(values["c"], m * n).reshape(m, n)
    if np.shares_memory(c, a) or np.shares_memory(c, b):
        c[:] = a @ b  # matmul cannot write into one of its inputs
    else:
        np.matmul(a, b, out=c)


assert set(KERNELS) == {"fill_f32", "axpy_f32", "scale_f32", "gemm_f32", "sum_f32"}
