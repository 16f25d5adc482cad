"""The examples' kernels, as PTX text, and the few helpers they share.

PTX is what every CUDA driver compiles for its own GPU when a module is
loaded, so these programs run unchanged on a machine with its own GPU and on
an OrionX vGPU (whose simulated GPUs execute PTX). The CUDA C they come
from is beside each kernel; NVRTC or ``nvcc --ptx`` would give the same
kernels for a program that compiles its own.
"""

import sys

from cuda.bindings import driver as cuda

PTX = rb"""
.version 7.0
.target sm_52
.address_size 64

// extern "C" __global__ void axpy_f32(float *y, const float *x,
//                                     unsigned long long n, float a)
// { unsigned long long i = blockIdx.x * blockDim.x + threadIdx.x;
//   if (i < n) y[i] = a * x[i] + y[i]; }
.visible .entry axpy_f32(
    .param .u64 axpy_f32_y,
    .param .u64 axpy_f32_x,
    .param .u64 axpy_f32_n,
    .param .f32 axpy_f32_a)
{
    .reg .pred %p<2>;
    .reg .f32 %f<5>;
    .reg .b32 %r<4>;
    .reg .b64 %rd<10>;

    ld.param.u64 %rd1, [axpy_f32_y];
    ld.param.u64 %rd2, [axpy_f32_x];
    ld.param.u64 %rd3, [axpy_f32_n];
    ld.param.f32 %f1, [axpy_f32_a];
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mov.u32 %r3, %tid.x;
    cvt.u64.u32 %rd4, %r3;
    mad.wide.u32 %rd4, %r1, %r2, %rd4;
    setp.ge.u64 %p1, %rd4, %rd3;
    @%p1 bra AXPY_DONE;
    shl.b64 %rd5, %rd4, 2;
    cvta.to.global.u64 %rd6, %rd2;
    add.s64 %rd7, %rd6, %rd5;
    ld.global.f32 %f2, [%rd7];
    cvta.to.global.u64 %rd8, %rd1;
    add.s64 %rd9, %rd8, %rd5;
    ld.global.f32 %f3, [%rd9];
    fma.rn.f32 %f4, %f1, %f2, %f3;
    st.global.f32 [%rd9], %f4;
AXPY_DONE:
    ret;
}

// extern "C" __global__ void gemm_f32(float *c, const float *a, const float *b,
//                                     unsigned m, unsigned n, unsigned k)
// { unsigned row = blockIdx.y * blockDim.y + threadIdx.y;
//   unsigned col = blockIdx.x * blockDim.x + threadIdx.x;
//   if (row >= m || col >= n) return;
//   float sum = 0;
//   for (unsigned i = 0; i < k; i++) sum += a[row * k + i] * b[i * n + col];
//   c[row * n + col] = sum; }
.visible .entry gemm_f32(
    .param .u64 gemm_f32_c,
    .param .u64 gemm_f32_a,
    .param .u64 gemm_f32_b,
    .param .u32 gemm_f32_m,
    .param .u32 gemm_f32_n,
    .param .u32 gemm_f32_k)
{
    .reg .pred %p<4>;
    .reg .f32 %f<4>;
    .reg .b32 %r<15>;
    .reg .b64 %rd<11>;

    ld.param.u64 %rd1, [gemm_f32_c];
    ld.param.u64 %rd2, [gemm_f32_a];
    ld.param.u64 %rd3, [gemm_f32_b];
    ld.param.u32 %r1, [gemm_f32_m];
    ld.param.u32 %r2, [gemm_f32_n];
    ld.param.u32 %r3, [gemm_f32_k];
    mov.u32 %r4, %ctaid.y;
    mov.u32 %r5, %ntid.y;
    mov.u32 %r6, %tid.y;
    mad.lo.s32 %r7, %r4, %r5, %r6;
    mov.u32 %r8, %ctaid.x;
    mov.u32 %r9, %ntid.x;
    mov.u32 %r10, %tid.x;
    mad.lo.s32 %r11, %r8, %r9, %r10;
    setp.ge.u32 %p1, %r7, %r1;
    setp.ge.u32 %p2, %r11, %r2;
    or.pred %p3, %p1, %p2;
    @%p3 bra GEMM_DONE;
    mul.lo.s32 %r12, %r7, %r3;
    mul.wide.u32 %rd4, %r12, 4;
    cvta.to.global.u64 %rd5, %rd2;
    add.s64 %rd5, %rd5, %rd4;
    mul.wide.u32 %rd6, %r11, 4;
    cvta.to.global.u64 %rd7, %rd3;
    add.s64 %rd7, %rd7, %rd6;
    mul.wide.u32 %rd8, %r2, 4;
    mov.f32 %f1, 0f00000000;
    mov.u32 %r13, 0;
    setp.eq.u32 %p1, %r3, 0;
    @%p1 bra GEMM_STORE;
GEMM_LOOP:
    ld.global.f32 %f2, [%rd5];
    ld.global.f32 %f3, [%rd7];
    fma.rn.f32 %f1, %f2, %f3, %f1;
    add.s64 %rd5, %rd5, 4;
    add.s64 %rd7, %rd7, %rd8;
    add.s32 %r13, %r13, 1;
    setp.lt.u32 %p2, %r13, %r3;
    @%p2 bra GEMM_LOOP;
GEMM_STORE:
    mad.lo.s32 %r14, %r7, %r2, %r11;
    mul.wide.u32 %rd9, %r14, 4;
    cvta.to.global.u64 %rd10, %rd1;
    add.s64 %rd10, %rd10, %rd9;
    st.global.f32 [%rd10], %f1;
GEMM_DONE:
    ret;
}
""" + b"\0"  # the driver reads PTX text up to its NUL


class CudaError(Exception):
    """A driver call failed; ``name`` is CUDA's name of its error."""

    def __init__(self, name):
        super().__init__(name)
        self.name = name


def check(result):
    """The values of a (CUresult, value...) tuple; CudaError on a failure."""
    err, *values = result
    if err != cuda.CUresult.CUDA_SUCCESS:
        _, name = cuda.cuGetErrorName(err)
        raise CudaError(name.decode() if name else str(int(err)))
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def load(*names):
    """(module, function per name) of the examples' PTX in the current context."""
    module = check(cuda.cuModuleLoadData(PTX))
    return (module, *(check(cuda.cuModuleGetFunction(module, name.encode()))
                      for name in names))


def run(main, *args):
    """Run ``main``; on a CUDA failure say which and exit with status 1."""
    try:
        return main(*args)
    except CudaError as exc:
        sys.exit("CUDA call failed: %s" % exc.name)
