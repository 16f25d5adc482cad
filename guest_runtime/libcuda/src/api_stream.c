/* Streams, events, modules and kernel launches. Their handles carry the
 * device and the server's number (ox_handle). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ox_state.h"

#define STREAM_FLAG_NON_BLOCKING 0x1  /* in a stream handle's extra bits */

/* Parse a handle of KIND; CALL and WHAT for the error. */
static CUresult parse(const void *handle, enum ox_handle_kind kind, const char *call,
                      const char *what, int *device, uint8_t *extra, uint32_t *number,
                      struct ox_session **session)
{
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (ox_handle_parse((uint64_t)(uintptr_t)handle, kind, device, extra, number) < 0)
        return ox_fail(CUDA_ERROR_INVALID_HANDLE, call, "the %s is not one of this process's",
                       what);
    return ox_device_session(*device, call, session);
}

/* -- streams ------------------------------------------------------------------------- */

CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
    static const char call[] = "cuStreamCreate";
    int device;
    struct ox_session *session;
    CUresult status = ox_current_device(call, &device, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (phStream == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "phStream is NULL");
    if (Flags & ~(unsigned)CU_STREAM_NON_BLOCKING)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "flags 0x%x are not stream flags", Flags);
    struct ox_stream_create_request request = {Flags};
    struct ox_stream_create_reply reply;
    status = ox_rpc_stream_create(session, call, &request, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    if (reply.stream > UINT32_MAX)
        return ox_fail(CUDA_ERROR_UNKNOWN, call, "the GPU server's stream number is too big");
    *phStream = (CUstream)(uintptr_t)ox_handle(OX_H_STREAM, device,
                                               (Flags & CU_STREAM_NON_BLOCKING)
                                                   ? STREAM_FLAG_NON_BLOCKING : 0,
                                               (uint32_t)reply.stream);
    return CUDA_SUCCESS;
}

CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
    (void)priority;  /* the range is 0..0: every priority clamps to 0 */
    return cuStreamCreate(phStream, flags);
}

CUresult cuStreamDestroy_v2(CUstream hStream)
{
    static const char call[] = "cuStreamDestroy";
    int device;
    uint32_t number;
    struct ox_session *session;
    CUresult status = parse(hStream, OX_H_STREAM, call, "stream", &device, NULL, &number,
                            &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_stream_destroy_request request = {number};
    return ox_rpc_stream_destroy(session, call, &request);
}

CUresult cuStreamSynchronize(CUstream hStream)
{
    static const char call[] = "cuStreamSynchronize";
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(hStream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_stream_synchronize_request request = {server_stream};
    return ox_rpc_stream_synchronize(session, call, &request);
}

CUresult cuStreamQuery(CUstream hStream)
{
    return cuStreamSynchronize(hStream);
}

CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    static const char call[] = "cuStreamWaitEvent";
    (void)Flags;
    int device, event_device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(hStream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    uint32_t event;
    status = parse(hEvent, OX_H_EVENT, call, "event", &event_device, NULL, &event, &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_event_synchronize_request request = {event};
    return ox_rpc_event_synchronize(session, call, &request);
}

CUresult cuStreamGetPriority(CUstream hStream, int *priority)
{
    static const char call[] = "cuStreamGetPriority";
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(hStream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    if (priority == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "priority is NULL");
    *priority = 0;
    return CUDA_SUCCESS;
}

CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags)
{
    static const char call[] = "cuStreamGetFlags";
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(hStream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    if (flags == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "flags is NULL");
    uint8_t extra = 0;
    uint32_t number;
    if (server_stream != 0)
        ox_handle_parse((uint64_t)(uintptr_t)hStream, OX_H_STREAM, &device, &extra, &number);
    *flags = (extra & STREAM_FLAG_NON_BLOCKING) ? CU_STREAM_NON_BLOCKING : CU_STREAM_DEFAULT;
    return CUDA_SUCCESS;
}

/* -- events ---------------------------------------------------------------------------- */

CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
    static const char call[] = "cuEventCreate";
    int device;
    struct ox_session *session;
    CUresult status = ox_current_device(call, &device, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (phEvent == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "phEvent is NULL");
    struct ox_event_create_request request = {Flags};
    struct ox_event_create_reply reply;
    status = ox_rpc_event_create(session, call, &request, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    if (reply.event > UINT32_MAX)
        return ox_fail(CUDA_ERROR_UNKNOWN, call, "the GPU server's event number is too big");
    *phEvent = (CUevent)(uintptr_t)ox_handle(OX_H_EVENT, device, 0, (uint32_t)reply.event);
    return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent hEvent)
{
    static const char call[] = "cuEventDestroy";
    int device;
    uint32_t number;
    struct ox_session *session;
    CUresult status = parse(hEvent, OX_H_EVENT, call, "event", &device, NULL, &number, &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_event_destroy_request request = {number};
    return ox_rpc_event_destroy(session, call, &request);
}

CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
    static const char call[] = "cuEventRecord";
    int device, stream_device;
    uint32_t number;
    struct ox_session *session, *stream_session;
    CUresult status = parse(hEvent, OX_H_EVENT, call, "event", &device, NULL, &number, &session);
    if (status != CUDA_SUCCESS)
        return status;
    uint64_t server_stream;
    status = ox_stream_target(hStream, call, &stream_device, &stream_session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    if (stream_device != device)
        return ox_fail(CUDA_ERROR_INVALID_HANDLE, call,
                       "the event is of device %d and the stream of device %d", device,
                       stream_device);
    struct ox_event_record_request request = {number, server_stream};
    return ox_rpc_event_record(session, call, &request);
}

CUresult cuEventSynchronize(CUevent hEvent)
{
    static const char call[] = "cuEventSynchronize";
    int device;
    uint32_t number;
    struct ox_session *session;
    CUresult status = parse(hEvent, OX_H_EVENT, call, "event", &device, NULL, &number, &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_event_synchronize_request request = {number};
    return ox_rpc_event_synchronize(session, call, &request);
}

CUresult cuEventQuery(CUevent hEvent)
{
    return cuEventSynchronize(hEvent);
}

CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    static const char call[] = "cuEventElapsedTime";
    int device, end_device;
    uint32_t start, end;
    struct ox_session *session;
    if (pMilliseconds == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pMilliseconds is NULL");
    CUresult status = parse(hStart, OX_H_EVENT, call, "start event", &device, NULL, &start,
                            &session);
    if (status == CUDA_SUCCESS)
        status = parse(hEnd, OX_H_EVENT, call, "end event", &end_device, NULL, &end, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (device != end_device)
        return ox_fail(CUDA_ERROR_INVALID_HANDLE, call, "the events are of different devices");
    struct ox_event_elapsed_time_request request = {start, end};
    struct ox_event_elapsed_time_reply reply;
    status = ox_rpc_event_elapsed_time(session, call, &request, &reply);
    if (status == CUDA_SUCCESS)
        *pMilliseconds = reply.elapsed_ms;
    return status;
}

/* -- modules ----------------------------------------------------------------------------- */

/* Bytes of a module image, which cuModuleLoadData gets without its size:
 * NUL-terminated text (PTX, the built-in image), an ELF cubin (its section
 * table ends it) or a fatbin (its header says). 0: not an image we know. */
static size_t image_bytes(const uint8_t *image)
{
    static const uint8_t elf[4] = {0x7F, 'E', 'L', 'F'};
    if (memcmp(image, elf, 4) == 0 && image[4] == 2) {  /* 64-bit ELF */
        uint64_t section_table, program_table;
        uint16_t section_size, section_count, program_size, program_count;
        memcpy(&program_table, image + 0x20, 8);
        memcpy(&section_table, image + 0x28, 8);
        memcpy(&program_size, image + 0x36, 2);
        memcpy(&program_count, image + 0x38, 2);
        memcpy(&section_size, image + 0x3A, 2);
        memcpy(&section_count, image + 0x3C, 2);
        uint64_t end = section_table + (uint64_t)section_size * section_count;
        uint64_t program_end = program_table + (uint64_t)program_size * program_count;
        return (size_t)(end > program_end ? end : program_end);
    }
    uint32_t magic;
    memcpy(&magic, image, 4);
    if (magic == 0xBA55ED50u) {  /* fatbin: u16 header bytes at 6, u64 body bytes at 8 */
        uint16_t header;
        uint64_t body;
        memcpy(&header, image + 6, 2);
        memcpy(&body, image + 8, 8);
        return (size_t)(header + body);
    }
    size_t n = strnlen((const char *)image, OX_MODULE_IMAGE_MAX_BYTES);
    if (n == OX_MODULE_IMAGE_MAX_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (image[i] < 0x09)
            return 0;  /* binary bytes: not text */
    return n + 1;
}

static CUresult load(CUmodule *module, const void *image, size_t bytes, const char *call)
{
    int device;
    struct ox_session *session;
    CUresult status = ox_current_device(call, &device, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (bytes == 0 || bytes > OX_MODULE_IMAGE_MAX_BYTES)
        return ox_fail(CUDA_ERROR_INVALID_IMAGE, call,
                       "the image is neither PTX text, an ELF cubin, a fatbin nor the built-in "
                       "kernels' image (or it is over %d bytes)", OX_MODULE_IMAGE_MAX_BYTES);
    struct ox_module_load_data_reply reply;
    status = ox_rpc_module_load_data(session, call, image, bytes, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    if (reply.module > UINT32_MAX)
        return ox_fail(CUDA_ERROR_UNKNOWN, call, "the GPU server's module number is too big");
    *module = (CUmodule)(uintptr_t)ox_handle(OX_H_MODULE, device, 0, (uint32_t)reply.module);
    return CUDA_SUCCESS;
}

CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    static const char call[] = "cuModuleLoadData";
    if (module == NULL || image == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "module or image is NULL");
    return load(module, image, image_bytes(image), call);
}

CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
                            CUjit_option *options, void **optionValues)
{
    static const char call[] = "cuModuleLoadDataEx";
    (void)numOptions;
    (void)options;
    (void)optionValues;
    if (module == NULL || image == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "module or image is NULL");
    return load(module, image, image_bytes(image), call);
}

CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
    static const char call[] = "cuModuleLoad";
    if (module == NULL || fname == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "module or fname is NULL");
    FILE *file = fopen(fname, "rb");
    if (file == NULL)
        return ox_fail(CUDA_ERROR_FILE_NOT_FOUND, call, "cannot open module file %s", fname);
    uint8_t *image = malloc(OX_MODULE_IMAGE_MAX_BYTES + 1);
    size_t bytes = image ? fread(image, 1, OX_MODULE_IMAGE_MAX_BYTES + 1, file) : 0;
    fclose(file);
    if (image == NULL)
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory to read %s", fname);
    CUresult status;
    if (bytes > OX_MODULE_IMAGE_MAX_BYTES) {
        status = ox_fail(CUDA_ERROR_INVALID_IMAGE, call, "%s is over %d bytes", fname,
                         OX_MODULE_IMAGE_MAX_BYTES);
    } else {
        image[bytes] = '\0';  /* a PTX file travels NUL-terminated */
        int text = bytes && memchr(image, '\0', bytes) == NULL;
        status = load(module, image, text ? bytes + 1 : bytes, call);
    }
    free(image);
    return status;
}

CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    static const char call[] = "cuModuleGetFunction";
    int device;
    uint32_t module;
    struct ox_session *session;
    CUresult status = parse(hmod, OX_H_MODULE, call, "module", &device, NULL, &module, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (hfunc == NULL || name == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "hfunc or name is NULL");
    size_t name_bytes = strnlen(name, OX_NAME_MAX_BYTES + 1);
    if (name_bytes > OX_NAME_MAX_BYTES)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "a function name over %d bytes",
                       OX_NAME_MAX_BYTES);
    struct ox_module_get_function_request request = {module};
    struct ox_module_get_function_reply reply;
    status = ox_rpc_module_get_function(session, call, &request, name, name_bytes, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    if (reply.function > UINT32_MAX)
        return ox_fail(CUDA_ERROR_UNKNOWN, call, "the GPU server's function number is too big");
    *hfunc = (CUfunction)(uintptr_t)ox_handle(OX_H_FUNCTION, device, 0,
                                              (uint32_t)reply.function);
    return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule hmod)
{
    static const char call[] = "cuModuleUnload";
    int device;
    uint32_t module;
    struct ox_session *session;
    CUresult status = parse(hmod, OX_H_MODULE, call, "module", &device, NULL, &module, &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_module_unload_request request = {module};
    return ox_rpc_module_unload(session, call, &request);
}

/* -- launches --------------------------------------------------------------------------- */

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

CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                        unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                        unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                        void **kernelParams, void **extra)
{
    static const char call[] = "cuLaunchKernel";
    int device, stream_device;
    uint32_t function;
    struct ox_session *session, *stream_session;
    CUresult status = parse(f, OX_H_FUNCTION, call, "function", &device, NULL, &function,
                            &session);
    if (status != CUDA_SUCCESS)
        return status;
    uint64_t server_stream;
    status = ox_stream_target(hStream, call, &stream_device, &stream_session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    if (stream_device != device)
        return ox_fail(CUDA_ERROR_INVALID_HANDLE, call,
                       "the function is of device %d and the stream of device %d", device,
                       stream_device);
    const void *params = NULL;
    size_t params_bytes = 0;
    if (kernelParams != NULL && extra != NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "both kernelParams and extra were given: pass one");
    if (kernelParams != NULL)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "kernelParams needs the kernel's parameter layout, which the GPU server "
                       "cannot report yet: pass the packed parameters through extra "
                       "(CU_LAUNCH_PARAM_BUFFER_POINTER and CU_LAUNCH_PARAM_BUFFER_SIZE)");
    if (extra != NULL && extra_buffer(extra, &params, &params_bytes) < 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "extra must hold CU_LAUNCH_PARAM_BUFFER_POINTER and "
                       "CU_LAUNCH_PARAM_BUFFER_SIZE, then CU_LAUNCH_PARAM_END");
    if (params_bytes > OX_KERNEL_PARAMS_MAX_BYTES)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "%zu bytes of kernel parameters exceed CUDA's limit of %d", params_bytes,
                       OX_KERNEL_PARAMS_MAX_BYTES);
    struct ox_launch_kernel_request request = {function,  gridDimX,  gridDimY,
                                               gridDimZ,  blockDimX, blockDimY,
                                               blockDimZ, sharedMemBytes, server_stream};
    return ox_rpc_launch_kernel(session, call, &request, params, params_bytes);
}
