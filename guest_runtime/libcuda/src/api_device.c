/* cuInit, versions, the resolver, and the device queries. */
#include <stdio.h>
#include <string.h>

#include "ox_state.h"

CUresult cuInit(unsigned int Flags)
{
    static const char call[] = "cuInit";
    if (Flags != 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "flags must be 0, got %u", Flags);
    pthread_mutex_lock(&ox_state.lock);
    CUresult status = CUDA_SUCCESS;
    if (ox_state.config.token == NULL) {
        status = ox_config_load(&ox_state.config, call);
        if (status == CUDA_SUCCESS) {
            ox_state.device_count = ox_state.config.device_count;
            for (int d = 0; d < ox_state.device_count; d++) {
                pthread_mutex_init(&ox_state.devices[d].open_lock, NULL);
                ox_state.contexts[d] = (struct ox_context){.in_use = 1, .device = d,
                                                           .primary = 1};
            }
        }
    }
    pthread_mutex_unlock(&ox_state.lock);
    if (status != CUDA_SUCCESS)
        return status;
    /* Connect device 0 now, so that cuInit fails when its server is not
     * there. In acquire mode the broker has counted the devices already, and
     * binding waits for the first call that needs a server: a program that
     * only counts devices never waits in the queue. */
    struct ox_session *session;
    if (ox_acquire_bound(&ox_state.config))
        status = ox_device_session(0, call, &session);
    if (status == CUDA_SUCCESS) {
        pthread_mutex_lock(&ox_state.lock);
        ox_state.initialised = 1;
        pthread_mutex_unlock(&ox_state.lock);
    }
    return status;
}

/* The driver API release this library implements, before and after cuInit:
 * the CUDA runtime checks it against its own release and puts it in its
 * integrity check, so it never changes (a server's GPU driver decides only
 * which PTX it can compile, and says so when it cannot). */
CUresult cuDriverGetVersion(int *driverVersion)
{
    if (driverVersion == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, "cuDriverGetVersion", "driverVersion is NULL");
    *driverVersion = OX_DRIVER_VERSION;
    return CUDA_SUCCESS;
}

/* -- the resolver --------------------------------------------------------------- */

static const struct ox_proc_entry *find_entry(const char *name)
{
    for (size_t i = 0; i < ox_proc_entry_count; i++)
        if (strcmp(ox_proc_entries[i].base_name, name) == 0)
            return &ox_proc_entries[i];
    return NULL;
}

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                             CUdriverProcAddressQueryResult *symbolStatus)
{
    CUdriverProcAddressQueryResult result = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (symbol == NULL || pfn == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, "cuGetProcAddress", "symbol or pfn is NULL");
    *pfn = NULL;
    const struct ox_proc_entry *entry = find_entry(symbol);
    if (entry != NULL) {
        result = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
        if ((flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) && entry->ptds.symbol
            && cudaVersion >= entry->ptds.abi_version) {
            *pfn = entry->ptds.symbol;
        } else {
            for (int i = 0; i < entry->version_count; i++)
                if (cudaVersion >= entry->versions[i].abi_version)
                    *pfn = entry->versions[i].symbol;
        }
        if (*pfn != NULL)
            result = CU_GET_PROC_ADDRESS_SUCCESS;
    }
    if (symbolStatus != NULL)
        *symbolStatus = result;
    return *pfn != NULL ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    return cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, NULL);
}

/* -- devices ---------------------------------------------------------------------- */

CUresult cuDeviceGetCount(int *count)
{
    static const char call[] = "cuDeviceGetCount";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (count == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "count is NULL");
    *count = ox_state.device_count;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    static const char call[] = "cuDeviceGet";
    CUresult status = ox_check_device(ordinal, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (device == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "device is NULL");
    *device = ordinal;
    return CUDA_SUCCESS;
}

/* The session of DEV after checking it, for the queries below. */
static CUresult device_session(CUdevice dev, const char *call, struct ox_session **session)
{
    CUresult status = ox_check_device(dev, call);
    return status != CUDA_SUCCESS ? status : ox_device_session(dev, call, session);
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    static const char call[] = "cuDeviceGetName";
    struct ox_session *session;
    CUresult status = device_session(dev, call, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (name == NULL || len <= 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "name is NULL or len is not positive");
    char text[OX_NAME_MAX_BYTES];
    size_t got = 0;
    struct ox_device_get_name_request request = {0};  /* a session sees its vGPU as 0 */
    status = ox_rpc_device_get_name(session, call, &request, text, sizeof text - 1, &got);
    if (status != CUDA_SUCCESS)
        return status;
    size_t n = got < (size_t)len - 1 ? got : (size_t)len - 1;
    memcpy(name, text, n);
    name[n] = '\0';
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    static const char call[] = "cuDeviceGetUuid";
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (uuid == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "uuid is NULL");
    return ox_device_uuid(dev, uuid, call);
}

CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    return cuDeviceGetUuid(uuid, dev);
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    static const char call[] = "cuDeviceTotalMem";
    struct ox_session *session;
    CUresult status = device_session(dev, call, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (bytes == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "bytes is NULL");
    struct ox_device_total_mem_request request = {0};
    struct ox_device_total_mem_reply reply;
    status = ox_rpc_device_total_mem(session, call, &request, &reply);
    if (status == CUDA_SUCCESS)
        *bytes = (size_t)reply.total_bytes;
    return status;
}

/* Features this library cannot give a process, whatever the server's GPU
 * has: they need the GPU and this process to share memory or handles. */
static const CUdevice_attribute not_remoted[] = {
    CU_DEVICE_ATTRIBUTE_INTEGRATED,
    CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY,
    CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY,
    CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED,
    CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS,
    CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS,
    CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM,
    CU_DEVICE_ATTRIBUTE_COOPERATIVE_MULTI_DEVICE_LAUNCH,
    CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES,
    CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST,
    CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
    CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED,
    CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES,  /* pools are served, not exported */
    CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED,
    CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED,
    CU_DEVICE_ATTRIBUTE_IPC_EVENT_SUPPORTED,
    CU_DEVICE_ATTRIBUTE_MULTICAST_SUPPORTED,
};

/* Attributes asked of the server, kept: a vGPU's never change, and the
 * CUDA runtime asks for all of them in every process, CuPy and the launch
 * shape check again and again. */
#define ATTRIBUTES_KEPT 256
static pthread_mutex_t attributes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uint8_t known[ATTRIBUTES_KEPT];
    int value[ATTRIBUTES_KEPT];
} attributes[OX_DEVICES_MAX];

CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    static const char call[] = "cuDeviceGetAttribute";
    if (dev >= 0 && dev < ox_state.device_count && pi != NULL  /* else the errors below */
        && (unsigned)attrib < ATTRIBUTES_KEPT) {
        pthread_mutex_lock(&attributes_lock);
        int known = attributes[dev].known[attrib];
        if (known)
            *pi = attributes[dev].value[attrib];
        pthread_mutex_unlock(&attributes_lock);
        if (known)
            return CUDA_SUCCESS;
    }
    struct ox_session *session;
    CUresult status = device_session(dev, call, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (pi == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pi is NULL");
    for (size_t i = 0; i < sizeof not_remoted / sizeof not_remoted[0]; i++) {
        if (attrib == not_remoted[i]) {
            *pi = 0;
            return CUDA_SUCCESS;
        }
    }
    if (attrib == CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED) {
        *pi = 1;  /* this library serves them (api_mempool.c), whatever the GPU */
        return CUDA_SUCCESS;
    }
    struct ox_device_get_attribute_request request = {(int32_t)attrib, 0};
    struct ox_device_get_attribute_reply reply;
    status = ox_rpc_device_get_attribute(session, call, &request, &reply);
    if (status == CUDA_SUCCESS) {
        *pi = reply.value;
        if ((unsigned)attrib < ATTRIBUTES_KEPT) {
            pthread_mutex_lock(&attributes_lock);
            attributes[dev].value[attrib] = reply.value;
            attributes[dev].known[attrib] = 1;
            pthread_mutex_unlock(&attributes_lock);
        }
    }
    return status;
}

CUresult ox_device_attributes(int device, int first, int count, int *out)
{
    int known = device >= 0 && device < ox_state.device_count && first >= 0
                && first + count <= ATTRIBUTES_KEPT;
    if (known) {  /* the launch path's case: all kept, one lock */
        pthread_mutex_lock(&attributes_lock);
        for (int i = 0; i < count && known; i++)
            known = attributes[device].known[first + i];
        if (known)
            memcpy(out, &attributes[device].value[first], count * sizeof *out);
        pthread_mutex_unlock(&attributes_lock);
    }
    for (int i = 0; i < count && !known; i++) {
        CUresult status = cuDeviceGetAttribute(&out[i], (CUdevice_attribute)(first + i), device);
        if (status != CUDA_SUCCESS)
            return status;
    }
    return CUDA_SUCCESS;
}

CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    if (major == NULL || minor == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceComputeCapability",
                       "major or minor is NULL");
    CUresult status = cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                           dev);
    if (status != CUDA_SUCCESS)
        return status;
    return cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
}

CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
    static const char call[] = "cuDeviceCanAccessPeer";
    CUresult status = ox_check_device(dev, call);
    if (status == CUDA_SUCCESS)
        status = ox_check_device(peerDev, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (canAccessPeer == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "canAccessPeer is NULL");
    if (dev == peerDev)
        return ox_fail(CUDA_ERROR_INVALID_DEVICE, call,
                       "a device is not its own peer (both are device %d)", dev);
    *canAccessPeer = 0;  /* each vGPU is its own session: no shared address space */
    return CUDA_SUCCESS;
}

/* A profiler runs where the GPU is, on the GPU server's host: these only
 * mark a range, and nothing here records it. */
CUresult cuProfilerStart(void)
{
    return ox_require_init("cuProfilerStart");
}

CUresult cuProfilerStop(void)
{
    return ox_require_init("cuProfilerStop");
}
