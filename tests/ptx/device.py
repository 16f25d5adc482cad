"""The tests' view of a simulated GPU through the guest's CUDA API."""

import numpy as np


def ok(result):
    assert result[0] == 0, result
    return result[1] if len(result) == 2 else result[1:]


class Device:
    """The guest API with a PTX module loaded; buffers in and out as numpy arrays."""

    def __init__(self, cuda, ptx):
        self.cuda = cuda
        self.module = ok(cuda.cuModuleLoadData(ptx.encode()))

    def upload(self, array):
        dptr = ok(self.cuda.cuMemAlloc(max(array.nbytes, 1)))
        ok(self.cuda.cuMemcpyHtoD(dptr, np.ascontiguousarray(array), array.nbytes))
        return dptr

    def zeros(self, count, dtype):
        return self.upload(np.zeros(count, dtype=dtype))

    def download(self, dptr, count, dtype):
        out = np.empty(count, dtype=dtype)
        ok(self.cuda.cuMemcpyDtoH(out, dptr, out.nbytes))
        return out

    def launch(self, name, grid, block, args, shared_bytes=0, module=None):
        function = ok(self.cuda.cuModuleGetFunction(module or self.module, name.encode()))
        values = tuple(a[0] for a in args)
        types = tuple(a[1] for a in args)
        grid = grid if isinstance(grid, tuple) else (grid, 1, 1)
        block = block if isinstance(block, tuple) else (block, 1, 1)
        ok(self.cuda.cuLaunchKernel(function, *grid, *block, shared_bytes, 0,
                                    (values, types), 0))
        ok(self.cuda.cuCtxSynchronize())


def ptr(dptr):
    return (dptr, None)
