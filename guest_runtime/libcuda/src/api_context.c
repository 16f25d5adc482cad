/* Primary and created contexts, and the calling thread's context stack.
 * Contexts live in this client only: all contexts of a device share its one
 * session with the GPU server (its memory, streams and modules). Context
 * slot DEV is device DEV's primary context. */
#include <string.h>

#include "ox_state.h"

CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    static const char call[] = "cuDevicePrimaryCtxRetain";
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (pctx == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pctx is NULL");
    pthread_mutex_lock(&ox_state.lock);
    ox_state.contexts[dev].primary_refs++;
    *pctx = ox_context_handle(dev);
    pthread_mutex_unlock(&ox_state.lock);
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    static const char call[] = "cuDevicePrimaryCtxRelease";
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    pthread_mutex_lock(&ox_state.lock);
    int refs = ox_state.contexts[dev].primary_refs;
    if (refs > 0)
        ox_state.contexts[dev].primary_refs--;
    pthread_mutex_unlock(&ox_state.lock);
    if (refs == 0)
        return ox_fail(CUDA_ERROR_INVALID_CONTEXT, call,
                       "the primary context of device %d is not retained", dev);
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    static const char call[] = "cuDevicePrimaryCtxSetFlags";
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (flags & ~(unsigned)CU_CTX_FLAGS_MASK)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "flags 0x%x are not context flags",
                       flags);
    pthread_mutex_lock(&ox_state.lock);
    ox_state.contexts[dev].flags = flags;
    pthread_mutex_unlock(&ox_state.lock);
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    static const char call[] = "cuDevicePrimaryCtxGetState";
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (flags == NULL || active == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "flags or active is NULL");
    pthread_mutex_lock(&ox_state.lock);
    *flags = ox_state.contexts[dev].flags;
    *active = ox_state.contexts[dev].primary_refs > 0;
    pthread_mutex_unlock(&ox_state.lock);
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    static const char call[] = "cuDevicePrimaryCtxReset";
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_session *session;
    status = ox_device_session(dev, call, &session);
    if (status == CUDA_SUCCESS)
        status = ox_rpc_ctx_synchronize(session, call);
    ox_context_storage_ended(ox_primary_context(dev));
    pthread_mutex_lock(&ox_state.lock);
    ox_state.contexts[dev].primary_refs = 0;
    ox_state.contexts[dev].primary_set_current = 0;
    ox_state.contexts[dev].flags = 0;
    pthread_mutex_unlock(&ox_state.lock);
    return status;
}

/* -- the calling thread's stack -------------------------------------------------- */

static CUresult push(CUcontext ctx, const char *call)
{
    if (ox_thread.depth == OX_CONTEXT_STACK_MAX)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "more than %d contexts pushed on this thread: pop some first",
                       OX_CONTEXT_STACK_MAX);
    ox_thread.stack[ox_thread.depth++] = ctx;
    return CUDA_SUCCESS;
}

/* A context made current without a retain stays usable, as in CUDA. */
static void note_current(CUcontext ctx)
{
    pthread_mutex_lock(&ox_state.lock);
    int slot = ox_context_slot(ctx);
    if (slot >= 0 && ox_state.contexts[slot].primary)
        ox_state.contexts[slot].primary_set_current = 1;
    pthread_mutex_unlock(&ox_state.lock);
}

static CUresult create(CUcontext *pctx, unsigned int flags, CUdevice dev, const char *call)
{
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (pctx == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pctx is NULL");
    if (flags & CU_CTX_MAP_HOST)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "CU_CTX_MAP_HOST: mapped host memory cannot reach a remote GPU; create "
                       "the context without it");
    struct ox_session *session;
    status = ox_device_session(dev, call, &session);
    if (status != CUDA_SUCCESS)
        return status;
    pthread_mutex_lock(&ox_state.lock);
    int slot = -1;
    for (int i = ox_state.device_count; i < OX_CONTEXTS_MAX && slot < 0; i++)
        if (!ox_state.contexts[i].in_use)
            slot = i;
    if (slot >= 0) {
        struct ox_context *c = &ox_state.contexts[slot];
        uint8_t generation = (uint8_t)(c->generation + 1);
        *c = (struct ox_context){.in_use = 1, .device = dev, .generation = generation,
                                 .flags = flags};
        *pctx = ox_context_handle(slot);
    }
    pthread_mutex_unlock(&ox_state.lock);
    if (slot < 0)
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call,
                       "this process has %d contexts already: destroy some first",
                       OX_CONTEXTS_MAX - ox_state.device_count);
    return push(*pctx, call);
}

CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return create(pctx, flags, dev, "cuCtxCreate");
}

CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams,
                        unsigned int flags, CUdevice dev)
{
    if (paramsArray != NULL && numParams > 0)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, "cuCtxCreate_v3",
                       "execution affinity cannot be set on a vGPU (its compute share is the "
                       "pool's): pass no affinity parameters");
    return create(pctx, flags, dev, "cuCtxCreate_v3");
}

CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams,
                        unsigned int flags, CUdevice dev)
{
    if (ctxCreateParams != NULL
        && ((ctxCreateParams->execAffinityParams && ctxCreateParams->numExecAffinityParams > 0)
            || ctxCreateParams->cigParams != NULL))
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, "cuCtxCreate_v4",
                       "execution affinity and CIG parameters cannot be set on a vGPU: pass "
                       "none");
    return create(pctx, flags, dev, "cuCtxCreate_v4");
}

CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    static const char call[] = "cuCtxDestroy";
    int device;
    CUresult status = ox_context_device(ctx, call, &device);
    if (status != CUDA_SUCCESS)
        return status;
    pthread_mutex_lock(&ox_state.lock);
    int slot = ox_context_slot(ctx);
    int primary = slot >= 0 && ox_state.contexts[slot].primary;
    pthread_mutex_unlock(&ox_state.lock);
    if (primary)
        return ox_fail(CUDA_ERROR_INVALID_CONTEXT, call,
                       "a primary context is released with cuDevicePrimaryCtxRelease, not "
                       "destroyed");
    struct ox_session *session;
    status = ox_device_session(device, call, &session);
    if (status == CUDA_SUCCESS)
        status = ox_rpc_ctx_synchronize(session, call);
    ox_context_storage_ended(ctx);  /* its destructors see it still valid */
    pthread_mutex_lock(&ox_state.lock);
    if (slot >= 0 && ox_context_slot(ctx) == slot)
        ox_state.contexts[slot].in_use = 0;
    pthread_mutex_unlock(&ox_state.lock);
    /* Off this thread's stack; other threads find it dead when they use it. */
    int kept = 0;
    for (int i = 0; i < ox_thread.depth; i++)
        if (ox_thread.stack[i] != ctx)
            ox_thread.stack[kept++] = ox_thread.stack[i];
    ox_thread.depth = kept;
    return status;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    static const char call[] = "cuCtxPushCurrent";
    int device;
    CUresult status = ox_context_device(ctx, call, &device);
    if (status != CUDA_SUCCESS)
        return status;
    note_current(ctx);
    return push(ctx, call);
}

CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    static const char call[] = "cuCtxPopCurrent";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (ox_thread.depth == 0)
        return ox_fail(CUDA_ERROR_INVALID_CONTEXT, call, "no current context to pop");
    CUcontext top = ox_thread.stack[--ox_thread.depth];
    if (pctx != NULL)
        *pctx = top;
    return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
    static const char call[] = "cuCtxSetCurrent";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (ctx == NULL) {
        if (ox_thread.depth > 0)
            ox_thread.depth--;
        return CUDA_SUCCESS;
    }
    int device;
    status = ox_context_device(ctx, call, &device);
    if (status != CUDA_SUCCESS)
        return status;
    note_current(ctx);
    if (ox_thread.depth == 0)
        return push(ctx, call);
    ox_thread.stack[ox_thread.depth - 1] = ctx;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    static const char call[] = "cuCtxGetCurrent";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (pctx == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pctx is NULL");
    *pctx = ox_thread.depth ? ox_thread.stack[ox_thread.depth - 1] : NULL;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *device)
{
    static const char call[] = "cuCtxGetDevice";
    if (device == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "device is NULL");
    /* The CUDA runtime asks before it has made a context current: the
     * error is its answer, not a failure worth a line on stderr. */
    if (ox_require_init(call) == CUDA_SUCCESS && !ox_thread_has_context())
        return CUDA_ERROR_INVALID_CONTEXT;
    int current;
    CUresult status = ox_current_device(call, &current, NULL);
    if (status == CUDA_SUCCESS)
        *device = current;
    return status;
}

CUresult cuCtxGetFlags(unsigned int *flags)
{
    static const char call[] = "cuCtxGetFlags";
    if (flags == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "flags is NULL");
    int device;
    CUresult status = ox_current_device(call, &device, NULL);
    if (status != CUDA_SUCCESS)
        return status;
    pthread_mutex_lock(&ox_state.lock);
    int slot = ox_context_slot(ox_thread.stack[ox_thread.depth - 1]);
    *flags = slot >= 0 ? ox_state.contexts[slot].flags : 0;
    pthread_mutex_unlock(&ox_state.lock);
    return CUDA_SUCCESS;
}

CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
    static const char call[] = "cuCtxGetApiVersion";
    if (version == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "version is NULL");
    int device;
    CUresult status = ctx ? ox_context_device(ctx, call, &device)
                          : ox_current_device(call, &device, NULL);
    if (status == CUDA_SUCCESS)
        *version = CUDA_VERSION;
    return status;
}

CUresult cuCtxSynchronize(void)
{
    static const char call[] = "cuCtxSynchronize";
    int device;
    struct ox_session *session;
    CUresult status = ox_current_device(call, &device, &session);
    return status != CUDA_SUCCESS ? status : ox_rpc_ctx_synchronize(session, call);
}

CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    if (leastPriority != NULL)
        *leastPriority = 0;
    if (greatestPriority != NULL)
        *greatestPriority = 0;
    return ox_require_init("cuCtxGetStreamPriorityRange");
}

/* vGPUs share no address space (cuDeviceCanAccessPeer answers 0), so peer
 * access cannot be enabled; cuMemcpyPeer copies between devices all the same. */
CUresult cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int Flags)
{
    static const char call[] = "cuCtxEnablePeerAccess";
    int current, peer;
    struct ox_session *session;
    CUresult status = ox_current_device(call, &current, &session);
    if (status == CUDA_SUCCESS)
        status = ox_context_device(peerContext, call, &peer);
    if (status != CUDA_SUCCESS)
        return status;
    if (Flags != 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "Flags must be 0, got %u", Flags);
    return ox_fail(CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, call,
                   "devices %d and %d are separate vGPUs with no shared address space "
                   "(cuDeviceCanAccessPeer says 0): copy between them with cuMemcpyPeer",
                   current, peer);
}

CUresult cuCtxDisablePeerAccess(CUcontext peerContext)
{
    static const char call[] = "cuCtxDisablePeerAccess";
    int peer;
    CUresult status = ox_require_init(call);
    if (status == CUDA_SUCCESS)
        status = ox_context_device(peerContext, call, &peer);
    if (status != CUDA_SUCCESS)
        return status;
    return ox_fail(CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, call,
                   "peer access to device %d was never enabled (vGPUs cannot have it)", peer);
}
