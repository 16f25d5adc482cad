"""The built-in kernels exist once as CUDA C (what the cuda backend compiles);
that source, run by the sim's PTX executor, agrees with the sim's numpy path."""

import struct

import numpy as np
import pytest

from guest_runtime import protocol
from guest_runtime.builtin_kernels import KERNELS, launch_shape
from orionx_agent.server.cuda_kernels import BUILTIN_KERNELS_SOURCE
from tests.ptx import compilers

RNG = np.random.default_rng(4)


@pytest.fixture(scope="module")
def builtin_ptx():
    return compilers.nvrtc(BUILTIN_KERNELS_SOURCE).encode()


class TwoPaths:
    """One session with the built-in module (numpy) and the CUDA C module (PTX)."""

    def __init__(self, connection, ptx):
        self.connection = connection
        (self.numpy_module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
        (self.ptx_module,) = connection.module_load_data(buffer=ptx)

    def upload(self, array):
        (dptr,) = self.connection.mem_alloc(array.nbytes)
        self.connection.memcpy_htod(dptr, buffer=array.astype(np.float32).tobytes())
        return dptr

    def download(self, dptr, count):
        (data,) = self.connection.memcpy_dtoh(dptr, 4 * count, 0)
        return np.frombuffer(data, dtype=np.float32).copy()

    def run(self, name, values, inputs, output, count):
        """The output of kernel ``name`` on fresh copies of ``inputs``, per path."""
        results = []
        kernel = KERNELS[name]
        for module in (self.numpy_module, self.ptx_module):
            buffers = {param: self.upload(array) for param, array in inputs.items()}
            args = [buffers.get(param, values.get(param)) for param in kernel.param_names]
            (function,) = self.connection.module_get_function(module, buffer=name.encode())
            grid, block = launch_shape(name, values)
            self.connection.launch_kernel(function, *grid, *block, 0, 0,
                                          buffer=kernel.params.pack(*args))
            self.connection.ctx_synchronize()
            results.append(self.download(buffers[output], count))
        return results


@pytest.fixture
def paths(session, builtin_ptx):
    return TwoPaths(session(memory_mb=64), builtin_ptx)


def test_fill(paths):
    n = 3000
    numpy_out, ptx_out = paths.run("fill_f32", {"n": n, "value": 1.25},
                                   {"out": np.zeros(n)}, "out", n)
    np.testing.assert_array_equal(ptx_out, numpy_out)


def test_scale_and_axpy_agree_bit_for_bit(paths):
    n = 5000
    x, y = RNG.random(n, dtype=np.float32), RNG.random(n, dtype=np.float32)
    numpy_out, ptx_out = paths.run("scale_f32", {"n": n, "a": 0.3}, {"x": x}, "x", n)
    np.testing.assert_array_equal(ptx_out, numpy_out)
    numpy_out, ptx_out = paths.run("axpy_f32", {"n": n, "a": 1.7}, {"y": y, "x": x}, "y", n)
    np.testing.assert_array_equal(ptx_out, numpy_out)


def test_gemm(paths):
    m, n, k = 40, 24, 33
    a, b = RNG.random((m, k), dtype=np.float32), RNG.random((k, n), dtype=np.float32)
    numpy_out, ptx_out = paths.run("gemm_f32", {"m": m, "n": n, "k": k},
                                   {"c": np.zeros(m * n), "a": a.ravel(), "b": b.ravel()},
                                   "c", m * n)
    # Sums in another order: equal to the last bits.
    np.testing.assert_allclose(ptx_out, numpy_out, rtol=2e-6)


def test_sum(paths):
    n = 20_000
    x = RNG.random(n, dtype=np.float32)
    numpy_out, ptx_out = paths.run("sum_f32", {"n": n}, {"out": np.zeros(1), "x": x},
                                   "out", 1)
    np.testing.assert_allclose(ptx_out, numpy_out, rtol=1e-5)


def test_every_builtin_kernel_is_in_the_cuda_source(builtin_ptx):
    for name in KERNELS:
        assert (".entry %s(" % name).encode() in builtin_ptx


def test_parameter_layouts_match(builtin_ptx):
    from orionx_agent.server.ptx.executor import Program
    program = Program(builtin_ptx.decode())
    for name, kernel in KERNELS.items():
        assert program.functions[name].function.param_bytes == kernel.params.size
        offsets = [offset for _, _, offset, _ in program.param_layout(name)]
        packed = [struct.calcsize("<" + kernel.param_codes.replace("P", "Q")[:i])
                  for i in range(len(kernel.param_codes))]
        assert offsets == packed, name
