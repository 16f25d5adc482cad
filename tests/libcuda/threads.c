/* Threads, each with its own context stack, drive one device at once: the
 * process state is shared behind one lock, each thread's current context is
 * its own, and the session's wire carries one exchange at a time. */
#include <orionx/cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define THREADS 4
#define ROUNDS 50
#define WORDS 256

static int worker_failed[THREADS];

static void *worker(void *arg)
{
    int index = (int)(long)arg;
    CUcontext context, current;
    CUdeviceptr buffer;
    unsigned int host[WORDS], back[WORDS];
    if (cuCtxCreate(&context, 0, 0) != CUDA_SUCCESS
        || cuMemAlloc(&buffer, sizeof host) != CUDA_SUCCESS) {
        worker_failed[index] = 1;
        return NULL;
    }
    for (int round = 0; round < ROUNDS && !worker_failed[index]; round++) {
        for (int i = 0; i < WORDS; i++)
            host[i] = (unsigned)(index << 24 | round << 12 | i);
        memset(back, 0, sizeof back);
        if (cuMemcpyHtoD(buffer, host, sizeof host) != CUDA_SUCCESS
            || cuMemcpyDtoH(back, buffer, sizeof back) != CUDA_SUCCESS
            || memcmp(host, back, sizeof host) != 0
            || cuCtxGetCurrent(&current) != CUDA_SUCCESS || current != context)
            worker_failed[index] = 1;
    }
    if (cuMemFree(buffer) != CUDA_SUCCESS || cuCtxDestroy(context) != CUDA_SUCCESS)
        worker_failed[index] = 1;
    return NULL;
}

int main(void)
{
    if (cuInit(0) != CUDA_SUCCESS)
        return 2;
    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, worker, (void *)i);
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        failed += worker_failed[i];
    }
    CUcontext current = (CUcontext)1;
    cuCtxGetCurrent(&current);
    printf("%s\n", failed || current != NULL ? "FAILED" : "PASSED");
    return failed ? 1 : 0;
}
