/* A plain C program using the driver API through the OrionX library's own
 * header: the test compiles it with cc, runs it against a sim GPU server and
 * reads its "ok" lines. Any unexpected result prints "FAIL" and exits 1. */
#include <orionx/cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1024

static int failures;

static void expect(CUresult got, CUresult wanted, const char *what)
{
    if (got == wanted) {
        printf("ok %s\n", what);
        return;
    }
    const char *name = NULL;
    cuGetErrorName(got, &name);
    printf("FAIL %s: got %d (%s), wanted %d\n", what, (int)got, name ? name : "?", (int)wanted);
    failures++;
}

static void check(int condition, const char *what)
{
    printf("%s %s\n", condition ? "ok" : "FAIL", what);
    failures += !condition;
}

/* The parameters of the built-in fill_f32(out, n, value), packed without
 * padding: 20 bytes. */
/* Two relocatable PTX inputs for cuLink*: add7 calls seven, defined in the other. */
static const char link_library[] =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .func (.param .b32 r) seven(.param .b32 x)\n"
    "{\n.reg .f32 %f<3>;\nld.param.f32 %f1, [x];\nadd.f32 %f2, %f1, 0f40E00000;\n"
    "st.param.f32 [r], %f2;\nret;\n}\n";
static const char link_kernel[] =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".extern .func (.param .b32 r) seven(.param .b32 x);\n"
    ".visible .entry add7(.param .u64 p)\n"
    "{\n.reg .f32 %f<3>;\n.reg .b32 %r<2>;\n.reg .b64 %rd<5>;\n"
    "ld.param.u64 %rd1, [p];\ncvta.to.global.u64 %rd2, %rd1;\nmov.u32 %r1, %tid.x;\n"
    "mul.wide.u32 %rd3, %r1, 4;\nadd.s64 %rd4, %rd2, %rd3;\nld.global.f32 %f1, [%rd4];\n"
    "{\n.param .b32 a;\nst.param.f32 [a], %f1;\n.param .b32 v;\n"
    "call.uni (v), seven, (a);\nld.param.f32 %f2, [v];\n}\n"
    "st.global.f32 [%rd4], %f2;\nret;\n}\n";

/* A module with a __device__ variable, for cuModuleGetGlobal. */
static const char variable_module[] =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .global .align 4 .u32 counter = 5;\n"
    ".visible .entry bump()\n{\n.reg .u32 %r<3>;\nld.global.u32 %r1, [counter];\n"
    "add.u32 %r2, %r1, 1;\nst.global.u32 [counter], %r2;\nret;\n}\n";

static int host_calls;
static CUresult callback_status = (CUresult)-1;

static void count_host_call(void *user_data)
{
    host_calls += *(int *)user_data;
}

static void stream_callback(CUstream stream, CUresult status, void *user_data)
{
    (void)stream;
    callback_status = status;
    host_calls += *(int *)user_data;
}

static void pack_fill(unsigned char *buffer, CUdeviceptr out, unsigned long long n, float value)
{
    memcpy(buffer, &out, 8);
    memcpy(buffer + 8, &n, 8);
    memcpy(buffer + 16, &value, 4);
}

int main(void)
{
    CUdevice device;
    CUcontext context, current;
    expect(cuMemAlloc(NULL, 4), CUDA_ERROR_NOT_INITIALIZED, "calls before cuInit");
    expect(cuInit(0), CUDA_SUCCESS, "cuInit");
    int count = 0, version = 0;
    expect(cuDeviceGetCount(&count), CUDA_SUCCESS, "cuDeviceGetCount");
    check(count == 1, "one device");
    expect(cuDriverGetVersion(&version), CUDA_SUCCESS, "cuDriverGetVersion");
    check(version >= 12000, "a CUDA 12 or later driver version");
    expect(cuDeviceGet(&device, 0), CUDA_SUCCESS, "cuDeviceGet");
    expect(cuDeviceGet(&device, 5), CUDA_ERROR_INVALID_DEVICE, "cuDeviceGet past the count");
    device = 0;
    char name[128];
    expect(cuDeviceGetName(name, sizeof name, device), CUDA_SUCCESS, "cuDeviceGetName");
    check(strstr(name, "vGPU") != NULL, "the name names the vGPU");
    size_t total = 0;
    expect(cuDeviceTotalMem(&total, device), CUDA_SUCCESS, "cuDeviceTotalMem");
    check(total == 64u << 20, "total memory is the vGPU's 64 MB quota");
    int warp = 0;
    expect(cuDeviceGetAttribute(&warp, CU_DEVICE_ATTRIBUTE_WARP_SIZE, device), CUDA_SUCCESS,
           "cuDeviceGetAttribute");
    check(warp == 32, "warp size 32");
    int managed = 1, pools = 0;
    expect(cuDeviceGetAttribute(&managed, CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, device),
           CUDA_SUCCESS, "cuDeviceGetAttribute of a feature not remoted");
    check(managed == 0, "managed memory is not offered");
    expect(cuDeviceGetAttribute(&pools, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, device),
           CUDA_SUCCESS, "cuDeviceGetAttribute of a feature the library serves");
    check(pools == 1, "memory pools are offered");

    expect(cuMemAlloc(NULL, 4), CUDA_ERROR_INVALID_CONTEXT, "cuMemAlloc without a context");
    expect(cuCtxCreate(&context, 0, device), CUDA_SUCCESS, "cuCtxCreate");
    expect(cuCtxGetCurrent(&current), CUDA_SUCCESS, "cuCtxGetCurrent");
    check(current == context, "the new context is current");

    CUdeviceptr a, b;
    size_t bytes = N * sizeof(float);
    expect(cuMemAlloc(&a, bytes), CUDA_SUCCESS, "cuMemAlloc a");
    expect(cuMemAlloc(&b, bytes), CUDA_SUCCESS, "cuMemAlloc b");
    CUdeviceptr huge;
    expect(cuMemAlloc(&huge, 1ull << 30), CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc past the quota");
    size_t free_bytes = 0;
    expect(cuMemGetInfo(&free_bytes, &total), CUDA_SUCCESS, "cuMemGetInfo");
    check(free_bytes <= total - 2 * bytes, "free memory counts the allocations");

    float host[N], back[N];
    for (int i = 0; i < N; i++)
        host[i] = (float)i;
    expect(cuMemcpyHtoD(a, host, bytes), CUDA_SUCCESS, "cuMemcpyHtoD");
    expect(cuMemcpyDtoD(b, a, bytes), CUDA_SUCCESS, "cuMemcpyDtoD");
    memset(back, 0, sizeof back);
    expect(cuMemcpyDtoH(back, b, bytes), CUDA_SUCCESS, "cuMemcpyDtoH");
    check(memcmp(host, back, bytes) == 0, "the bytes came back");

    expect(cuMemsetD32(a, 0x3F800000u, N), CUDA_SUCCESS, "cuMemsetD32 (1.0f)");
    expect(cuMemcpyDtoH(back, a, bytes), CUDA_SUCCESS, "read the memset");
    check(back[0] == 1.0f && back[N - 1] == 1.0f, "memset D32 wrote 1.0");
    unsigned short halves[8];
    expect(cuMemsetD16(b, 0x1234, 8), CUDA_SUCCESS, "cuMemsetD16");
    expect(cuMemcpyDtoH(halves, b, sizeof halves), CUDA_SUCCESS, "read the D16 memset");
    check(halves[0] == 0x1234 && halves[7] == 0x1234, "memset D16 wrote its pattern");
    expect(cuMemsetD16Async(b, 0xBEEF, 4, NULL), CUDA_SUCCESS, "cuMemsetD16Async");
    expect(cuMemcpyDtoH(halves, b, sizeof halves), CUDA_SUCCESS, "read the async D16 memset");
    check(halves[0] == 0xBEEF && halves[3] == 0xBEEF && halves[4] == 0x1234,
          "async memset D16 wrote 4 elements and no more");
    unsigned char octets[4];
    expect(cuMemsetD8(b, 0xAB, 4), CUDA_SUCCESS, "cuMemsetD8");
    expect(cuMemcpyDtoH(octets, b, 4), CUDA_SUCCESS, "read the D8 memset");
    check(octets[0] == 0xAB && octets[3] == 0xAB, "memset D8 wrote 0xAB");

    CUdeviceptr base;
    size_t size;
    expect(cuMemGetAddressRange(&base, &size, a + 100), CUDA_SUCCESS, "cuMemGetAddressRange");
    check(base == a && size == bytes, "the range of an inner pointer");
    unsigned int memory_type = 0;
    expect(cuPointerGetAttribute(&memory_type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a),
           CUDA_SUCCESS, "cuPointerGetAttribute");
    check(memory_type == CU_MEMORYTYPE_DEVICE, "device memory is of type DEVICE");
    CUpointer_attribute asked[2] = {CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
                                    CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL};
    CUdeviceptr start_address = 1;
    int ordinal = -1;
    void *answers[2] = {&start_address, &ordinal};
    expect(cuPointerGetAttributes(2, asked, answers, a + 8), CUDA_SUCCESS,
           "cuPointerGetAttributes");
    check(start_address == a && ordinal == 0, "the range start and device of a pointer");
    expect(cuPointerGetAttributes(2, asked, answers, 0x10), CUDA_SUCCESS,
           "cuPointerGetAttributes of an unknown pointer");
    check(start_address == 0 && ordinal == 0, "an unknown pointer reads as zeros");
    void *pinned;
    expect(cuMemAllocHost(&pinned, 4096), CUDA_SUCCESS, "cuMemAllocHost");
    expect(cuPointerGetAttribute(&memory_type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                 (CUdeviceptr)(uintptr_t)pinned),
           CUDA_SUCCESS, "cuPointerGetAttribute of host memory");
    check(memory_type == CU_MEMORYTYPE_HOST, "host memory is of type HOST");
    expect(cuMemFreeHost(pinned), CUDA_SUCCESS, "cuMemFreeHost");
    expect(cuMemHostAlloc(&pinned, 64, CU_MEMHOSTALLOC_DEVICEMAP), CUDA_ERROR_NOT_SUPPORTED,
           "mapped host memory is refused");

    CUmodule module;
    CUfunction fill;
    expect(cuModuleLoadData(&module, "orionx:builtin-kernels"), CUDA_SUCCESS,
           "cuModuleLoadData of the built-in image");
    expect(cuModuleGetFunction(&fill, module, "fill_f32"), CUDA_SUCCESS, "cuModuleGetFunction");
    expect(cuModuleGetFunction(&fill, module, "no_such_kernel"), CUDA_ERROR_NOT_FOUND,
           "cuModuleGetFunction of an unknown name");
    expect(cuModuleGetFunction(&fill, module, "fill_f32"), CUDA_SUCCESS, "get fill_f32 again");
    expect(cuModuleLoadData(&module, "\x01\x02\x03"), CUDA_ERROR_INVALID_IMAGE,
           "an image of unknown format");

    CUstream stream;
    CUevent start, end;
    expect(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS, "cuStreamCreate");
    unsigned int stream_flags = 0;
    expect(cuStreamGetFlags(stream, &stream_flags), CUDA_SUCCESS, "cuStreamGetFlags");
    check(stream_flags == CU_STREAM_NON_BLOCKING, "the stream keeps its flags");
    expect(cuEventCreate(&start, 0), CUDA_SUCCESS, "cuEventCreate start");
    expect(cuEventCreate(&end, 0), CUDA_SUCCESS, "cuEventCreate end");
    expect(cuEventRecord(start, stream), CUDA_SUCCESS, "cuEventRecord start");
    unsigned char params[20];
    size_t params_bytes = sizeof params;
    pack_fill(params, a, N, 2.5f);
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, params, CU_LAUNCH_PARAM_BUFFER_SIZE,
                     &params_bytes, CU_LAUNCH_PARAM_END};
    for (int i = 0; i < 100; i++)
        expect(cuLaunchKernel(fill, 4, 1, 1, 256, 1, 1, 0, stream, NULL, extra), CUDA_SUCCESS,
               i ? "cuLaunchKernel again" : "cuLaunchKernel with extra");
    expect(cuEventRecord(end, stream), CUDA_SUCCESS, "cuEventRecord end");
    expect(cuStreamWaitEvent(NULL, end, 0), CUDA_SUCCESS, "cuStreamWaitEvent");
    expect(cuStreamWaitEvent(NULL, end, 4), CUDA_ERROR_INVALID_VALUE,
           "cuStreamWaitEvent with unknown flags");
    expect(cuStreamSynchronize(stream), CUDA_SUCCESS, "cuStreamSynchronize");
    expect(cuStreamQuery(stream), CUDA_SUCCESS, "cuStreamQuery of a finished stream");
    int one = 1, ten = 10;
    expect(cuLaunchHostFunc(stream, count_host_call, &one), CUDA_SUCCESS, "cuLaunchHostFunc");
    expect(cuStreamAddCallback(stream, stream_callback, &ten, 0), CUDA_SUCCESS,
           "cuStreamAddCallback");
    check(host_calls == 11 && callback_status == CUDA_SUCCESS, "both host functions ran");
    expect(cuStreamAddCallback(stream, stream_callback, &ten, 1), CUDA_ERROR_INVALID_VALUE,
           "cuStreamAddCallback with flags");
    expect(cuProfilerStart(), CUDA_SUCCESS, "cuProfilerStart");
    expect(cuProfilerStop(), CUDA_SUCCESS, "cuProfilerStop");
    expect(cuEventQuery(end), CUDA_SUCCESS, "cuEventQuery of a passed event");
    expect(cuEventSynchronize(end), CUDA_SUCCESS, "cuEventSynchronize");
    float elapsed_ms = -1;
    expect(cuEventElapsedTime(&elapsed_ms, start, end), CUDA_SUCCESS, "cuEventElapsedTime");
    check(elapsed_ms >= 0, "elapsed time is not negative");
    expect(cuMemcpyDtoHAsync(back, a, bytes, stream), CUDA_SUCCESS, "cuMemcpyDtoHAsync");
    check(back[0] == 2.5f && back[N - 1] == 2.5f, "the kernel filled the buffer");
    /* kernelParams: packed here by the layout the server reports. */
    unsigned long long fill_count = N;
    float value = 7.0f;
    void *kernel_params[] = {&a, &fill_count, &value};
    expect(cuLaunchKernel(fill, 4, 1, 1, 256, 1, 1, 0, stream, kernel_params, NULL),
           CUDA_SUCCESS, "cuLaunchKernel with kernelParams");
    expect(cuMemcpyDtoH(back, a, bytes), CUDA_SUCCESS, "cuMemcpyDtoH after kernelParams");
    check(back[0] == 7.0f && back[N - 1] == 7.0f, "the kernelParams launch filled the buffer");
    expect(cuLaunchKernel(fill, 1, 1, 1, 1, 1, 1, 0, stream, kernel_params, extra),
           CUDA_ERROR_INVALID_VALUE, "kernelParams and extra together are refused");
    expect(cuLaunchKernel(fill, 1, 1, 1, 1, 1, 1, 0, stream, NULL, NULL),
           CUDA_ERROR_INVALID_VALUE, "a kernel with parameters launched without any");
    void *missing_params[] = {&a, NULL, &value};
    expect(cuLaunchKernel(fill, 1, 1, 1, 1, 1, 1, 0, stream, missing_params, NULL),
           CUDA_ERROR_INVALID_VALUE, "a NULL parameter pointer is refused");
    size_t param_offset = 0, param_bytes = 0;
    expect(cuFuncGetParamInfo(fill, 2, &param_offset, &param_bytes), CUDA_SUCCESS,
           "cuFuncGetParamInfo");
    check(param_offset == 16 && param_bytes == 4, "fill_f32's value is 4 bytes at 16");
    expect(cuFuncGetParamInfo(fill, 3, &param_offset, &param_bytes), CUDA_ERROR_INVALID_VALUE,
           "cuFuncGetParamInfo past the last parameter");
    CUlaunchAttribute attributes[2];
    memset(attributes, 0, sizeof attributes);
    attributes[0].id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
    attributes[1].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    attributes[1].value.clusterDim.x = attributes[1].value.clusterDim.y = 1;
    attributes[1].value.clusterDim.z = 1;
    CUlaunchConfig config = {1, 1, 1, 256, 1, 1, 0, stream, attributes, 2};
    value = 9.0f;
    expect(cuLaunchKernelEx(&config, fill, kernel_params, NULL), CUDA_SUCCESS,
           "cuLaunchKernelEx with priority and a 1x1x1 cluster");
    expect(cuMemcpyDtoH(back, a, bytes), CUDA_SUCCESS, "cuMemcpyDtoH after cuLaunchKernelEx");
    check(back[0] == 9.0f && back[N - 1] == 9.0f, "cuLaunchKernelEx filled the buffer");
    attributes[1].value.clusterDim.x = 2;
    expect(cuLaunchKernelEx(&config, fill, kernel_params, NULL), CUDA_ERROR_NOT_SUPPORTED,
           "clusters of two blocks are refused");
    expect(cuLaunchCooperativeKernel(fill, 1, 1, 1, 1, 1, 1, 0, stream, kernel_params),
           CUDA_ERROR_NOT_SUPPORTED, "cooperative launches are refused");
    int blocks = -1, min_grid = -1, block_size = -1;
    expect(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, fill, 512, 0), CUDA_SUCCESS,
           "cuOccupancyMaxActiveBlocksPerMultiprocessor");
    check(blocks == 4, "2048 threads per multiprocessor hold 4 blocks of 512");
    expect(cuOccupancyMaxPotentialBlockSize(&min_grid, &block_size, fill, NULL, 0, 0),
           CUDA_SUCCESS, "cuOccupancyMaxPotentialBlockSize");
    check(block_size == 1024 && min_grid == 32, "1024 threads, 2 blocks on each of 16");

    /* cuLink*: two inputs, linked when the image is loaded. */
    CUlinkState link;
    char info_log[64] = "x", error_log[64] = "x";
    CUjit_option link_options[] = {3, 4, 5, 6};  /* info/error log buffers and sizes */
    void *link_values[] = {info_log, (void *)(uintptr_t)sizeof info_log, error_log,
                           (void *)(uintptr_t)sizeof error_log};
    expect(cuLinkCreate(4, link_options, link_values, &link), CUDA_SUCCESS, "cuLinkCreate");
    check(info_log[0] == '\0' && error_log[0] == '\0', "the link logs are empty");
    expect(cuLinkAddData(link, CU_JIT_INPUT_PTX, (void *)link_kernel, sizeof link_kernel,
                         "kernel", 0, NULL, NULL), CUDA_SUCCESS, "cuLinkAddData kernel");
    expect(cuLinkAddData(link, CU_JIT_INPUT_PTX, (void *)link_library,
                         strlen(link_library), "library", 0, NULL, NULL), CUDA_SUCCESS,
           "cuLinkAddData library (its size without the NUL)");
    expect(cuLinkAddData(link, CU_JIT_INPUT_NVVM, (void *)link_library, 8, "nvvm", 0, NULL,
                         NULL), CUDA_ERROR_NOT_SUPPORTED, "an NVVM input is refused");
    void *linked = NULL;
    size_t linked_bytes = 0;
    expect(cuLinkComplete(link, &linked, &linked_bytes), CUDA_SUCCESS, "cuLinkComplete");
    CUlibrary library;
    expect(cuLibraryLoadData(&library, linked, NULL, NULL, 0, NULL, NULL, 0), CUDA_SUCCESS,
           "cuLibraryLoadData of the linked image");
    expect(cuLinkDestroy(link), CUDA_SUCCESS, "cuLinkDestroy");
    expect(cuLinkDestroy(link), CUDA_ERROR_INVALID_HANDLE, "a destroyed link is refused");
    CUkernel add7;
    expect(cuLibraryGetKernel(&add7, library, "add7"), CUDA_SUCCESS, "cuLibraryGetKernel");
    int max_threads = 0;
    expect(cuKernelGetAttribute(&max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, add7,
                                device), CUDA_SUCCESS, "cuKernelGetAttribute");
    check(max_threads == 1024, "add7 may have 1024 threads per block");
    void *add7_params[] = {&a};
    expect(cuLaunchKernel((CUfunction)add7, 1, 1, 1, 32, 1, 1, 0, stream, add7_params, NULL),
           CUDA_SUCCESS, "cuLaunchKernel of a CUkernel");
    expect(cuMemcpyDtoH(back, a, bytes), CUDA_SUCCESS, "cuMemcpyDtoH after add7");
    check(back[0] == 16.0f && back[31] == 16.0f && back[32] == 9.0f, "add7 added 7 to 32");
    expect(cuLibraryUnload(library), CUDA_SUCCESS, "cuLibraryUnload");

    /* Module variables: asked twice, copied, bumped by a kernel, gone with the module. */
    CUmodule with_variable;
    CUfunction bump;
    CUdeviceptr counter = 0, again = 0, range_base = 0;
    size_t counter_bytes = 0, range_bytes = 0;
    unsigned int counter_value = 0;
    expect(cuModuleLoadData(&with_variable, variable_module), CUDA_SUCCESS,
           "cuModuleLoadData of a module with a variable");
    expect(cuModuleGetFunction(&bump, with_variable, "bump"), CUDA_SUCCESS, "get bump");
    expect(cuModuleGetGlobal(&counter, &counter_bytes, with_variable, "counter"), CUDA_SUCCESS,
           "cuModuleGetGlobal");
    expect(cuModuleGetGlobal(&again, NULL, with_variable, "counter"), CUDA_SUCCESS,
           "cuModuleGetGlobal again");
    check(counter != 0 && counter == again && counter_bytes == 4, "one 4-byte counter");
    expect(cuLaunchKernel(bump, 1, 1, 1, 1, 1, 1, 0, stream, NULL, NULL), CUDA_SUCCESS,
           "cuLaunchKernel of a kernel without parameters");
    expect(cuMemcpy((CUdeviceptr)(uintptr_t)&counter_value, counter, 4), CUDA_SUCCESS,
           "cuMemcpy from the variable");
    check(counter_value == 6, "the kernel bumped the counter");
    expect(cuMemGetAddressRange(&range_base, &range_bytes, counter), CUDA_SUCCESS,
           "cuMemGetAddressRange of the variable");
    expect(cuModuleUnload(with_variable), CUDA_SUCCESS, "cuModuleUnload with a variable");
    expect(cuMemGetAddressRange(&range_base, &range_bytes, counter), CUDA_ERROR_NOT_FOUND,
           "the variable went with its module");

    /* An asynchronous error comes back from the next synchronizing call. */
    pack_fill(params, a, 1u << 30, 1.0f);
    expect(cuLaunchKernel(fill, 1, 1, 1, 1, 1, 1, 0, stream, NULL, extra), CUDA_SUCCESS,
           "a launch past the buffer is only queued");
    expect(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS, "its error is sticky until synced");
    expect(cuCtxSynchronize(), CUDA_SUCCESS, "and the session goes on");

    expect(cuStreamDestroy((CUstream)(uintptr_t)0x1234), CUDA_ERROR_INVALID_HANDLE,
           "a foreign stream handle is refused");
    expect(cuMemFree(a + 4), CUDA_ERROR_INVALID_VALUE, "freeing an inner pointer is refused");
    expect(cuEventDestroy(start), CUDA_SUCCESS, "cuEventDestroy");
    expect(cuEventDestroy(end), CUDA_SUCCESS, "cuEventDestroy end");
    expect(cuStreamDestroy(stream), CUDA_SUCCESS, "cuStreamDestroy");
    expect(cuModuleUnload(module), CUDA_SUCCESS, "cuModuleUnload");
    expect(cuMemFree(a), CUDA_SUCCESS, "cuMemFree a");
    expect(cuMemFree(b), CUDA_SUCCESS, "cuMemFree b");
    expect(cuMemFree(b), CUDA_ERROR_INVALID_VALUE, "a double free is refused");

    CUcontext primary, popped;
    expect(cuDevicePrimaryCtxRetain(&primary, device), CUDA_SUCCESS, "cuDevicePrimaryCtxRetain");
    expect(cuCtxPushCurrent(primary), CUDA_SUCCESS, "cuCtxPushCurrent");
    expect(cuCtxPopCurrent(&popped), CUDA_SUCCESS, "cuCtxPopCurrent");
    check(popped == primary, "pop returns what was pushed");
    unsigned int flags;
    int active;
    expect(cuDevicePrimaryCtxGetState(device, &flags, &active), CUDA_SUCCESS,
           "cuDevicePrimaryCtxGetState");
    check(active == 1, "the retained primary context is active");
    expect(cuDevicePrimaryCtxRelease(device), CUDA_SUCCESS, "cuDevicePrimaryCtxRelease");
    expect(cuCtxDestroy(context), CUDA_SUCCESS, "cuCtxDestroy");
    expect(cuCtxDestroy(context), CUDA_ERROR_INVALID_CONTEXT, "a destroyed context is refused");

    void *pfn = NULL;
    CUdriverProcAddressQueryResult found;
    expect(cuGetProcAddress_v2("cuMemAlloc", &pfn, 12000, 0, &found), CUDA_SUCCESS,
           "cuGetProcAddress_v2 cuMemAlloc");
    check(pfn == (void *)cuMemAlloc_v2 && found == CU_GET_PROC_ADDRESS_SUCCESS,
          "it resolves to cuMemAlloc_v2");
    expect(cuGetProcAddress_v2("cuNoSuchCall", &pfn, 12000, 0, &found), CUDA_ERROR_NOT_FOUND,
           "an unknown name");
    check(found == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND, "reported as not found");
    expect(cuGetProcAddress_v2("cuLaunchKernel", &pfn, 3000, 0, &found), CUDA_ERROR_NOT_FOUND,
           "a version older than the call");
    check(found == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT, "reported as version too old");
    const void *table = (const void *)1;
    CUuuid id = {{0}};
    expect(cuGetExportTable(&table, &id), CUDA_ERROR_NOT_FOUND, "cuGetExportTable");

    printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures ? 1 : 0;
}
