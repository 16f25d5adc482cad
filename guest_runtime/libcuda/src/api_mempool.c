/* Memory pools and stream-ordered allocation (cudaMallocAsync).
 *
 * A vGPU's memory is the server's to place, so a pool here is an account,
 * not a reserve: an allocation from it is an ordinary allocation made at
 * once (usable before the stream reaches it, as stream order allows), and a
 * stream-ordered free waits for the stream's earlier work, then frees. A
 * pool keeps its attributes and
 * counts what is allocated from it; nothing is held back, so the release
 * threshold has nothing to keep and trimming nothing to give back. Pools
 * cannot be exported (no IPC). */
#include <stdlib.h>
#include <string.h>

#include "ox_state.h"

#define POOLS_MAX 64
#define POOL_HANDLE_TAG 0x4F58504Cu  /* "OXPL" */

struct pool {
    int in_use;
    int device;
    int is_default;
    uint8_t generation;
    int reuse[3];  /* CU_MEMPOOL_ATTR_REUSE_* (1..3) */
    uint64_t release_threshold_bytes;
    uint64_t used_bytes, used_high_bytes, reserved_high_bytes;
};

struct pooled {
    CUdeviceptr dptr;
    size_t bytes;
    int pool;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool pools[POOLS_MAX];
static int current_pool[OX_DEVICES_MAX];  /* 0: the device's default pool */
static struct pooled *pooled;
static size_t pooled_count, pooled_capacity;

static CUmemoryPool handle_of(int slot)
{
    return (CUmemoryPool)(uintptr_t)((uint64_t)POOL_HANDLE_TAG << 32
                                     | (uint64_t)pools[slot].generation << 16 | (unsigned)slot);
}

/* The slot of a live pool handle, else -1. Lock held. */
static int slot_of(CUmemoryPool pool)
{
    uint64_t value = (uint64_t)(uintptr_t)pool;
    unsigned slot = (unsigned)(value & 0xFFFF);
    if (value >> 32 != POOL_HANDLE_TAG || slot >= POOLS_MAX || !pools[slot].in_use
        || pools[slot].generation != (uint8_t)(value >> 16))
        return -1;
    return (int)slot;
}

/* Device DEV's default pool, made on first use. Lock held. */
static int default_pool(int dev)
{
    for (int i = 0; i < POOLS_MAX; i++)
        if (pools[i].in_use && pools[i].is_default && pools[i].device == dev)
            return i;
    for (int i = 0; i < POOLS_MAX; i++) {
        if (!pools[i].in_use) {
            uint8_t generation = (uint8_t)(pools[i].generation + 1);
            pools[i] = (struct pool){.in_use = 1, .device = dev, .is_default = 1,
                                     .generation = generation, .reuse = {1, 1, 1}};
            return i;
        }
    }
    return -1;
}

static CUresult no_slot(const char *call)
{
    return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call,
                   "this process has %d memory pools already: destroy some first", POOLS_MAX);
}

static CUresult bad_pool(const char *call)
{
    return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "the memory pool is not a live pool of "
                   "this process");
}

CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    static const char call[] = "cuDeviceGetDefaultMemPool";
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (pool_out == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pool_out is NULL");
    pthread_mutex_lock(&lock);
    int slot = default_pool(dev);
    if (slot >= 0)
        *pool_out = handle_of(slot);
    pthread_mutex_unlock(&lock);
    return slot >= 0 ? CUDA_SUCCESS : no_slot(call);
}

CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    static const char call[] = "cuDeviceGetMemPool";
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (pool == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pool is NULL");
    pthread_mutex_lock(&lock);
    int slot = current_pool[dev] ? current_pool[dev] - 1 : default_pool(dev);
    if (slot >= 0)
        *pool = handle_of(slot);
    pthread_mutex_unlock(&lock);
    return slot >= 0 ? CUDA_SUCCESS : no_slot(call);
}

CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    static const char call[] = "cuDeviceSetMemPool";
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    pthread_mutex_lock(&lock);
    int slot = slot_of(pool);
    int fits = slot >= 0 && pools[slot].device == dev;
    if (fits)
        current_pool[dev] = slot + 1;
    pthread_mutex_unlock(&lock);
    if (slot < 0)
        return bad_pool(call);
    return fits ? CUDA_SUCCESS
                : ox_fail(CUDA_ERROR_INVALID_DEVICE, call, "the pool is of device %d, not %d",
                          pools[slot].device, dev);
}

CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps)
{
    static const char call[] = "cuMemPoolCreate";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (pool == NULL || poolProps == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pool or poolProps is NULL");
    if (poolProps->allocType != CU_MEM_ALLOCATION_TYPE_PINNED
        || poolProps->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "a vGPU's pools hold device memory: allocType PINNED, location DEVICE "
                       "(host and managed pools cannot be remoted)");
    if (poolProps->handleTypes != CU_MEM_HANDLE_TYPE_NONE)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "exportable pools (handleTypes 0x%x) share memory between processes on "
                       "one GPU, which a vGPU cannot: ask for CU_MEM_HANDLE_TYPE_NONE",
                       (unsigned)poolProps->handleTypes);
    if ((status = ox_check_device(poolProps->location.id, call)) != CUDA_SUCCESS)
        return status;
    pthread_mutex_lock(&lock);
    int slot = -1;
    for (int i = 0; i < POOLS_MAX && slot < 0; i++)
        if (!pools[i].in_use)
            slot = i;
    if (slot >= 0) {
        uint8_t generation = (uint8_t)(pools[slot].generation + 1);
        pools[slot] = (struct pool){.in_use = 1, .device = poolProps->location.id,
                                    .generation = generation, .reuse = {1, 1, 1}};
        *pool = handle_of(slot);
    }
    pthread_mutex_unlock(&lock);
    return slot >= 0 ? CUDA_SUCCESS : no_slot(call);
}

CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    static const char call[] = "cuMemPoolDestroy";
    pthread_mutex_lock(&lock);
    int slot = slot_of(pool);
    int is_default = slot >= 0 && pools[slot].is_default;
    if (slot >= 0 && !is_default) {
        pools[slot].in_use = 0;
        for (int d = 0; d < OX_DEVICES_MAX; d++)
            if (current_pool[d] == slot + 1)
                current_pool[d] = 0;  /* the device goes back to its default pool */
        for (size_t i = 0; i < pooled_count; i++)
            if (pooled[i].pool == slot)
                pooled[i].pool = -1;  /* still allocated; its pool is gone */
    }
    pthread_mutex_unlock(&lock);
    if (slot < 0)
        return bad_pool(call);
    return is_default ? ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                                "a device's default pool cannot be destroyed")
                      : CUDA_SUCCESS;
}

CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    static const char call[] = "cuMemPoolSetAttribute";
    if (value == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "value is NULL");
    pthread_mutex_lock(&lock);
    int slot = slot_of(pool);
    CUresult status = CUDA_SUCCESS;
    if (slot < 0) {
        status = CUDA_ERROR_INVALID_HANDLE;
    } else if (attr >= CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES
               && attr <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES) {
        pools[slot].reuse[attr - 1] = *(const int *)value != 0;
    } else if (attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD) {
        pools[slot].release_threshold_bytes = *(const uint64_t *)value;
    } else if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH && *(const uint64_t *)value == 0) {
        pools[slot].reserved_high_bytes = pools[slot].used_bytes;  /* reset to what is held */
    } else if (attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH && *(const uint64_t *)value == 0) {
        pools[slot].used_high_bytes = pools[slot].used_bytes;
    } else {
        status = CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_unlock(&lock);
    if (status == CUDA_ERROR_INVALID_HANDLE)
        return bad_pool(call);
    if (status != CUDA_SUCCESS)
        return ox_fail(status, call, "pool attribute %d cannot be set to that value (the "
                       "high-water marks only to 0; the current amounts not at all)", (int)attr);
    return CUDA_SUCCESS;
}

CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    static const char call[] = "cuMemPoolGetAttribute";
    if (value == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "value is NULL");
    pthread_mutex_lock(&lock);
    int slot = slot_of(pool);
    CUresult status = CUDA_SUCCESS;
    if (slot < 0) {
        status = CUDA_ERROR_INVALID_HANDLE;
    } else if (attr >= CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES
               && attr <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES) {
        *(int *)value = pools[slot].reuse[attr - 1];
    } else {
        /* Reserved and used are the same: nothing is held back. */
        const struct pool *p = &pools[slot];
        switch (attr) {
        case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
            *(uint64_t *)value = p->release_threshold_bytes;
            break;
        case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
        case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
            *(uint64_t *)value = p->used_bytes;
            break;
        case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
            *(uint64_t *)value = p->reserved_high_bytes;
            break;
        case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
            *(uint64_t *)value = p->used_high_bytes;
            break;
        default:
            status = CUDA_ERROR_INVALID_VALUE;
        }
    }
    pthread_mutex_unlock(&lock);
    if (status == CUDA_ERROR_INVALID_HANDLE)
        return bad_pool(call);
    if (status != CUDA_SUCCESS)
        return ox_fail(status, call, "%d is not a memory pool attribute", (int)attr);
    return CUDA_SUCCESS;
}

CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
    (void)minBytesToKeep;  /* nothing is held back to trim */
    pthread_mutex_lock(&lock);
    int slot = slot_of(pool);
    pthread_mutex_unlock(&lock);
    return slot >= 0 ? CUDA_SUCCESS : bad_pool("cuMemPoolTrimTo");
}

/* Allocate BYTES from pool SLOT (-1: the stream device's current pool) on
 * STREAM's device. */
static CUresult alloc_async(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                            CUstream stream, const char *call)
{
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(stream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    pthread_mutex_lock(&lock);
    int slot;
    if (pool == NULL)
        slot = current_pool[device] ? current_pool[device] - 1 : default_pool(device);
    else
        slot = slot_of(pool);
    int pool_device = slot >= 0 ? pools[slot].device : -1;
    uint8_t generation = slot >= 0 ? pools[slot].generation : 0;
    pthread_mutex_unlock(&lock);
    if (slot < 0)
        return pool == NULL ? no_slot(call) : bad_pool(call);
    if (pool_device != device)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "the pool is of device %d and the stream of device %d", pool_device,
                       device);
    if ((status = ox_device_alloc(device, session, bytes, dptr, call)) != CUDA_SUCCESS)
        return status;
    pthread_mutex_lock(&lock);
    if (ox_grow((void **)&pooled, &pooled_capacity, pooled_count, sizeof *pooled) < 0) {
        pthread_mutex_unlock(&lock);
        cuMemFree_v2(*dptr);
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for the pool");
    }
    /* The pool may have been destroyed (and its slot reused) meanwhile: the
     * memory stays allocated, on no pool's account. */
    int alive = pools[slot].in_use && pools[slot].generation == generation;
    pooled[pooled_count++] = (struct pooled){*dptr, bytes, alive ? slot : -1};
    if (alive) {
        struct pool *p = &pools[slot];
        p->used_bytes += bytes;
        if (p->used_bytes > p->used_high_bytes)
            p->used_high_bytes = p->used_bytes;
        if (p->used_bytes > p->reserved_high_bytes)
            p->reserved_high_bytes = p->used_bytes;
    }
    pthread_mutex_unlock(&lock);
    return CUDA_SUCCESS;
}

CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return alloc_async(dptr, bytesize, NULL, hStream, "cuMemAllocAsync");
}

CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                 CUstream hStream)
{
    static const char call[] = "cuMemAllocFromPoolAsync";
    if (pool == NULL)
        return bad_pool(call);
    return alloc_async(dptr, bytesize, pool, hStream, call);
}

void ox_pool_forget(CUdeviceptr dptr)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < pooled_count; i++) {
        if (pooled[i].dptr == dptr) {
            if (pooled[i].pool >= 0)
                pools[pooled[i].pool].used_bytes -= pooled[i].bytes;
            pooled[i] = pooled[--pooled_count];
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* In stream order: after the work queued on the stream before it, which
 * the stream's synchronisation waits for (no backend frees in stream order
 * itself: a GPU's cuMemUnmap does not wait for kernels). */
CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    if (dptr == 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, "cuMemFreeAsync", "dptr is 0");
    CUresult status = cuStreamSynchronize(hStream);
    CUresult freed = cuMemFree_v2(dptr);  /* even after an earlier error: no leak */
    return status != CUDA_SUCCESS ? status : freed;
}
