"""Run by test_cuda_bindings.py in a child whose LD_LIBRARY_PATH puts the
OrionX libcuda.so.1 first: Numba CUDA, unchanged, sees the vGPU, its name
and memory, and copies arrays to and from it. Prints "PASSED"."""

import numpy as np
from numba import cuda


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
    print("PASSED")


if __name__ == "__main__":
    main()
