"""Run by test_cuda_bindings.py in a child whose LD_LIBRARY_PATH puts the
OrionX libcuda.so.1 first: NVIDIA's cuda.core, unchanged, sees the vGPU,
makes a stream, allocates and copies. Prints "PASSED" when every check held."""

import numpy as np
from cuda.bindings import driver

try:
    from cuda.core import Device
except ImportError:  # cuda.core before 1.0
    from cuda.core.experimental import Device


def main():
    device = Device(0)
    assert "vGPU" in device.name
    device.set_current()
    assert tuple(device.compute_capability) == (8, 0)
    stream = device.create_stream()
    source = device.allocate(4096, stream=stream)
    target = device.allocate(4096, stream=stream)
    host = np.arange(1024, dtype=np.float32)
    back = np.zeros_like(host)
    assert driver.cuMemcpyHtoD(int(source.handle), host.ctypes.data, host.nbytes)[0] == 0
    source.copy_to(target, stream=stream)
    stream.sync()
    assert driver.cuMemcpyDtoH(back.ctypes.data, int(target.handle), back.nbytes)[0] == 0
    assert (back == host).all()
    source.close(stream)
    target.close(stream)
    print("PASSED")


if __name__ == "__main__":
    main()
