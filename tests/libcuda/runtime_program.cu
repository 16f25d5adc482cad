// A plain CUDA runtime program, built by test_cuda_runtime.py with nvcc and
// run unchanged under orionx-run: a kernel launched with <<<>>> and with
// cudaLaunchKernel, copies, a stream, events and the error path; with two
// devices, the same kernel on the second after a peer copy. Prints
// "PASSED" and exits 0 when every check held.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                  \
    do {                                                                             \
        cudaError_t status_ = (call);                                                \
        if (status_ != cudaSuccess) {                                                \
            fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, #call,\
                    cudaGetErrorName(status_), cudaGetErrorString(status_));         \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

__global__ void scale_add(float *y, const float *x, float a, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}

__device__ int launches;

__global__ void count_launch(void)
{
    if (threadIdx.x == 0 && blockIdx.x == 0)
        atomicAdd(&launches, 1);
}

int main(void)
{
    const int n = 1 << 14;
    size_t bytes = n * sizeof(float);
    int devices = 0;
    CHECK(cudaGetDeviceCount(&devices));
    cudaDeviceProp properties;
    CHECK(cudaGetDeviceProperties(&properties, 0));
    printf("device 0 of %d: %s, %zu MB, compute %d.%d\n", devices, properties.name,
           properties.totalGlobalMem >> 20, properties.major, properties.minor);
    fflush(stdout);

    float *host = (float *)malloc(bytes), *back = (float *)malloc(bytes);
    for (int i = 0; i < n; i++)
        host[i] = (float)i;
    float *x, *y;
    CHECK(cudaMalloc(&x, bytes));
    CHECK(cudaMalloc(&y, bytes));
    CHECK(cudaMemcpy(x, host, bytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemset(y, 0, bytes));

    cudaStream_t stream;
    cudaEvent_t start, stop;
    CHECK(cudaStreamCreate(&stream));
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    CHECK(cudaEventRecord(start, stream));
    scale_add<<<(n + 255) / 256, 256, 0, stream>>>(y, x, 2.0f, n);  // y = 2x
    CHECK(cudaGetLastError());
    float a = 1.0f;
    int count = n;
    void *args[] = {&y, &x, &a, &count};
    CHECK(cudaLaunchKernel((const void *)scale_add, dim3((n + 255) / 256), dim3(256), args, 0,
                           stream));  // y = 3x
    count_launch<<<1, 32, 0, stream>>>();
    count_launch<<<1, 32, 0, stream>>>();
    CHECK(cudaEventRecord(stop, stream));
    CHECK(cudaEventSynchronize(stop));
    float elapsed_ms = -1;
    CHECK(cudaEventElapsedTime(&elapsed_ms, start, stop));
    CHECK(cudaMemcpyAsync(back, y, bytes, cudaMemcpyDeviceToHost, stream));
    CHECK(cudaStreamSynchronize(stream));
    for (int i = 0; i < n; i++) {
        if (back[i] != 3.0f * host[i]) {
            fprintf(stderr, "y[%d] = %g, expected %g\n", i, back[i], 3.0f * host[i]);
            return 1;
        }
    }
    int counted = 0;
    CHECK(cudaMemcpyFromSymbol(&counted, launches, sizeof counted));
    if (counted != 2) {
        fprintf(stderr, "launches = %d, expected 2\n", counted);
        return 1;
    }
    // A launch the GPU cannot take fails at once: runtime 12.9 checks the
    // shape itself (invalid configuration), 13.x passes on the driver's
    // answer (invalid value), as on a local GPU.
    scale_add<<<1, 4096>>>(y, x, 1.0f, n);
    cudaError_t refused = cudaGetLastError();
    if (refused != cudaErrorInvalidConfiguration && refused != cudaErrorInvalidValue) {
        fprintf(stderr, "a 4096-thread block gave %s\n", cudaGetErrorName(refused));
        return 1;
    }
    if (devices > 1) {
        // The same registered kernel on the second device, fed by a peer copy.
        float *x1, *y1;
        CHECK(cudaSetDevice(1));
        CHECK(cudaMalloc(&x1, bytes));
        CHECK(cudaMalloc(&y1, bytes));
        CHECK(cudaMemcpyPeer(x1, 1, x, 0, bytes));
        CHECK(cudaMemset(y1, 0, bytes));
        scale_add<<<(n + 255) / 256, 256>>>(y1, x1, 5.0f, n);
        CHECK(cudaGetLastError());
        CHECK(cudaMemcpy(back, y1, bytes, cudaMemcpyDeviceToHost));
        for (int i = 0; i < n; i++) {
            if (back[i] != 5.0f * host[i]) {
                fprintf(stderr, "device 1: y[%d] = %g, expected %g\n", i, back[i],
                        5.0f * host[i]);
                return 1;
            }
        }
        CHECK(cudaFree(x1));
        CHECK(cudaFree(y1));
        CHECK(cudaSetDevice(0));
        printf("device 1 ran the kernel too\n");
    }
    CHECK(cudaFree(x));
    CHECK(cudaFree(y));
    CHECK(cudaStreamDestroy(stream));
    free(host);
    free(back);
    printf("elapsed %.3f ms\nPASSED\n", elapsed_ms);
    return 0;
}
