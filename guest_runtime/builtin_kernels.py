"""Signatures of the built-in kernels that every OrionX backend serves.

A program gets them as a module by passing
:data:`guest_runtime.protocol.BUILTIN_MODULE_IMAGE` to ``cuModuleLoadData``
and looks each up by name with ``cuModuleGetFunction``. Parameters travel
packed with C's natural alignment (the layout of ``cuLaunchKernel``'s
``extra`` buffer); the orders below need no padding. Pointer parameters
(code ``P``) are device pointers, 8 bytes. All arrays are float32,
matrices row-major.
"""

import dataclasses
import struct


@dataclasses.dataclass(frozen=True)
class BuiltinKernel:
    name: str
    params: struct.Struct
    param_names: tuple
    param_codes: str
    doc: str

    def unpack(self, packed):
        """Parameter values of a packed buffer, by name."""
        return dict(zip(self.param_names, self.params.unpack(packed), strict=True))


def _kernel(name, spec, doc):
    names, codes = [], ""
    for item in spec.split():
        param, code = item.split(":")
        names.append(param)
        codes += code
    return BuiltinKernel(name, struct.Struct("<" + codes.replace("P", "Q")),
                         tuple(names), codes, doc)


KERNELS = {k.name: k for k in (
    _kernel("fill_f32", "out:P n:Q value:f", "out[i] = value for i < n"),
    _kernel("axpy_f32", "y:P x:P n:Q a:f", "y[i] = a * x[i] + y[i] for i < n"),
    _kernel("scale_f32", "x:P n:Q a:f", "x[i] = a * x[i] for i < n"),
    _kernel("gemm_f32", "c:P a:P b:P m:I n:I k:I",
            "C[m, n] = A[m, k] @ B[k, n], row-major"),
    _kernel("sum_f32", "out:P x:P n:Q", "out[0] = sum of x[i] for i < n"),
)}

# Launch shapes that cover each kernel's data on a real GPU (the simulated
# GPU ignores them): threads per block, and the tile edge of gemm.
THREADS_PER_BLOCK = 256
GEMM_TILE = 16
SUM_THREADS = 1024


def launch_shape(name, values):
    """((grid x, y, z), (block x, y, z)) for kernel ``name`` with ``values``."""
    if name == "gemm_f32":
        grid = ((values["n"] + GEMM_TILE - 1) // GEMM_TILE,
                (values["m"] + GEMM_TILE - 1) // GEMM_TILE, 1)
        return grid, (GEMM_TILE, GEMM_TILE, 1)
    if name == "sum_f32":
        return (1, 1, 1), (SUM_THREADS, 1, 1)
    blocks = max(1, min((values["n"] + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK, 65535))
    return (blocks, 1, 1), (THREADS_PER_BLOCK, 1, 1)
