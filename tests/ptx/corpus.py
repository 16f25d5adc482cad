"""CUDA C kernels the tests compile with NVRTC and run on the simulated GPU."""

CORPUS_SOURCE = r"""
#include <cuda_fp16.h>

extern "C" __global__ void vector_add(const float *a, const float *b, float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        c[i] = a[i] + b[i];
}

/* 64-bit sizes and a grid-stride loop: any grid covers any n. */
extern "C" __global__ void saxpy64(float *y, const float *x, float a, unsigned long long n)
{
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
         i < n; i += (unsigned long long)gridDim.x * blockDim.x)
        y[i] = a * x[i] + y[i];
}

/* One partial sum per block: a tree in dynamic shared memory. */
extern "C" __global__ void block_sum(const float *x, float *partial, int n)
{
    extern __shared__ float scratch[];
    unsigned int t = threadIdx.x;
    float acc = 0.0f;
    for (int i = blockIdx.x * blockDim.x + t; i < n; i += blockDim.x * gridDim.x)
        acc += x[i];
    scratch[t] = acc;
    __syncthreads();
    for (unsigned int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride)
            scratch[t] += scratch[t + stride];
        __syncthreads();
    }
    if (t == 0)
        partial[blockIdx.x] = scratch[0];
}

/* Warp sums with shuffles, one atomic per warp. */
extern "C" __global__ void warp_sum(const int *x, int *total, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int v = i < n ? x[i] : 0;
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, offset);
    if ((threadIdx.x & 31) == 0)
        atomicAdd(total, v);
}

/* A histogram in shared memory, merged into global bins with atomics. */
extern "C" __global__ void histogram(const unsigned char *data, unsigned int *bins, int n)
{
    __shared__ unsigned int local[64];
    for (int b = threadIdx.x; b < 64; b += blockDim.x)
        local[b] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        atomicAdd(&local[data[i] & 63], 1u);
    __syncthreads();
    for (int b = threadIdx.x; b < 64; b += blockDim.x)
        atomicAdd(&bins[b], local[b]);
}

#define TILE 16
/* C[m, n] = A[m, k] @ B[k, n], row-major, in 16x16 shared tiles. */
extern "C" __global__ void tiled_matmul(const float *a, const float *b, float *c,
                                        int m, int n, int k)
{
    __shared__ float as[TILE][TILE];
    __shared__ float bs[TILE][TILE];
    int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;
    for (int t = 0; t < k; t += TILE) {
        as[threadIdx.y][threadIdx.x] = (row < m && t + threadIdx.x < k) ?
            a[row * k + t + threadIdx.x] : 0.0f;
        bs[threadIdx.y][threadIdx.x] = (t + threadIdx.y < k && col < n) ?
            b[(t + threadIdx.y) * n + col] : 0.0f;
        __syncthreads();
        for (int i = 0; i < TILE; ++i)
            acc += as[threadIdx.y][i] * bs[i][threadIdx.x];
        __syncthreads();
    }
    if (row < m && col < n)
        c[row * n + col] = acc;
}

/* Each thread loops a data-dependent number of times (Collatz steps),
   with a break and a continue: divergent loops that must reconverge. */
extern "C" __global__ void collatz_steps(const unsigned int *start, int *steps, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    unsigned long long v = start[i];
    int count = 0;
    while (v != 1) {
        if (count > 1000)
            break;
        ++count;
        if (v & 1) {
            v = 3 * v + 1;
            continue;
        }
        v >>= 1;
    }
    steps[i] = (i % 3 == 0) ? -count : count;
}

/* clock() and clock64() move forward within a thread. */
extern "C" __global__ void clock_ticks(long long *elapsed, float *sink)
{
    long long t0 = clock64();
    unsigned int c0 = clock();
    float acc = 0.0f;
    for (int i = 0; i < 100; ++i)
        acc = acc * 0.5f + i;
    sink[threadIdx.x] = acc;
    unsigned int c1 = clock();
    elapsed[2 * threadIdx.x] = clock64() - t0;
    elapsed[2 * threadIdx.x + 1] = (long long)(c1 - c0);
}

__device__ __noinline__ float poly(float x, float a, float b)
{
    return a * x * x + b * x + 1.0f;
}

__device__ __noinline__ int clamp_index(int i, int n)
{
    if (i < 0)
        return 0;
    return i < n ? i : n - 1;
}

/* Calls to device functions, one of them from divergent code. */
extern "C" __global__ void device_calls(const float *x, float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float v = x[clamp_index(i - 1, n)];
    y[i] = (i & 1) ? poly(v, 2.0f, -1.0f) : v;
}

/* __half arithmetic and conversions, and bf16 round trips. */
#include <cuda_bf16.h>
extern "C" __global__ void half_math(const __half *a, const __half *b, __half *out,
                                     float *as_float, __nv_bfloat16 *as_bf16, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    __half r = __hfma(a[i], b[i], __float2half(0.25f));
    out[i] = __hadd(r, __hneg(b[i]));
    as_float[i] = __half2float(a[i]) * 2.0f;
    as_bf16[i] = __float2bfloat16(__half2float(a[i]) / 3.0f);
}
"""


# Kernels that exercise what NVRTC emits beyond the corpus: parameters by
# value, local arrays, warp votes and matches, atomics of every kind, the
# libdevice math functions (f32 and f64, carry arithmetic and tables in
# .global memory among them) and 64-bit integer operations.
MORE_SOURCE = r"""
#include <cuda_fp16.h>
#include <cuda_bf16.h>
/* sm_80 asynchronous copies to shared memory, as cuda_pipeline.h issues
   them; thread 5 asks for 8 of its 16 bytes (the rest are zeros). */
extern "C" __global__ void staged(const float4 *in, float *out, int n) {
  __shared__ float4 tile[64];
  int t = threadIdx.x;
  unsigned dst = (unsigned)__cvta_generic_to_shared(&tile[t]);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst),
               "l"(&in[blockIdx.x * 64 + t]), "r"(t == 5 ? 8 : 16));
  asm volatile("cp.async.commit_group;\n" ::);
  asm volatile("cp.async.wait_group 0;\n" ::);
  __syncthreads();
  float4 v = tile[63 - t];
  out[blockIdx.x * 64 + t] = v.x + v.y + v.z + v.w;
}
struct Eight { float v[8]; };
/* The callee gets a pointer into its caller's local copy of a parameter. */
__device__ __noinline__ float total(const Eight *e) {
  float s = 0.0f;
  for (int k = 0; k < 8; ++k) s += e->v[k];
  return s;
}
extern "C" __global__ void pointer_to_parameter(Eight e, float *out, int which) {
  const float *p = which ? e.v : out;
  out[threadIdx.x] = total(&e) + p[threadIdx.x & 7];
}
__constant__ float COEFFICIENTS[4] = {0.5f, -1.25f, 2.0f, 3.0f};
__device__ int launches_seen;  /* a module .global variable, kept between launches */
extern "C" __global__ void polynomial(const float *x, float *out, int *seen, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i == 0) *seen = atomicAdd(&launches_seen, 1);
  if (i < n) {
    float v = x[i], acc = 0.0f;
    for (int k = 3; k >= 0; --k)
      acc = acc * v + COEFFICIENTS[k];
    out[i] = acc;
  }
}
extern "C" __global__ void block_votes(const int *x, int *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int v = i < n ? x[i] : 0;
  int count = __syncthreads_count(v > 0);
  int all = __syncthreads_and(v > -5);
  int any = __syncthreads_or(v > 8);
  if (i < n) out[i] = count + 1000 * all + 10000 * any;
}
extern "C" __global__ void h2(const __half2 *a, const __half2 *b, __half2 *c, float *f, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  __half2 r = __hfma2(a[i], b[i], __floats2half2_rn(0.5f, -1.0f));
  r = __hmax2(r, __hneg2(a[i]));
  c[i] = __hadd2(r, __halves2half2(__low2half(a[i]), __high2half(b[i])));
  f[i] = __low2float(r) + __high2float(r) + __half2float(hexp(__low2half(a[i])));
}
extern "C" __global__ void b2(const __nv_bfloat162 *a, __nv_bfloat162 *c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = __hmul2(a[i], a[i]);
}
extern "C" __global__ void half_compare(const __half *a, const __half *b, int *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    out[i] = __hlt(a[i], b[i]) | (__hge(a[i], b[i]) << 1) | (__heq(a[i], b[i]) << 2)
             | (__hisnan(a[i]) << 3);
}
struct Pair { float scale; int offset; };
extern "C" __global__ void by_value(float *out, Pair p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = p.scale * i + p.offset;
}
extern "C" __global__ void local_array(const int *in, int *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int buf[16];
  for (int k = 0; k < 16; ++k) buf[k] = in[(i + k) % n] * k;
  int acc = 0;
  for (int k = 0; k < 16; ++k) acc += buf[(k * 7 + i) & 15];
  if (i < n) out[i] = acc;
}
extern "C" __global__ void votes(const int *in, unsigned *ballots, int *flags, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int v = i < n ? in[i] : 0;
  unsigned b = __ballot_sync(0xffffffffu, v > 0);
  int all = __all_sync(0xffffffffu, v > -100);
  int any = __any_sync(0xffffffffu, v > 50);
  unsigned same = __match_any_sync(0xffffffffu, v & 3);
  if (i < n) { ballots[i] = b; flags[i] = all | (any << 1); ballots[n + i] = same; }
  int x = __shfl_xor_sync(0xffffffffu, v, 1);
  int y = __shfl_sync(0xffffffffu, v, 3);
  int z = __shfl_up_sync(0xffffffffu, v, 2);
  if (i < n) flags[n + i] = x + 1000 * (y & 7) + 100000 * (z & 3);
}
__device__ float atomicMaxFloat(float *addr, float value) {
  int *a = (int *)addr; int old = *a, assumed;
  do { assumed = old; if (__int_as_float(assumed) >= value) break;
       old = atomicCAS(a, assumed, __float_as_int(value)); } while (assumed != old);
  return __int_as_float(old);
}
extern "C" __global__ void atomics(const float *x, float *fmax, unsigned long long *sum64,
                                   unsigned *counter, int *exch, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  atomicMaxFloat(fmax, x[i]);
  atomicAdd(sum64, (unsigned long long)(x[i] * 1000.0f));
  atomicInc(counter, 1000000u);
  atomicExch(exch, i);
  atomicMin(exch + 1, -i);
  atomicOr((int *)(exch + 2), 1 << (i & 31));
}
extern "C" __global__ void mathf(const float *x, float *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = x[i];
  out[6*i+0] = expf(v); out[6*i+1] = sinf(v); out[6*i+2] = sqrtf(v);
  out[6*i+3] = rsqrtf(v); out[6*i+4] = logf(v); out[6*i+5] = tanhf(v) + powf(v, 1.5f);
}
extern "C" __global__ void mathd(const double *x, double *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double v = x[i];
  out[4*i+0] = exp(v); out[4*i+1] = sqrt(v); out[4*i+2] = log(v); out[4*i+3] = sin(v);
}
extern "C" __global__ void intops(const unsigned long long *a, const unsigned long long *b,
                                  unsigned long long *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned long long x = a[i], y = b[i] | 1;
  out[8*i+0] = x / y; out[8*i+1] = x % y; out[8*i+2] = (long long)x / (long long)y;
  out[8*i+3] = __popcll(x) + __clzll(y) * 100; out[8*i+4] = __brevll(x);
  out[8*i+5] = __byte_perm((unsigned)x, (unsigned)y, 0x5140); out[8*i+6] = __ffsll(x);
  out[8*i+7] = __umul64hi(x, y);
}
"""
