"""The built-in kernels as CUDA C, compiled once per GPU server with NVRTC.

Signatures match ``guest_runtime.builtin_kernels`` exactly (same parameter
order and types), so one guest program runs on the sim and cuda backends.
1-D kernels use grid-stride loops: any grid covers any n. axpy multiplies
and adds with ``__fmul_rn``/``__fadd_rn``, which the compiler may not fuse
into one fma: its results are then bit for bit those of the sim's numpy
path (tests/ptx/test_builtin_kernels.py runs this source on the sim's PTX
executor beside the numpy kernels).
"""

BUILTIN_KERNELS_SOURCE = r"""
extern "C" __global__ void fill_f32(float *out, unsigned long long n, float value)
{
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
         i < n; i += (unsigned long long)gridDim.x * blockDim.x)
        out[i] = value;
}

extern "C" __global__ void axpy_f32(float *y, const float *x, unsigned long long n, float a)
{
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
         i < n; i += (unsigned long long)gridDim.x * blockDim.x)
        y[i] = __fadd_rn(__fmul_rn(a, x[i]), y[i]);
}

extern "C" __global__ void scale_f32(float *x, unsigned long long n, float a)
{
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
         i < n; i += (unsigned long long)gridDim.x * blockDim.x)
        x[i] = a * x[i];
}

#define GEMM_TILE 16

/* C[m, n] = A[m, k] @ B[k, n], row-major; one 16x16 tile of C per block. */
extern "C" __global__ void gemm_f32(float *c, const float *a, const float *b,
                                    unsigned int m, unsigned int n, unsigned int k)
{
    __shared__ float a_tile[GEMM_TILE][GEMM_TILE];
    __shared__ float b_tile[GEMM_TILE][GEMM_TILE];
    unsigned int row = blockIdx.y * GEMM_TILE + threadIdx.y;
    unsigned int col = blockIdx.x * GEMM_TILE + threadIdx.x;
    float acc = 0.0f;
    for (unsigned int t = 0; t < k; t += GEMM_TILE) {
        unsigned int a_col = t + threadIdx.x, b_row = t + threadIdx.y;
        a_tile[threadIdx.y][threadIdx.x] =
            (row < m && a_col < k) ? a[(unsigned long long)row * k + a_col] : 0.0f;
        b_tile[threadIdx.y][threadIdx.x] =
            (b_row < k && col < n) ? b[(unsigned long long)b_row * n + col] : 0.0f;
        __syncthreads();
        for (unsigned int i = 0; i < GEMM_TILE; ++i)
            acc += a_tile[threadIdx.y][i] * b_tile[i][threadIdx.x];
        __syncthreads();
    }
    if (row < m && col < n)
        c[(unsigned long long)row * n + col] = acc;
}

#define SUM_THREADS 1024

/* out[0] = sum of x[0..n); one block of SUM_THREADS threads, tree reduction. */
extern "C" __global__ void sum_f32(float *out, const float *x, unsigned long long n)
{
    __shared__ float partial[SUM_THREADS];
    float acc = 0.0f;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x)
        acc += x[i];
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride)
            partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        out[0] = partial[0];
}
"""
