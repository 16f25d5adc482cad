/* Device memory, copies, memsets, client-side host memory and pointer
 * attributes. */
#include <stdlib.h>
#include <string.h>

#include "ox_api.h"
#include "ox_state.h"

#define HOST_ALIGNMENT_BYTES 4096

CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
    static const char call[] = "cuMemGetInfo";
    int device;
    struct ox_session *session;
    CUresult status = ox_current_device(call, &device, &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_mem_get_info_reply reply;
    status = ox_rpc_mem_get_info(session, call, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    if (free_bytes != NULL)
        *free_bytes = (size_t)reply.free_bytes;
    if (total_bytes != NULL)
        *total_bytes = (size_t)reply.total_bytes;
    return CUDA_SUCCESS;
}

CUresult ox_device_alloc(int device, struct ox_session *session, size_t bytes,
                         CUdeviceptr *dptr, const char *call)
{
    if (dptr == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "dptr is NULL");
    if (bytes == 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "an allocation of 0 bytes: ask for at least one byte");
    struct ox_mem_alloc_request request = {bytes};
    struct ox_mem_alloc_reply reply;
    CUresult status = ox_rpc_mem_alloc(session, call, &request, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    status = ox_record_allocation(device, reply.dptr, bytes, call);
    if (status != CUDA_SUCCESS) {
        struct ox_mem_free_request free_request = {reply.dptr};
        ox_rpc_mem_free(session, call, &free_request);
        return status;
    }
    *dptr = reply.dptr;
    return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    static const char call[] = "cuMemAlloc";
    int device;
    struct ox_session *session;
    CUresult status = ox_current_device(call, &device, &session);
    return status != CUDA_SUCCESS ? status
                                  : ox_device_alloc(device, session, bytesize, dptr, call);
}

CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    static const char call[] = "cuMemFree";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS || dptr == 0)
        return status;  /* freeing 0 does nothing (the runtime's cudaFree(0) comes here) */
    int device;
    if (ox_forget_allocation(dptr, &device) < 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "0x%llx is not the start of a device allocation of this process",
                       (unsigned long long)dptr);
    ox_pool_forget(dptr);  /* cuMemFree takes stream-ordered allocations too */
    struct ox_session *session;
    status = ox_device_session(device, call, &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_mem_free_request request = {dptr};
    return ox_rpc_mem_free(session, call, &request);
}

CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    static const char call[] = "cuMemGetAddressRange";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    CUdeviceptr base;
    size_t bytes;
    int device;
    if (ox_find_allocation(dptr, &base, &bytes, &device) < 0)
        return ox_fail(CUDA_ERROR_NOT_FOUND, call,
                       "0x%llx is in no device allocation of this process",
                       (unsigned long long)dptr);
    if (pbase != NULL)
        *pbase = base;
    if (psize != NULL)
        *psize = bytes;
    return CUDA_SUCCESS;
}

/* -- host memory: this client's own ------------------------------------------------ */

static CUresult host_alloc(void **pp, size_t bytesize, unsigned int flags, const char *call)
{
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (pp == NULL || bytesize == 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pp is NULL or bytesize is 0");
    if (flags & CU_MEMHOSTALLOC_DEVICEMAP)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "CU_MEMHOSTALLOC_DEVICEMAP: mapped host memory cannot reach a remote "
                       "GPU; allocate without it and copy with cuMemcpyHtoD/DtoH");
    void *p = NULL;
    if (posix_memalign(&p, HOST_ALIGNMENT_BYTES, bytesize) != 0)
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for %zu bytes", bytesize);
    status = ox_record_host(p, bytesize, flags, 0, call);
    if (status != CUDA_SUCCESS) {
        free(p);
        return status;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    return host_alloc(pp, bytesize, 0, "cuMemAllocHost");
}

CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    return host_alloc(pp, bytesize, Flags, "cuMemHostAlloc");
}

CUresult cuMemFreeHost(void *p)
{
    static const char call[] = "cuMemFreeHost";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (ox_forget_host(p, 0) < 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "%p is not host memory from cuMemAllocHost or cuMemHostAlloc", p);
    free(p);
    return CUDA_SUCCESS;
}

CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    static const char call[] = "cuMemHostRegister";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (p == NULL || bytesize == 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "p is NULL or bytesize is 0");
    if (Flags & (CU_MEMHOSTREGISTER_DEVICEMAP | CU_MEMHOSTREGISTER_IOMEMORY))
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "CU_MEMHOSTREGISTER_DEVICEMAP and _IOMEMORY map host memory into the "
                       "GPU, which a remote GPU cannot reach: register without them");
    return ox_record_host(p, bytesize, Flags, 1, call);
}

CUresult cuMemHostUnregister(void *p)
{
    static const char call[] = "cuMemHostUnregister";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (ox_forget_host(p, 1) < 0)
        return ox_fail(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, call,
                       "%p was not registered with cuMemHostRegister", p);
    return CUDA_SUCCESS;
}

CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
    (void)pdptr;
    (void)p;
    (void)Flags;
    return ox_fail(CUDA_ERROR_NOT_SUPPORTED, "cuMemHostGetDevicePointer",
                   "mapped host memory cannot reach a remote GPU: copy the data with "
                   "cuMemcpyHtoD instead");
}

/* -- copies ---------------------------------------------------------------------- */

static CUresult htod(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream, int async,
                     const char *call)
{
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(stream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    if (src == NULL && bytes)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "srcHost is NULL");
    for (size_t done = 0; done < bytes && status == CUDA_SUCCESS;) {
        size_t chunk = bytes - done < OX_FRAME_DATA_MAX_BYTES ? bytes - done
                                                              : OX_FRAME_DATA_MAX_BYTES;
        const uint8_t *from = (const uint8_t *)src + done;
        if (async) {
            struct ox_memcpy_htod_async_request request = {dst + done, server_stream};
            status = ox_rpc_memcpy_htod_async(session, call, &request, from, chunk);
        } else {
            struct ox_memcpy_htod_request request = {dst + done};
            status = ox_rpc_memcpy_htod(session, call, &request, from, chunk);
        }
        done += chunk;
    }
    return status;
}

static CUresult dtoh(void *dst, CUdeviceptr src, size_t bytes, CUstream stream, const char *call)
{
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(stream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    if (dst == NULL && bytes)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "dstHost is NULL");
    for (size_t done = 0; done < bytes && status == CUDA_SUCCESS;) {
        size_t chunk = bytes - done < OX_FRAME_DATA_MAX_BYTES ? bytes - done
                                                              : OX_FRAME_DATA_MAX_BYTES;
        struct ox_memcpy_dtoh_request request = {src + done, chunk, server_stream};
        size_t got = 0;
        status = ox_rpc_memcpy_dtoh(session, call, &request, (uint8_t *)dst + done, chunk, &got);
        if (status == CUDA_SUCCESS && got != chunk)
            return ox_fail(CUDA_ERROR_UNKNOWN, call, "the GPU server sent %zu of %zu bytes",
                           got, chunk);
        done += chunk;
    }
    return status;
}

static CUresult dtod(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream, int async,
                     const char *call)
{
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(stream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    if (async) {
        struct ox_memcpy_dtod_async_request request = {dst, src, bytes, server_stream};
        return ox_rpc_memcpy_dtod_async(session, call, &request);
    }
    struct ox_memcpy_dtod_request request = {dst, src, bytes, server_stream};
    return ox_rpc_memcpy_dtod(session, call, &request);
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
    return htod(dstDevice, srcHost, ByteCount, NULL, 0, "cuMemcpyHtoD");
}

CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
    return dtoh(dstHost, srcDevice, ByteCount, NULL, "cuMemcpyDtoH");
}

CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount)
{
    return dtod(dstDevice, srcDevice, ByteCount, NULL, 0, "cuMemcpyDtoD");
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount,
                              CUstream hStream)
{
    if (ox_capture_active(hStream))
        return ox_capture_copy(hStream, dstDevice, (CUdeviceptr)(uintptr_t)srcHost, ByteCount,
                               "cuMemcpyHtoDAsync");
    return htod(dstDevice, srcHost, ByteCount, hStream, 1, "cuMemcpyHtoDAsync");
}

CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                              CUstream hStream)
{
    if (ox_capture_active(hStream))
        return ox_capture_copy(hStream, (CUdeviceptr)(uintptr_t)dstHost, srcDevice, ByteCount,
                               "cuMemcpyDtoHAsync");
    return dtoh(dstHost, srcDevice, ByteCount, hStream, "cuMemcpyDtoHAsync");
}

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount,
                              CUstream hStream)
{
    if (ox_capture_active(hStream))
        return ox_capture_copy(hStream, dstDevice, srcDevice, ByteCount, "cuMemcpyDtoDAsync");
    return dtod(dstDevice, srcDevice, ByteCount, hStream, 1, "cuMemcpyDtoDAsync");
}

/* The device of PTR's allocation, else -1 (host memory). */
static int device_of(CUdeviceptr ptr)
{
    CUdeviceptr base;
    size_t bytes;
    int device;
    return ox_find_allocation(ptr, &base, &bytes, &device) == 0 ? device : -1;
}

static CUresult peer(CUdeviceptr dst, CUcontext dst_context, CUdeviceptr src,
                     CUcontext src_context, size_t bytes, CUstream stream, int async,
                     const char *call);

static CUresult unified(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream,
                        int async, const char *call)
{
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    int dst_device = device_of(dst), src_device = device_of(src);
    if (dst_device >= 0 && src_device >= 0 && dst_device != src_device)
        return peer(dst, ox_primary_context(dst_device), src, ox_primary_context(src_device),
                    bytes, stream, async, call);
    if (dst_device >= 0 && src_device >= 0)
        return dtod(dst, src, bytes, stream, async, call);
    if (dst_device >= 0)
        return htod(dst, (const void *)(uintptr_t)src, bytes, stream, async, call);
    if (src_device >= 0)
        return dtoh((void *)(uintptr_t)dst, src, bytes, stream, call);
    if (bytes)
        memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, bytes);
    return CUDA_SUCCESS;
}

CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount)
{
    return unified(dst, src, ByteCount, NULL, 0, "cuMemcpy");
}

CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream)
{
    if (ox_capture_active(hStream))
        return ox_capture_copy(hStream, dst, src, ByteCount, "cuMemcpyAsync");
    return unified(dst, src, ByteCount, hStream, 1, "cuMemcpyAsync");
}

/* Each vGPU is its own session, possibly on another host, so there is no
 * peer access (cuDeviceCanAccessPeer answers 0): a copy between devices is
 * staged through this process's memory, a chunk at a time, and is complete
 * when the call returns. The asynchronous form first waits for its stream,
 * which keeps it in the stream's order. */
#define PEER_STAGING_BYTES (8u << 20)

static CUresult device_dtod(int device, CUdeviceptr dst, CUdeviceptr src, size_t bytes,
                            const char *call)
{
    struct ox_session *session;
    CUresult status = ox_device_session(device, call, &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_memcpy_dtod_request request = {dst, src, bytes, 0};
    return ox_rpc_memcpy_dtod(session, call, &request);
}

static CUresult staged(int dst_device, CUdeviceptr dst, int src_device, CUdeviceptr src,
                       size_t bytes, const char *call)
{
    struct ox_session *from, *to;
    CUresult status = ox_device_session(src_device, call, &from);
    if (status == CUDA_SUCCESS)
        status = ox_device_session(dst_device, call, &to);
    if (status != CUDA_SUCCESS)
        return status;
    size_t staging_bytes = bytes < PEER_STAGING_BYTES ? bytes : PEER_STAGING_BYTES;
    uint8_t *staging = malloc(staging_bytes ? staging_bytes : 1);
    if (staging == NULL)
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call,
                       "no host memory to stage a copy between devices (%zu bytes)",
                       staging_bytes);
    for (size_t done = 0; done < bytes && status == CUDA_SUCCESS;) {
        size_t chunk = bytes - done < staging_bytes ? bytes - done : staging_bytes;
        struct ox_memcpy_dtoh_request read = {src + done, chunk, 0};
        size_t got = 0;
        status = ox_rpc_memcpy_dtoh(from, call, &read, staging, chunk, &got);
        if (status == CUDA_SUCCESS && got != chunk)
            status = ox_fail(CUDA_ERROR_UNKNOWN, call, "the GPU server sent %zu of %zu bytes",
                             got, chunk);
        if (status == CUDA_SUCCESS) {
            struct ox_memcpy_htod_request write = {dst + done};
            status = ox_rpc_memcpy_htod(to, call, &write, staging, chunk);
        }
        done += chunk;
    }
    free(staging);
    return status;
}

static CUresult peer(CUdeviceptr dst, CUcontext dst_context, CUdeviceptr src,
                     CUcontext src_context, size_t bytes, CUstream stream, int async,
                     const char *call)
{
    CUresult status = ox_require_init(call);
    int dst_device, src_device;
    if (status == CUDA_SUCCESS)
        status = ox_context_device(dst_context, call, &dst_device);
    if (status == CUDA_SUCCESS)
        status = ox_context_device(src_context, call, &src_device);
    if (status != CUDA_SUCCESS)
        return status;
    if (bytes == 0)
        return CUDA_SUCCESS;
    if (async && (status = cuStreamSynchronize(stream)) != CUDA_SUCCESS)
        return status;
    if (dst_device == src_device)
        return device_dtod(dst_device, dst, src, bytes, call);
    return staged(dst_device, dst, src_device, src, bytes, call);
}

CUresult cuMemcpyPeer(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                      CUcontext srcContext, size_t ByteCount)
{
    return peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, NULL, 0,
                "cuMemcpyPeer");
}

CUresult cuMemcpyPeerAsync(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                           CUcontext srcContext, size_t ByteCount, CUstream hStream)
{
    return peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, hStream, 1,
                "cuMemcpyPeerAsync");
}

/* -- memsets ---------------------------------------------------------------------- */

/* One body for the three element sizes: each has its own op (the server
 * fills with the element's pattern), synchronous or pipelined. */
static CUresult memset_elements(CUdeviceptr dst, uint32_t value, int element_bytes, size_t n,
                                CUstream stream, int async, const char *call)
{
    if (async && ox_capture_active(stream))
        return ox_capture_memset(stream, dst, value, (unsigned)element_bytes, n, call);
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(stream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    switch (element_bytes) {
    case 1:
        if (async) {
            struct ox_memset_d8_async_request request = {dst, (uint8_t)value, n, server_stream};
            return ox_rpc_memset_d8_async(session, call, &request);
        } else {
            struct ox_memset_d8_request request = {dst, (uint8_t)value, n, server_stream};
            return ox_rpc_memset_d8(session, call, &request);
        }
    case 2:
        if (async) {
            struct ox_memset_d16_async_request request = {dst, (uint16_t)value, n,
                                                          server_stream};
            return ox_rpc_memset_d16_async(session, call, &request);
        } else {
            struct ox_memset_d16_request request = {dst, (uint16_t)value, n, server_stream};
            return ox_rpc_memset_d16(session, call, &request);
        }
    default:
        if (async) {
            struct ox_memset_d32_async_request request = {dst, value, n, server_stream};
            return ox_rpc_memset_d32_async(session, call, &request);
        } else {
            struct ox_memset_d32_request request = {dst, value, n, server_stream};
            return ox_rpc_memset_d32(session, call, &request);
        }
    }
}

CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N)
{
    return memset_elements(dstDevice, uc, 1, N, NULL, 0, "cuMemsetD8");
}

CUresult cuMemsetD16_v2(CUdeviceptr dstDevice, unsigned short us, size_t N)
{
    return memset_elements(dstDevice, us, 2, N, NULL, 0, "cuMemsetD16");
}

CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N)
{
    return memset_elements(dstDevice, ui, 4, N, NULL, 0, "cuMemsetD32");
}

CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream)
{
    return memset_elements(dstDevice, uc, 1, N, hStream, 1, "cuMemsetD8Async");
}

CUresult cuMemsetD16Async(CUdeviceptr dstDevice, unsigned short us, size_t N, CUstream hStream)
{
    return memset_elements(dstDevice, us, 2, N, hStream, 1, "cuMemsetD16Async");
}

CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream)
{
    return memset_elements(dstDevice, ui, 4, N, hStream, 1, "cuMemsetD32Async");
}

/* -- pointer attributes ------------------------------------------------------------- */

struct pointer_facts {
    int is_device;
    int device;
    uint64_t base, bytes;
};

static int pointer_facts(CUdeviceptr ptr, struct pointer_facts *facts)
{
    CUdeviceptr base;
    size_t bytes;
    int device;
    if (ox_find_allocation(ptr, &base, &bytes, &device) == 0) {
        *facts = (struct pointer_facts){1, device, base, bytes};
        return 0;
    }
    void *host_base;
    unsigned flags;
    if (ox_find_host((const void *)(uintptr_t)ptr, &host_base, &bytes, &flags) == 0) {
        *facts = (struct pointer_facts){0, 0, (uintptr_t)host_base, bytes};
        return 0;
    }
    return -1;
}

static CUresult pointer_attribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr,
                                  const struct pointer_facts *f, const char *call)
{
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        *(CUcontext *)data = ox_primary_context(f->device);
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned int *)data = f->is_device ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        if (!f->is_device)
            return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                           "host memory has no device address on a remote GPU");
        *(CUdeviceptr *)data = ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (f->is_device)
            return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                           "device memory of a remote GPU has no host address");
        *(void **)data = (void *)(uintptr_t)ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
    case CU_POINTER_ATTRIBUTE_MAPPED:
        *(int *)data = 1;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        *(int *)data = 0;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        *(unsigned long long *)data = f->base;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        *(int *)data = f->device;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        *(CUdeviceptr *)data = f->base;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        *(size_t *)data = (size_t)f->bytes;
        return CUDA_SUCCESS;
    default:
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "pointer attribute %d is not served by the OrionX CUDA library",
                       (int)attribute);
    }
}

CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    static const char call[] = "cuPointerGetAttribute";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (data == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "data is NULL");
    struct pointer_facts facts;
    if (pointer_facts(ptr, &facts) < 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "0x%llx is neither device memory of this process nor host memory it "
                       "allocated or registered", (unsigned long long)ptr);
    return pointer_attribute(data, attribute, ptr, &facts, call);
}

/* Bytes pointer_attribute writes for ATTRIBUTE. */
static size_t attribute_bytes(CUpointer_attribute attribute)
{
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        return 8;
    default:
        return sizeof(int);
    }
}

CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
                                void **data, CUdeviceptr ptr)
{
    static const char call[] = "cuPointerGetAttributes";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (numAttributes && (attributes == NULL || data == NULL))
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "attributes or data is NULL");
    struct pointer_facts facts;
    int known = pointer_facts(ptr, &facts) == 0;
    for (unsigned int i = 0; i < numAttributes; i++) {
        if (data[i] == NULL)
            continue;
        if (!known) {
            /* CUDA's rule for this call: an unknown pointer reads as zeros. */
            memset(data[i], 0, attribute_bytes(attributes[i]));
            continue;
        }
        status = pointer_attribute(data[i], attributes[i], ptr, &facts, call);
        if (status != CUDA_SUCCESS)
            return status;
    }
    return CUDA_SUCCESS;
}

/* -- what no remote GPU can give --------------------------------------------------- */

/* Managed memory is paged between this process and the GPU on demand; a
 * vGPU's GPU is in another machine or process (MANAGED_MEMORY answers 0). */
CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    (void)dptr, (void)bytesize, (void)flags;
    return ox_fail(CUDA_ERROR_NOT_SUPPORTED, "cuMemAllocManaged",
                   "managed memory needs the GPU to page this process's memory, which a "
                   "pooled GPU cannot (CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY is 0): allocate with "
                   "cuMemAlloc and copy explicitly");
}

/* IPC handles let processes on one GPU's host share its memory or events;
 * a vGPU's memory belongs to this process's session on its GPU server. */
static CUresult no_ipc(const char *call)
{
    return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                   "IPC handles share a local GPU's memory and events between processes; a "
                   "vGPU's belong to this process's session on its GPU server and cannot be "
                   "opened by another process: exchange the data through host memory");
}

CUresult cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr)
{
    (void)pHandle, (void)dptr;
    return no_ipc("cuIpcGetMemHandle");
}

CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags)
{
    (void)pdptr, (void)handle, (void)Flags;
    return no_ipc("cuIpcOpenMemHandle");
}

CUresult cuIpcCloseMemHandle(CUdeviceptr dptr)
{
    (void)dptr;
    return no_ipc("cuIpcCloseMemHandle");
}

CUresult cuIpcGetEventHandle(CUipcEventHandle *pHandle, CUevent event)
{
    (void)pHandle, (void)event;
    return no_ipc("cuIpcGetEventHandle");
}

CUresult cuIpcOpenEventHandle(CUevent *phEvent, CUipcEventHandle handle)
{
    (void)phEvent, (void)handle;
    return no_ipc("cuIpcOpenEventHandle");
}
