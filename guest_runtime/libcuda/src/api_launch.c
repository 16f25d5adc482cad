/* Kernel launches, functions' parameter layouts and attributes, occupancy.
 *
 * kernelParams (void**) is packed here: the server tells each function's
 * parameter layout once (FUNC_GET_PARAM_LAYOUT) and the layout is kept for
 * the process, so a launch costs no extra round trip after the first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ox_api.h"
#include "ox_wire.h"

/* -- parameter layouts -------------------------------------------------------------------- */

/* At most one parameter per byte of CUDA's parameter limit. */
#define PARAMS_MAX OX_KERNEL_PARAMS_MAX_BYTES

struct layout {
    uint64_t key;  /* device << 32 | server function number; 0: empty slot */
    uint32_t count, params_bytes;
    uint32_t *entries;  /* count pairs of (offset, size) */
};

/* An open-addressed table, grown at half full; layouts are never dropped
 * (a server never reuses a function number within its session). */
static pthread_mutex_t layouts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct layout *layouts;
static size_t layouts_capacity, layouts_count;

static size_t slot_of(uint64_t key, size_t capacity)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (capacity - 1);
}

/* With layouts_lock held: the layout of KEY, or NULL. */
static const struct layout *find_layout(uint64_t key)
{
    if (layouts_capacity == 0)
        return NULL;
    for (size_t i = slot_of(key, layouts_capacity);; i = (i + 1) & (layouts_capacity - 1)) {
        if (layouts[i].key == key)
            return &layouts[i];
        if (layouts[i].key == 0)
            return NULL;
    }
}

/* With layouts_lock held: keep L (its entries are the table's from now). 0, or -1. */
static int keep_layout(const struct layout *l)
{
    if (2 * (layouts_count + 1) > layouts_capacity) {
        size_t capacity = layouts_capacity ? 2 * layouts_capacity : 64;
        struct layout *grown = calloc(capacity, sizeof *grown);
        if (grown == NULL)
            return -1;
        for (size_t i = 0; i < layouts_capacity; i++) {
            if (layouts[i].key == 0)
                continue;
            size_t j = slot_of(layouts[i].key, capacity);
            while (grown[j].key != 0)
                j = (j + 1) & (capacity - 1);
            grown[j] = layouts[i];
        }
        free(layouts);
        layouts = grown;
        layouts_capacity = capacity;
    }
    size_t i = slot_of(l->key, layouts_capacity);
    while (layouts[i].key != 0)
        i = (i + 1) & (layouts_capacity - 1);
    layouts[i] = *l;
    layouts_count++;
    return 0;
}

CUresult ox_param_layout(struct ox_session *session, int device, uint32_t function,
                         const char *call, uint32_t *param_count, uint32_t *params_bytes,
                         const uint32_t **entries)
{
    uint64_t key = (uint64_t)(device + 1) << 32 | function;
    pthread_mutex_lock(&layouts_lock);
    const struct layout *known = find_layout(key);
    if (known != NULL) {
        *param_count = known->count;
        *params_bytes = known->params_bytes;
        *entries = known->entries;
        pthread_mutex_unlock(&layouts_lock);
        return CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&layouts_lock);

    /* Asked without the lock: two threads may both ask, the first kept wins. */
    size_t capacity = 8u * PARAMS_MAX;
    uint8_t *wire = malloc(capacity);
    if (wire == NULL)
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for a parameter layout");
    struct ox_func_get_param_layout_request request = {function};
    struct ox_func_get_param_layout_reply reply;
    size_t got = 0;
    CUresult status = ox_rpc_func_get_param_layout(session, call, &request, &reply, wire,
                                                   capacity, &got);
    if (status != CUDA_SUCCESS) {
        free(wire);
        return status;
    }
    if (reply.param_count > PARAMS_MAX || got != 8u * reply.param_count
        || reply.params_bytes > OX_KERNEL_PARAMS_MAX_BYTES) {
        free(wire);
        return ox_fail(CUDA_ERROR_UNKNOWN, call,
                       "the GPU server's parameter layout is malformed (%u parameters, %u "
                       "bytes, %zu bytes of entries)", reply.param_count, reply.params_bytes,
                       got);
    }
    struct layout l = {key, reply.param_count, reply.params_bytes, NULL};
    l.entries = malloc(sizeof(uint32_t) * 2 * (l.count ? l.count : 1));
    if (l.entries == NULL) {
        free(wire);
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for a parameter layout");
    }
    for (uint32_t i = 0; i < l.count; i++) {
        l.entries[2 * i] = ox_get_u32(wire + 8 * i);
        l.entries[2 * i + 1] = ox_get_u32(wire + 8 * i + 4);
        if ((uint64_t)l.entries[2 * i] + l.entries[2 * i + 1] > l.params_bytes) {
            free(wire);
            free(l.entries);
            return ox_fail(CUDA_ERROR_UNKNOWN, call,
                           "the GPU server's parameter %u lies past the %u-byte buffer", i,
                           l.params_bytes);
        }
    }
    free(wire);
    pthread_mutex_lock(&layouts_lock);
    known = find_layout(key);
    if (known == NULL && keep_layout(&l) == 0)
        known = find_layout(key);
    else
        free(l.entries);
    if (known == NULL) {
        pthread_mutex_unlock(&layouts_lock);
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for a parameter layout");
    }
    *param_count = known->count;
    *params_bytes = known->params_bytes;
    *entries = known->entries;
    pthread_mutex_unlock(&layouts_lock);
    return CUDA_SUCCESS;
}

/* A function or kernel handle (CUDA lets a CUkernel stand for a CUfunction). */
static CUresult parse_function(const void *handle, const char *call, int *device,
                               uint32_t *function, struct ox_session **session)
{
    return ox_parse(handle, OX_H_FUNCTION, call, "function", device, NULL, function, session);
}

static CUresult param_info(const void *handle, size_t index, size_t *offset, size_t *size,
                           const char *call)
{
    int device;
    uint32_t function, count, params_bytes;
    const uint32_t *entries;
    struct ox_session *session;
    CUresult status = parse_function(handle, call, &device, &function, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (offset == NULL && size == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "paramOffset and paramSize are NULL");
    status = ox_param_layout(session, device, function, call, &count, &params_bytes, &entries);
    if (status != CUDA_SUCCESS)
        return status;
    if (index >= count)
        return CUDA_ERROR_INVALID_VALUE;  /* how callers find the count: stays silent */
    if (offset != NULL)
        *offset = entries[2 * index];
    if (size != NULL)
        *size = entries[2 * index + 1];
    return CUDA_SUCCESS;
}

CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
                            size_t *paramSize)
{
    return param_info(func, paramIndex, paramOffset, paramSize, "cuFuncGetParamInfo");
}

CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset,
                              size_t *paramSize)
{
    return param_info(kernel, paramIndex, paramOffset, paramSize, "cuKernelGetParamInfo");
}

/* -- launches ----------------------------------------------------------------------------- */

/* The packed parameter buffer of EXTRA: 0, or -1 when malformed. */
static int extra_buffer(void **extra, const void **buffer, size_t *bytes)
{
    int have_pointer = 0, have_size = 0;
    for (int i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
        if (i > 64)
            return -1;
        if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) {
            *buffer = extra[i + 1];
            have_pointer = 1;
        } else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) {
            if (extra[i + 1] == NULL)
                return -1;
            *bytes = *(size_t *)extra[i + 1];
            have_size = 1;
        } else {
            return -1;
        }
    }
    return have_pointer && have_size ? 0 : -1;
}

struct launch {
    unsigned grid[3], block[3], shared_mem_bytes;
    CUstream stream;
};

/* A shape beyond the device's limits fails at the launch call, as on a
 * local GPU, not later at a synchronisation. The limits are attributes 1..7
 * (threads per block, block x y z, grid x y z), kept by cuDeviceGetAttribute;
 * a limit a server reports as 0 is one it does not know: not checked. */
static CUresult check_shape(int device, const struct launch *shape, const char *call)
{
    int limit[7];
    CUresult status = ox_device_attributes(device, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 7,
                                           limit);
    if (status != CUDA_SUCCESS)
        return status;
    uint64_t threads = (uint64_t)shape->block[0] * shape->block[1] * shape->block[2];
    int fits = threads > 0 && (limit[0] <= 0 || threads <= (uint64_t)limit[0]);
    for (int i = 0; i < 3; i++)
        fits = fits && shape->grid[i] > 0
               && (limit[1 + i] <= 0 || shape->block[i] <= (unsigned)limit[1 + i])
               && (limit[4 + i] <= 0 || shape->grid[i] <= (unsigned)limit[4 + i]);
    if (!fits)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "grid (%u, %u, %u) of blocks (%u, %u, %u) does not fit device %d: at most "
                       "%d threads per block, blocks up to (%d, %d, %d), grids up to (%d, %d, "
                       "%d), none 0", shape->grid[0], shape->grid[1], shape->grid[2],
                       shape->block[0], shape->block[1], shape->block[2], device, limit[0],
                       limit[1], limit[2], limit[3], limit[4], limit[5], limit[6]);
    return CUDA_SUCCESS;
}

/* A launch's parameters as the server takes them: *PARAMS is the extra
 * buffer as it is, or kernelParams packed by FUNCTION's layout into OUT
 * (OX_KERNEL_PARAMS_MAX_BYTES long); *BYTES their size. */
static CUresult pack(struct ox_session *session, int device, uint32_t function,
                     void **kernelParams, void **extra, uint8_t *out, const void **params,
                     size_t *bytes, const char *call)
{
    if (kernelParams != NULL && extra != NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "both kernelParams and extra were given: pass one");
    if (extra != NULL) {
        if (extra_buffer(extra, params, bytes) < 0)
            return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                           "extra must hold CU_LAUNCH_PARAM_BUFFER_POINTER and "
                           "CU_LAUNCH_PARAM_BUFFER_SIZE, then CU_LAUNCH_PARAM_END");
        if (*bytes > OX_KERNEL_PARAMS_MAX_BYTES)
            return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                           "%zu bytes of kernel parameters exceed CUDA's limit of %d", *bytes,
                           OX_KERNEL_PARAMS_MAX_BYTES);
        return CUDA_SUCCESS;
    }
    uint32_t count, layout_bytes;
    const uint32_t *entries;
    CUresult status = ox_param_layout(session, device, function, call, &count, &layout_bytes,
                                      &entries);
    if (status != CUDA_SUCCESS)
        return status;
    if (count > 0 && kernelParams == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "the kernel takes %u parameters and neither kernelParams nor extra was "
                       "given", count);
    memset(out, 0, layout_bytes);  /* padding travels as zeros */
    for (uint32_t i = 0; i < count; i++) {
        if (kernelParams[i] == NULL)
            return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                           "kernelParams[%u] is NULL: every parameter needs a pointer to its "
                           "value", i);
        memcpy(out + entries[2 * i], kernelParams[i], entries[2 * i + 1]);
    }
    *params = out;
    *bytes = layout_bytes;
    return CUDA_SUCCESS;
}

CUresult ox_pack_kernel_params(const void *f, void **kernel_params, void **extra, uint8_t *out,
                               const void **params, size_t *bytes, const char *call)
{
    int device;
    uint32_t function;
    struct ox_session *session;
    CUresult status = parse_function(f, call, &device, &function, &session);
    return status != CUDA_SUCCESS ? status
                                  : pack(session, device, function, kernel_params, extra, out,
                                         params, bytes, call);
}

/* The one launch path of cuLaunchKernel and cuLaunchKernelEx. */
static CUresult launch(const void *f, const struct launch *shape, void **kernelParams,
                       void **extra, const char *call)
{
    int device, stream_device;
    uint8_t bits;
    uint32_t function;
    struct ox_session *session, *stream_session;
    CUresult status = ox_parse(f, OX_H_FUNCTION, call, "function", &device, &bits, &function,
                               &session);
    if (status != CUDA_SUCCESS)
        return status;
    uint64_t server_stream;
    status = ox_stream_target(shape->stream, call, &stream_device, &stream_session,
                              &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    if (stream_device != device && (bits & OX_FUNCTION_IS_KERNEL)) {
        /* A kernel serves every device: the same one, loaded on the stream's. */
        void *here;
        status = ox_on_device(f, OX_H_FUNCTION, stream_device, call, &here);
        if (status == CUDA_SUCCESS)
            status = parse_function(here, call, &device, &function, &session);
        if (status != CUDA_SUCCESS)
            return status;
    }
    if (stream_device != device)
        return ox_fail(CUDA_ERROR_INVALID_HANDLE, call,
                       "the function is of device %d and the stream of device %d", device,
                       stream_device);
    if ((status = check_shape(device, shape, call)) != CUDA_SUCCESS)
        return status;
    if (ox_capture_active(shape->stream))
        return ox_capture_launch(shape->stream, (CUfunction)f, shape->grid, shape->block,
                                 shape->shared_mem_bytes, kernelParams, extra, call);
    uint8_t packed[OX_KERNEL_PARAMS_MAX_BYTES];
    const void *params;
    size_t params_bytes;
    if ((status = pack(session, device, function, kernelParams, extra, packed, &params,
                       &params_bytes, call)) != CUDA_SUCCESS)
        return status;
    struct ox_launch_kernel_request request = {
        function,        shape->grid[0],  shape->grid[1],  shape->grid[2],
        shape->block[0], shape->block[1], shape->block[2], shape->shared_mem_bytes,
        server_stream};
    return ox_rpc_launch_kernel(session, call, &request, params, params_bytes);
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                        unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                        unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                        void **kernelParams, void **extra)
{
    struct launch shape = {{gridDimX, gridDimY, gridDimZ},
                           {blockDimX, blockDimY, blockDimZ},
                           sharedMemBytes,
                           hStream};
    return launch(f, &shape, kernelParams, extra, "cuLaunchKernel");
}

CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                   unsigned int gridDimZ, unsigned int blockDimX,
                                   unsigned int blockDimY, unsigned int blockDimZ,
                                   unsigned int sharedMemBytes, CUstream hStream,
                                   void **kernelParams)
{
    (void)f, (void)gridDimX, (void)gridDimY, (void)gridDimZ, (void)blockDimX;
    (void)blockDimY, (void)blockDimZ, (void)sharedMemBytes, (void)hStream, (void)kernelParams;
    return ox_fail(CUDA_ERROR_NOT_SUPPORTED, "cuLaunchCooperativeKernel",
                   "cooperative launches (grid-wide synchronization) cannot run on a pooled "
                   "vGPU: launch with cuLaunchKernel and synchronize between kernels");
}

/* Launch attributes that a pooled GPU honours by running the kernel in
 * order on its stream, or that only tune a real GPU's caches and
 * scheduling: accepted and not sent. */
static int harmless_attribute(CUlaunchAttributeID id)
{
    switch (id) {
    case CU_LAUNCH_ATTRIBUTE_IGNORE:
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
    case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        return 1;
    default:
        return 0;
    }
}

CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                          void **extra)
{
    static const char call[] = "cuLaunchKernelEx";
    if (config == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "config is NULL");
    if (config->numAttrs > 0 && config->attrs == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "numAttrs is %u but attrs is NULL",
                       config->numAttrs);
    for (unsigned int i = 0; i < config->numAttrs; i++) {
        const CUlaunchAttribute *a = &config->attrs[i];
        if (harmless_attribute(a->id))
            continue;
        if (a->id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE) {
            if (a->value.cooperative == 0)
                continue;
            return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                           "cooperative launches (grid-wide synchronization) cannot run on a "
                           "pooled vGPU: launch without CU_LAUNCH_ATTRIBUTE_COOPERATIVE");
        }
        if (a->id == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION
            || a->id == CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION) {
            unsigned x = a->value.clusterDim.x, y = a->value.clusterDim.y,
                     z = a->value.clusterDim.z;
            if (x <= 1 && y <= 1 && z <= 1)
                continue;  /* one block per cluster: a plain launch */
            return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                           "thread block clusters (%ux%ux%u) cannot run on a pooled vGPU: "
                           "launch without CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION", x, y, z);
        }
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "launch attribute %d is not supported on a pooled vGPU: launch "
                       "without it", (int)a->id);
    }
    struct launch shape = {{config->gridDimX, config->gridDimY, config->gridDimZ},
                           {config->blockDimX, config->blockDimY, config->blockDimZ},
                           config->sharedMemBytes,
                           config->hStream};
    return launch(f, &shape, kernelParams, extra, call);
}

/* -- function attributes ------------------------------------------------------------------ */

static CUresult get_attribute(int *pi, CUfunction_attribute attrib, const void *handle,
                              const char *call)
{
    int device;
    uint32_t function;
    struct ox_session *session;
    CUresult status = parse_function(handle, call, &device, &function, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (pi == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pi is NULL");
    struct ox_func_get_attribute_request request = {function, (int32_t)attrib};
    struct ox_func_get_attribute_reply reply;
    status = ox_rpc_func_get_attribute(session, call, &request, &reply);
    if (status == CUDA_SUCCESS)
        *pi = reply.value;
    return status;
}

static CUresult set_attribute(const void *handle, CUfunction_attribute attrib, int value,
                              const char *call)
{
    int device;
    uint32_t function;
    struct ox_session *session;
    CUresult status = parse_function(handle, call, &device, &function, &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_func_set_attribute_request request = {function, (int32_t)attrib, value};
    return ox_rpc_func_set_attribute(session, call, &request);
}

CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
    return get_attribute(pi, attrib, hfunc, "cuFuncGetAttribute");
}

CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
    return set_attribute(hfunc, attrib, value, "cuFuncSetAttribute");
}

/* KERNEL as loaded on device DEV (loaded there the first time). */
static CUresult kernel_device(const void *kernel, CUdevice dev, const char *call, void **here)
{
    CUresult status = ox_check_device(dev, call);
    return status != CUDA_SUCCESS ? status : ox_on_device(kernel, OX_H_FUNCTION, dev, call, here);
}

CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel,
                              CUdevice dev)
{
    static const char call[] = "cuKernelGetAttribute";
    void *here;
    CUresult status = kernel_device(kernel, dev, call, &here);
    return status != CUDA_SUCCESS ? status : get_attribute(pi, attrib, here, call);
}

CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel,
                              CUdevice dev)
{
    static const char call[] = "cuKernelSetAttribute";
    void *here;
    CUresult status = kernel_device(kernel, dev, call, &here);
    return status != CUDA_SUCCESS ? status : set_attribute(here, attrib, val, call);
}

/* Cache preferences tune a real GPU's L1/shared split; a pooled vGPU takes
 * them and goes on as it was (CUDA allows a device to ignore them). */
CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
    static const char call[] = "cuFuncSetCacheConfig";
    int device;
    uint32_t function;
    struct ox_session *session;
    if ((unsigned)config > CU_FUNC_CACHE_PREFER_EQUAL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "cache config %d is not a CUfunc_cache",
                       (int)config);
    return parse_function(hfunc, call, &device, &function, &session);
}

CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev)
{
    static const char call[] = "cuKernelSetCacheConfig";
    if ((unsigned)config > CU_FUNC_CACHE_PREFER_EQUAL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "cache config %d is not a CUfunc_cache",
                       (int)config);
    void *here;
    return kernel_device(kernel, dev, call, &here);
}

/* -- occupancy ---------------------------------------------------------------------------- */

/* What occupancy depends on, of the function's device and of the function. */
struct occupancy_limits {
    int warp_size, sm_count, threads_per_sm, blocks_per_sm, shared_per_sm, registers_per_sm;
    int shared_per_block;  /* the most one block may opt in to */
    int function_threads, function_shared, function_registers;
};

static CUresult occupancy_limits(const void *func, const char *call,
                                 struct occupancy_limits *o)
{
    int device;
    uint32_t function;
    struct ox_session *session;
    CUresult status = parse_function(func, call, &device, &function, &session);
    if (status != CUDA_SUCCESS)
        return status;
    const struct {
        int *value;
        CUdevice_attribute attribute;
    } device_values[] = {
        {&o->warp_size, CU_DEVICE_ATTRIBUTE_WARP_SIZE},
        {&o->sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT},
        {&o->threads_per_sm, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR},
        {&o->blocks_per_sm, CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR},
        {&o->shared_per_sm, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR},
        {&o->registers_per_sm, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR},
        {&o->shared_per_block, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN},
    };
    for (size_t i = 0; i < sizeof device_values / sizeof device_values[0]; i++) {
        status = cuDeviceGetAttribute(device_values[i].value, device_values[i].attribute,
                                      device);
        if (status != CUDA_SUCCESS)
            return status;
    }
    const struct {
        int *value;
        CUfunction_attribute attribute;
    } function_values[] = {
        {&o->function_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK},
        {&o->function_shared, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES},
        {&o->function_registers, CU_FUNC_ATTRIBUTE_NUM_REGS},
    };
    for (size_t i = 0; i < sizeof function_values / sizeof function_values[0]; i++) {
        status = get_attribute(function_values[i].value, function_values[i].attribute, func,
                               call);
        if (status != CUDA_SUCCESS)
            return status;
    }
    if (o->warp_size <= 0)
        return ox_fail(CUDA_ERROR_UNKNOWN, call, "the GPU server reports a warp size of %d",
                       o->warp_size);
    return CUDA_SUCCESS;
}

/* Resident blocks of BLOCK_SIZE threads and DYNAMIC_SHARED bytes per
 * multiprocessor: the least of the limits of blocks, threads (whole warps),
 * shared memory and registers (whole warps of the function's registers). */
static int blocks_per_sm(const struct occupancy_limits *o, int block_size,
                         size_t dynamic_shared)
{
    if (block_size <= 0 || block_size > o->function_threads)
        return 0;
    long long warps = (block_size + o->warp_size - 1) / o->warp_size;
    long long threads = warps * o->warp_size;
    long long blocks = o->blocks_per_sm;
    if (threads > 0 && o->threads_per_sm / threads < blocks)
        blocks = o->threads_per_sm / threads;
    long long shared = (long long)o->function_shared + (long long)dynamic_shared;
    if (shared > 0 && o->shared_per_sm / shared < blocks)
        blocks = o->shared_per_sm / shared;
    long long registers = (long long)o->function_registers * threads;
    if (registers > 0 && o->registers_per_sm / registers < blocks)
        blocks = o->registers_per_sm / registers;
    return blocks > 0 ? (int)blocks : 0;
}

static CUresult max_active_blocks(int *numBlocks, CUfunction func, int blockSize,
                                  size_t dynamicSMemSize, const char *call)
{
    if (numBlocks == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "numBlocks is NULL");
    struct occupancy_limits o;
    CUresult status = occupancy_limits(func, call, &o);
    if (status != CUDA_SUCCESS)
        return status;
    *numBlocks = blocks_per_sm(&o, blockSize, dynamicSMemSize);
    return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func,
                                                     int blockSize, size_t dynamicSMemSize)
{
    return max_active_blocks(numBlocks, func, blockSize, dynamicSMemSize,
                             "cuOccupancyMaxActiveBlocksPerMultiprocessor");
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func,
                                                              int blockSize,
                                                              size_t dynamicSMemSize,
                                                              unsigned int flags)
{
    /* CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE only matters where caching
     * changes the shared memory split, which no pooled GPU does here. */
    if (flags & ~1u)
        return ox_fail(CUDA_ERROR_INVALID_VALUE,
                       "cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags",
                       "flags 0x%x are not occupancy flags", flags);
    return max_active_blocks(numBlocks, func, blockSize, dynamicSMemSize,
                             "cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags");
}

CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func,
                                                 int numBlocks, int blockSize)
{
    static const char call[] = "cuOccupancyAvailableDynamicSMemPerBlock";
    if (dynamicSmemSize == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "dynamicSmemSize is NULL");
    if (numBlocks <= 0 || blockSize <= 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "numBlocks %d and blockSize %d must be positive", numBlocks, blockSize);
    struct occupancy_limits o;
    CUresult status = occupancy_limits(func, call, &o);
    if (status != CUDA_SUCCESS)
        return status;
    /* Without shared memory, do NUMBLOCKS fit at all? Then split what the
     * multiprocessor has among them, within what one block may have. */
    struct occupancy_limits unshared = o;
    unshared.function_shared = 0;
    long long available = 0;
    if (blocks_per_sm(&unshared, blockSize, 0) >= numBlocks) {
        long long share = o.shared_per_sm / numBlocks;
        if (share > o.shared_per_block)
            share = o.shared_per_block;
        available = share - o.function_shared;
    }
    *dynamicSmemSize = available > 0 ? (size_t)available : 0;
    return CUDA_SUCCESS;
}

static CUresult potential_block_size(int *minGridSize, int *blockSize, CUfunction func,
                                     CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                     size_t dynamicSMemSize, int blockSizeLimit,
                                     const char *call)
{
    if (minGridSize == NULL || blockSize == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "minGridSize or blockSize is NULL");
    struct occupancy_limits o;
    CUresult status = occupancy_limits(func, call, &o);
    if (status != CUDA_SUCCESS)
        return status;
    int limit = o.function_threads;
    if (blockSizeLimit > 0 && blockSizeLimit < limit)
        limit = blockSizeLimit;
    /* The block size (a whole number of warps, or the limit itself) that
     * keeps the most threads resident; the largest such on a tie. */
    int best_size = 0, best_blocks = 0;
    long long best_threads = -1;
    for (int size = limit; size > 0;
         size = (size % o.warp_size) ? size - size % o.warp_size : size - o.warp_size) {
        size_t shared = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(size)
                                                   : dynamicSMemSize;
        int blocks = blocks_per_sm(&o, size, shared);
        if ((long long)blocks * size > best_threads) {
            best_threads = (long long)blocks * size;
            best_size = size;
            best_blocks = blocks;
        }
    }
    *blockSize = best_size;
    *minGridSize = best_blocks * o.sm_count;
    return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
                                          CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                          size_t dynamicSMemSize, int blockSizeLimit)
{
    return potential_block_size(minGridSize, blockSize, func, blockSizeToDynamicSMemSize,
                                dynamicSMemSize, blockSizeLimit,
                                "cuOccupancyMaxPotentialBlockSize");
}

CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize,
                                                   CUfunction func,
                                                   CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                   size_t dynamicSMemSize, int blockSizeLimit,
                                                   unsigned int flags)
{
    if (flags & ~1u)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, "cuOccupancyMaxPotentialBlockSizeWithFlags",
                       "flags 0x%x are not occupancy flags", flags);
    return potential_block_size(minGridSize, blockSize, func, blockSizeToDynamicSMemSize,
                                dynamicSMemSize, blockSizeLimit,
                                "cuOccupancyMaxPotentialBlockSizeWithFlags");
}
