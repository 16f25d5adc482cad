"""Run by test_cuda_bindings.py in a child whose LD_LIBRARY_PATH puts the
OrionX libcuda.so.1 first: Numba CUDA, unchanged, sees the vGPU, its name
and memory, copies arrays to and from it, and compiles and launches a
kernel (cuLink*, cuLibraryLoadData, cuKernelGetParamInfo and
cuLaunchKernelEx underneath) that runs on the sim's PTX executor. Prints
"PASSED"."""

import numpy as np
from numba import cuda


@cuda.jit
def axpy(out, a, x, y):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a * x[i] + y[i]


def main():
    assert cuda.is_available()
    device = cuda.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else device.name
    assert "vGPU" in name, name
    free_bytes, total_bytes = cuda.current_context().get_memory_info()
    assert total_bytes == 64 << 20 and free_bytes <= total_bytes
    host = np.arange(4096, dtype=np.float32)
    on_device = cuda.to_device(host)
    assert (on_device.copy_to_host() == host).all()
    out = cuda.device_array_like(host)
    axpy[16, 256](out, np.float32(3.0), on_device, cuda.to_device(np.ones_like(host)))
    cuda.synchronize()
    assert (out.copy_to_host() == 3 * host + 1).all()
    print("PASSED")


if __name__ == "__main__":
    main()
