"""Run by test_cuda_runtime.py in a child process whose LD_LIBRARY_PATH puts
the OrionX libcuda.so.1 first: CuPy, unchanged (its CUDA runtime is static
inside its extension modules), on a 64 MB sim vGPU. Prints "PASSED"."""

import cupy as cp

QUOTA_BYTES = 64 << 20


def main():
    a = cp.arange(10, dtype=cp.float32)
    assert a.get().tolist() == list(range(10))
    # A reduction: CuPy runs CUB's precompiled kernels (a fatbinary whose only
    # PTX is for sm_120), which pick their tuning from the kernel attributes.
    assert float(a.sum()) == 45.0 and float((a * 2).max()) == 18.0
    mul_add = cp.ElementwiseKernel("float32 x, float32 y", "float32 z", "z = x * y + 1",
                                   "mul_add")
    assert mul_add(a, a).get().tolist() == [i * i + 1 for i in range(10)]
    twice = cp.RawKernel(r'''
    extern "C" __global__ void twice(const float *x, float *y, int n) {
        int i = blockDim.x * blockIdx.x + threadIdx.x;
        if (i < n) y[i] = 2 * x[i];
    }''', "twice")
    y = cp.empty_like(a)
    twice((1,), (32,), (a, y, cp.int32(10)))
    assert y.get().tolist() == [2 * i for i in range(10)]
    properties = cp.cuda.runtime.getDeviceProperties(0)
    assert b"vGPU" in properties["name"] and properties["totalGlobalMem"] == QUOTA_BYTES
    assert properties["canMapHostMemory"] == 0 and properties["managedMemory"] == 0
    free_bytes, total_bytes = cp.cuda.runtime.memGetInfo()
    assert total_bytes == QUOTA_BYTES and 0 < free_bytes < total_bytes
    try:
        cp.empty(QUOTA_BYTES, dtype=cp.uint8)  # more than is left of the quota
    except cp.cuda.memory.OutOfMemoryError:
        pass
    else:
        raise AssertionError("an allocation beyond the vGPU's quota succeeded")
    print("PASSED")


if __name__ == "__main__":
    main()
