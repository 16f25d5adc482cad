/* Process state: devices and their sessions, contexts, the calling thread's
 * context stack, and the tables of device and host memory. Everything here
 * sits behind one lock (state.lock), never held across I/O: sessions are
 * opened under their device's own open_lock. */
#include <stdlib.h>
#include <string.h>

#include "ox_internal.h"
#include "ox_state.h"

struct ox_state ox_state = {.lock = PTHREAD_MUTEX_INITIALIZER};

_Thread_local struct ox_thread ox_thread;

/* -- handles ------------------------------------------------------------------ */

#define HANDLE_MAGIC 0x0C5Au

uint64_t ox_handle(enum ox_handle_kind kind, int device, uint8_t extra, uint32_t number)
{
    return (uint64_t)HANDLE_MAGIC << 48 | (uint64_t)kind << 44 | (uint64_t)(device & 0xF) << 40
           | (uint64_t)extra << 32 | number;
}

int ox_handle_parse(uint64_t handle, enum ox_handle_kind kind, int *device, uint8_t *extra,
                    uint32_t *number)
{
    if (handle >> 48 != HANDLE_MAGIC || ((handle >> 44) & 0xF) != (uint64_t)kind)
        return -1;
    int d = (int)((handle >> 40) & 0xF);
    if (d >= ox_state.device_count)
        return -1;
    *device = d;
    if (extra != NULL)
        *extra = (uint8_t)(handle >> 32);
    *number = (uint32_t)handle;
    return 0;
}

/* -- initialisation and devices ------------------------------------------------- */

CUresult ox_require_init(const char *call)
{
    pthread_mutex_lock(&ox_state.lock);
    int ready = ox_state.initialised;
    pthread_mutex_unlock(&ox_state.lock);
    if (!ready)
        return ox_fail(CUDA_ERROR_NOT_INITIALIZED, call, "call cuInit(0) first");
    return CUDA_SUCCESS;
}

CUresult ox_check_device(int device, const char *call)
{
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (device < 0 || device >= ox_state.device_count)
        return ox_fail(CUDA_ERROR_INVALID_DEVICE, call,
                       "device %d does not exist: this process has %d OrionX device(s)", device,
                       ox_state.device_count);
    return CUDA_SUCCESS;
}

CUresult ox_device_session(int device, const char *call, struct ox_session **out)
{
    struct ox_config *config = &ox_state.config;
    CUresult status = ox_acquire_bind(config, 0, call);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_device *d = &ox_state.devices[device];
    pthread_mutex_lock(&d->open_lock);
    if (d->session == NULL)
        status = ox_session_open(config, device, call, &d->session);
    *out = d->session;
    pthread_mutex_unlock(&d->open_lock);
    return status;
}

/* At exit (exit() or the end of main; not _exit or a signal): the last
 * asynchronous ops go out, and a VM's serial port, which outlives the
 * process, carries the end of its session. */
__attribute__((destructor)) static void finish_sessions(void)
{
    for (int d = 0; d < ox_state.device_count; d++) {
        struct ox_device *dev = &ox_state.devices[d];
        if (pthread_mutex_trylock(&dev->open_lock) != 0)
            continue;
        if (dev->session != NULL)
            ox_session_finish(dev->session);
        pthread_mutex_unlock(&dev->open_lock);
    }
}

CUresult ox_device_uuid(int device, CUuuid *uuid, const char *call)
{
    /* FNV-1a over the vGPU id, spread over 16 bytes: stable for the vGPU.
     * In acquire mode the ids come with the binding. */
    CUresult status = ox_acquire_bind(&ox_state.config, 0, call);
    if (status != CUDA_SUCCESS)
        return status;
    const char *id = ox_state.config.routes[device].vgpu_id;
    uint64_t hash[2] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
    for (int half = 0; half < 2; half++) {
        for (const char *c = id; *c; c++)
            hash[half] = (hash[half] ^ (uint8_t)*c) * 0x100000001b3ull;
        hash[half] ^= (uint64_t)(device + half);
        hash[half] *= 0x100000001b3ull;
    }
    memcpy(uuid->bytes, hash, sizeof uuid->bytes);
    return CUDA_SUCCESS;
}

/* -- contexts --------------------------------------------------------------------- */

CUcontext ox_context_handle(int slot)
{
    struct ox_context *c = &ox_state.contexts[slot];
    return (CUcontext)(uintptr_t)ox_handle(OX_H_CONTEXT, c->device, c->generation,
                                            (uint32_t)slot);
}

CUcontext ox_primary_context(int device)
{
    return ox_context_handle(device);  /* slots 0..devices-1 are the primaries */
}

/* Slot of context handle CTX if alive, else -1. Called with the lock held. */
int ox_context_slot(CUcontext ctx)
{
    int device;
    uint8_t generation;
    uint32_t slot;
    if (ox_handle_parse((uint64_t)(uintptr_t)ctx, OX_H_CONTEXT, &device, &generation, &slot) < 0
        || slot >= OX_CONTEXTS_MAX)
        return -1;
    struct ox_context *c = &ox_state.contexts[slot];
    if (!c->in_use || c->generation != generation || c->device != device)
        return -1;
    return (int)slot;
}

CUresult ox_context_device(CUcontext ctx, const char *call, int *device)
{
    pthread_mutex_lock(&ox_state.lock);
    int slot = ox_context_slot(ctx);
    if (slot >= 0)
        *device = ox_state.contexts[slot].device;
    pthread_mutex_unlock(&ox_state.lock);
    if (slot < 0)
        return ox_fail(CUDA_ERROR_INVALID_CONTEXT, call,
                       "the context is not one of this process's live contexts (destroyed, "
                       "or not from cuCtxCreate / cuDevicePrimaryCtxRetain)");
    return CUDA_SUCCESS;
}

int ox_thread_has_context(void)
{
    return ox_thread.depth > 0;
}

CUresult ox_current_device(const char *call, int *device, struct ox_session **session)
{
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (ox_thread.depth == 0)
        return ox_fail(CUDA_ERROR_INVALID_CONTEXT, call,
                       "no current context on this thread: call cuCtxCreate, or "
                       "cuDevicePrimaryCtxRetain and cuCtxSetCurrent, first");
    pthread_mutex_lock(&ox_state.lock);
    int slot = ox_context_slot(ox_thread.stack[ox_thread.depth - 1]);
    int alive = slot >= 0 && (!ox_state.contexts[slot].primary
                              || ox_state.contexts[slot].primary_refs > 0
                              || ox_state.contexts[slot].primary_set_current);
    if (slot >= 0)
        *device = ox_state.contexts[slot].device;
    pthread_mutex_unlock(&ox_state.lock);
    if (!alive)
        return ox_fail(CUDA_ERROR_CONTEXT_IS_DESTROYED, call,
                       "the current context was destroyed or released: make a live context "
                       "current");
    if (session == NULL)
        return CUDA_SUCCESS;
    return ox_device_session(*device, call, session);
}

CUresult ox_stream_target(CUstream stream, const char *call, int *device,
                          struct ox_session **session, uint64_t *server_stream)
{
    uint64_t value = (uint64_t)(uintptr_t)stream;
    if (value == 0 || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD) {
        *server_stream = 0;
        return ox_current_device(call, device, session);
    }
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    uint32_t number;
    if (ox_handle_parse(value, OX_H_STREAM, device, NULL, &number) < 0)
        return ox_fail(CUDA_ERROR_INVALID_HANDLE, call,
                       "the stream is not one of this process's streams");
    *server_stream = number;
    return ox_device_session(*device, call, session);
}

/* -- memory tables ------------------------------------------------------------------ */

int ox_grow(void **array, size_t *capacity, size_t count, size_t element_bytes)
{
    if (count < *capacity)
        return 0;
    size_t wanted = *capacity ? *capacity * 2 : 16;
    void *grown = realloc(*array, wanted * element_bytes);
    if (grown == NULL)
        return -1;
    *array = grown;
    *capacity = wanted;
    return 0;
}

/* Index of the first range whose base is above ADDRESS (ranges sorted by base). */
static size_t upper_bound(const struct ox_range *ranges, size_t count, uint64_t address)
{
    size_t low = 0, high = count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (ranges[middle].base <= address)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

static int insert(struct ox_ranges *table, struct ox_range range)
{
    if (ox_grow((void **)&table->ranges, &table->capacity, table->count, sizeof range) < 0)
        return -1;
    size_t at = upper_bound(table->ranges, table->count, range.base);
    memmove(&table->ranges[at + 1], &table->ranges[at],
            (table->count - at) * sizeof range);
    table->ranges[at] = range;
    table->count++;
    return 0;
}

static int find(const struct ox_ranges *table, uint64_t address)
{
    size_t at = upper_bound(table->ranges, table->count, address);
    if (at == 0)
        return -1;
    const struct ox_range *r = &table->ranges[at - 1];
    return address - r->base < r->bytes ? (int)(at - 1) : -1;
}

static void remove_at(struct ox_ranges *table, size_t at)
{
    memmove(&table->ranges[at], &table->ranges[at + 1],
            (table->count - at - 1) * sizeof table->ranges[0]);
    table->count--;
}

CUresult ox_record_allocation(int device, CUdeviceptr base, size_t bytes, const char *call)
{
    pthread_mutex_lock(&ox_state.lock);
    int rc = insert(&ox_state.device_memory, (struct ox_range){base, bytes, device, 0, 0});
    pthread_mutex_unlock(&ox_state.lock);
    if (rc < 0)
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory to track an allocation");
    return CUDA_SUCCESS;
}

int ox_forget_allocation(CUdeviceptr base, int *device)
{
    pthread_mutex_lock(&ox_state.lock);
    int at = find(&ox_state.device_memory, base);
    int found = at >= 0 && ox_state.device_memory.ranges[at].base == base;
    if (found) {
        *device = ox_state.device_memory.ranges[at].device;
        remove_at(&ox_state.device_memory, (size_t)at);
    }
    pthread_mutex_unlock(&ox_state.lock);
    return found ? 0 : -1;
}

int ox_find_allocation(CUdeviceptr ptr, CUdeviceptr *base, size_t *bytes, int *device)
{
    pthread_mutex_lock(&ox_state.lock);
    int at = find(&ox_state.device_memory, ptr);
    if (at >= 0) {
        const struct ox_range *r = &ox_state.device_memory.ranges[at];
        *base = r->base;
        *bytes = r->bytes;
        *device = r->device;
    }
    pthread_mutex_unlock(&ox_state.lock);
    return at >= 0 ? 0 : -1;
}

CUresult ox_record_host(void *base, size_t bytes, unsigned flags, int registered,
                        const char *call)
{
    pthread_mutex_lock(&ox_state.lock);
    int overlaps = find(&ox_state.host_memory, (uintptr_t)base) >= 0
                   || find(&ox_state.host_memory, (uintptr_t)base + bytes - 1) >= 0;
    int rc = overlaps ? 0
                      : insert(&ox_state.host_memory,
                               (struct ox_range){(uintptr_t)base, bytes, -1, flags, registered});
    pthread_mutex_unlock(&ox_state.lock);
    if (overlaps)
        return ox_fail(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, call,
                       "host memory at %p is already registered or allocated by this library",
                       base);
    if (rc < 0)
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory to track host memory");
    return CUDA_SUCCESS;
}

int ox_forget_host(void *base, int registered)
{
    pthread_mutex_lock(&ox_state.lock);
    int at = find(&ox_state.host_memory, (uintptr_t)base);
    int found = at >= 0 && ox_state.host_memory.ranges[at].base == (uintptr_t)base
                && ox_state.host_memory.ranges[at].registered == registered;
    if (found)
        remove_at(&ox_state.host_memory, (size_t)at);
    pthread_mutex_unlock(&ox_state.lock);
    return found ? 0 : -1;
}

int ox_find_host(const void *ptr, void **base, size_t *bytes, unsigned *flags)
{
    pthread_mutex_lock(&ox_state.lock);
    int at = find(&ox_state.host_memory, (uintptr_t)ptr);
    if (at >= 0) {
        const struct ox_range *r = &ox_state.host_memory.ranges[at];
        *base = (void *)(uintptr_t)r->base;
        *bytes = r->bytes;
        *flags = r->flags;
    }
    pthread_mutex_unlock(&ox_state.lock);
    return at >= 0 ? 0 : -1;
}
