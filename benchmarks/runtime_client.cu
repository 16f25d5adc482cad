// The CUDA runtime over the OrionX libcuda.so.1, beside the driver API in
// the same process (benchmarks/runtime.py builds and runs it). Modes:
//   start-runtime            seconds of the first cudaFree(0): the runtime
//                            starts (its driver queries, tables, context)
//   start-driver             seconds of cuInit, a primary context made
//                            current and one cuCtxSynchronize: the driver
//                            API's own start, the baseline
//   launch COUNT             launches/s of an empty kernel: <<<>>> through
//                            the runtime, then cuLaunchKernel of the same
//                            function, each COUNT launches then a sync
//   copy COUNT               microseconds per 4-byte cudaMemcpy to the
//                            device and back, then per cuMemcpyHtoD/DtoH
// Each mode prints its figures on one line.
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                     \
    do {                                                                                \
        int status_ = (int)(call);                                                      \
        if (status_ != 0) {                                                             \
            fprintf(stderr, "%s failed: %d\n", #call, status_);                          \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

__global__ void empty(void) {}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int count = argc > 2 ? atoi(argv[2]) : 1000;
    if (strcmp(mode, "start-driver") == 0) {
        double start = now_s();
        CUcontext context;
        CHECK(cuInit(0));
        CHECK(cuDevicePrimaryCtxRetain(&context, 0));
        CHECK(cuCtxSetCurrent(context));
        CHECK(cuCtxSynchronize());
        printf("%.6f\n", now_s() - start);
        return 0;
    }
    double start = now_s();
    CHECK(cudaFree(0));
    double started_s = now_s() - start;
    if (strcmp(mode, "start-runtime") == 0) {
        printf("%.6f\n", started_s);
        return 0;
    }
    if (strcmp(mode, "launch") == 0) {
        cudaFunction_t function;
        CHECK(cudaGetFuncBySymbol(&function, (const void *)empty));
        empty<<<1, 1>>>();  // loads the module on the device first
        CHECK(cudaDeviceSynchronize());
        start = now_s();
        for (int i = 0; i < count; i++)
            empty<<<1, 1>>>();
        CHECK(cudaDeviceSynchronize());
        double runtime_s = now_s() - start;
        start = now_s();
        for (int i = 0; i < count; i++)
            CHECK(cuLaunchKernel((CUfunction)function, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
        CHECK(cuCtxSynchronize());
        double driver_s = now_s() - start;
        printf("%.1f %.1f\n", count / runtime_s, count / driver_s);
        return 0;
    }
    if (strcmp(mode, "copy") == 0) {
        int *device_int, value = 7;
        CHECK(cudaMalloc(&device_int, sizeof value));
        start = now_s();
        for (int i = 0; i < count; i++) {
            CHECK(cudaMemcpy(device_int, &value, sizeof value, cudaMemcpyHostToDevice));
            CHECK(cudaMemcpy(&value, device_int, sizeof value, cudaMemcpyDeviceToHost));
        }
        double runtime_s = now_s() - start;
        start = now_s();
        for (int i = 0; i < count; i++) {
            CHECK(cuMemcpyHtoD((CUdeviceptr)device_int, &value, sizeof value));
            CHECK(cuMemcpyDtoH(&value, (CUdeviceptr)device_int, sizeof value));
        }
        double driver_s = now_s() - start;
        printf("%.2f %.2f\n", runtime_s / count * 1e6, driver_s / count * 1e6);
        return 0;
    }
    fprintf(stderr, "usage: runtime_client start-runtime | start-driver | launch COUNT | "
                    "copy COUNT\n");
    return 2;
}
