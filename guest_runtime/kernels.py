"""The built-in kernels as Python functions on device pointers.

Each helper launches asynchronously on ``stream`` (0: the default stream)
and raises :class:`~guest_runtime.curesult.CudaError` if the launch cannot
even be sent; errors of the kernel itself surface at the next synchronising
call. Call ``cuda.cuInit(0)`` first. Arrays are float32, matrices row-major.
"""

from guest_runtime import protocol, runtime
from guest_runtime.builtin_kernels import KERNELS, launch_shape
from guest_runtime.curesult import CudaError, CUresult


def function(name):
    """Server-side handle of built-in kernel ``name`` in this connection
    (handles belong to a session, so they are kept on its connection)."""
    connection = runtime.current()
    if connection is None:
        raise CudaError(CUresult.CUDA_ERROR_NOT_INITIALIZED, "call cuda.cuInit(0) first")
    functions = connection.builtin_functions
    if name not in functions:
        if name not in KERNELS:
            raise CudaError(CUresult.CUDA_ERROR_NOT_FOUND,
                            "no built-in kernel %r; there are %s" % (name, ", ".join(KERNELS)))
        (module,) = connection.module_load_data(buffer=protocol.BUILTIN_MODULE_IMAGE)
        (functions[name],) = connection.module_get_function(module, buffer=name.encode())
    return functions[name]


def launch(name, stream=0, **values):
    """Launch built-in kernel ``name`` with its parameters by name."""
    kernel = KERNELS[name]
    params = kernel.params.pack(*(int(values[p]) if code == "P" else values[p]
                                  for p, code in zip(kernel.param_names, kernel.param_codes,
                                                     strict=True)))
    grid, block = launch_shape(name, values)
    runtime.current().launch_kernel(function(name), *grid, *block, 0, int(stream or 0),
                                    buffer=params)


def fill_f32(out, value, n, stream=0):
    """out[i] = value for i < n."""
    launch("fill_f32", stream, out=out, n=n, value=value)


def axpy_f32(y, x, n, a, stream=0):
    """y[i] = a * x[i] + y[i] for i < n."""
    launch("axpy_f32", stream, y=y, x=x, n=n, a=a)


def scale_f32(x, n, a, stream=0):
    """x[i] = a * x[i] for i < n."""
    launch("scale_f32", stream, x=x, n=n, a=a)


def gemm_f32(c, a, b, m, n, k, stream=0):
    """C[m, n] = A[m, k] @ B[k, n]."""
    launch("gemm_f32", stream, c=c, a=a, b=b, m=m, n=n, k=k)


def sum_f32(out, x, n, stream=0):
    """out[0] = sum of x[i] for i < n."""
    launch("sum_f32", stream, out=out, x=x, n=n)
