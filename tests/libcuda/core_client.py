"""Run by test_cuda_bindings.py in a child whose LD_LIBRARY_PATH puts the
OrionX libcuda.so.1 first: NVIDIA's cuda.core, unchanged, sees the vGPU,
makes a stream, allocates and copies, compiles a kernel with NVRTC and
launches it (cuLibraryLoadData, cuKernelGetParamInfo, cuLaunchKernelEx
underneath) on the sim's PTX executor. Prints "PASSED" when every check
held."""

import numpy as np
from cuda.bindings import driver

try:
    from cuda.core import Device, LaunchConfig, Program, ProgramOptions, launch
except ImportError:  # cuda.core before 1.0
    from cuda.core.experimental import Device, LaunchConfig, Program, ProgramOptions, launch

SAXPY = r"""
extern "C" __global__ void saxpy(float a, const float *x, float *y, unsigned long long n)
{
    unsigned long long i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}
"""


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

    # y = 2 x + y, compiled by NVRTC and launched through cuda.core.
    options = ProgramOptions(arch="compute_%s%s" % tuple(device.compute_capability))
    kernel = Program(SAXPY, "c++", options=options).compile("ptx").get_kernel("saxpy")
    assert kernel.num_arguments == 4
    # Attributes and occupancy as the sim reports them (2048 threads and 64 KB
    # of shared memory per multiprocessor, 48 KB per block, no registers).
    attributes = kernel.attributes
    assert attributes.max_threads_per_block == 1024 and attributes.num_regs == 0
    assert attributes.ptx_version >= 80 and attributes.shared_size_bytes == 0
    occupancy = kernel.occupancy
    assert occupancy.max_active_blocks_per_multiprocessor(256, 0) == 8
    assert tuple(occupancy.max_potential_block_size(0, 0)) == (32, 1024)
    assert occupancy.available_dynamic_shared_memory_per_block(2, 256) == 32768
    assert occupancy.available_dynamic_shared_memory_per_block(1, 256) == 48 << 10
    assert occupancy.available_dynamic_shared_memory_per_block(9, 256) == 0
    ones = np.ones_like(host)
    assert driver.cuMemcpyHtoD(int(target.handle), ones.ctypes.data, ones.nbytes)[0] == 0
    launch(stream, LaunchConfig(grid=4, block=256), kernel, np.float32(2.0), source, target,
           np.uint64(host.size))
    stream.sync()
    assert driver.cuMemcpyDtoH(back.ctypes.data, int(target.handle), back.nbytes)[0] == 0
    assert (back == 2 * host + 1).all(), back[:4]
    source.close(stream)
    target.close(stream)
    print("PASSED")


if __name__ == "__main__":
    main()
