"""The tests' view of a simulated GPU through NVIDIA's driver bindings
(the ``cuda`` fixture): buffers in and out as numpy arrays."""

import ctypes

import numpy as np

from tests.libcuda.bindings_client import extra_buffer


def ok(result):
    assert result[0] == 0, result
    return result[1] if len(result) == 2 else result[1:]


class Device:
    """A PTX module loaded in the current context, and what the test
    allocates; ``close`` frees it all (the session outlives the test)."""

    def __init__(self, cuda, ptx):
        self.cuda = cuda
        self.allocations = []
        self.modules = []
        self.module = self.load(ptx)

    def load(self, ptx):
        module = ok(self.cuda.cuModuleLoadData(ptx.encode()))
        self.modules.append(module)
        return module

    def upload(self, array):
        array = np.ascontiguousarray(array)
        dptr = ok(self.cuda.cuMemAlloc(max(array.nbytes, 1)))
        self.allocations.append(dptr)
        ok(self.cuda.cuMemcpyHtoD(dptr, array.ctypes.data, array.nbytes))
        return dptr

    def zeros(self, count, dtype):
        return self.upload(np.zeros(count, dtype=dtype))

    def download(self, dptr, count, dtype):
        out = np.empty(count, dtype=dtype)
        ok(self.cuda.cuMemcpyDtoH(out.ctypes.data, dptr, out.nbytes))
        return out

    def launch(self, name, grid, block, args, shared_bytes=0, module=None):
        function = ok(self.cuda.cuModuleGetFunction(module or self.module, name.encode()))
        values = tuple(a[0] for a in args)
        types = tuple(a[1] for a in args)
        grid = grid if isinstance(grid, tuple) else (grid, 1, 1)
        block = block if isinstance(block, tuple) else (block, 1, 1)
        if any(isinstance(t, type) and issubclass(t, ctypes.Structure) for t in types):
            # The bindings' (values, types) form packs scalars and pointers
            # only; a struct by value goes as a CUDA C program passes it,
            # in a void* array of the arguments' addresses.
            held = [ctypes.c_void_p(int(v)) if t is None
                    else v if isinstance(v, ctypes.Structure) else t(v)
                    for v, t in zip(values, types, strict=True)]
            pointers = (ctypes.c_void_p * len(held))(*(ctypes.addressof(h) for h in held))
            params = ctypes.addressof(pointers)
        else:
            params = (values, types)
        ok(self.cuda.cuLaunchKernel(function, *grid, *block, shared_bytes, 0, params, 0))
        ok(self.cuda.cuCtxSynchronize())

    def launch_packed(self, function, grid, block, params):
        """Launch FUNCTION with its parameters packed already (bytes), as
        cuLaunchKernel's ``extra`` buffer."""
        extra, keep = extra_buffer(params)
        ok(self.cuda.cuLaunchKernel(function, *grid, *block, 0, 0, 0, ctypes.addressof(extra)))
        del keep
        ok(self.cuda.cuCtxSynchronize())

    def close(self):
        for dptr in self.allocations:
            ok(self.cuda.cuMemFree(dptr))
        for module in self.modules:
            ok(self.cuda.cuModuleUnload(module))


def ptr(dptr):
    return (dptr, None)
