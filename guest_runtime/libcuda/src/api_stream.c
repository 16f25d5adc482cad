/* Streams and events. Their handles carry the device and the server's
 * number (ox_handle). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ox_api.h"
#include "ox_state.h"

#define STREAM_FLAG_NON_BLOCKING 0x1  /* in a stream handle's extra bits */

CUresult ox_parse(const void *handle, enum ox_handle_kind kind, const char *call,
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
    CUresult status = ox_parse(hStream, OX_H_STREAM, call, "stream", &device, NULL, &number,
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
    static const char call[] = "cuStreamQuery";
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(hStream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_stream_query_request request = {server_stream};
    struct ox_stream_query_reply reply;
    status = ox_rpc_stream_query(session, call, &request, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    return reply.ready ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;  /* an answer, not a failure */
}

/* Whether a stream is being captured (api_graph.c); the runtime and CuPy
 * ask before every copy. */
static CUresult capture_status(CUstream stream, CUstreamCaptureStatus *status, cuuint64_t *id,
                               const char *call)
{
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult result = ox_stream_target(stream, call, &device, &session, &server_stream);
    if (result != CUDA_SUCCESS)
        return result;
    if (status == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "captureStatus is NULL");
    uint64_t capture_id = 0;
    *status = ox_capture_status(stream, &capture_id) ? CU_STREAM_CAPTURE_STATUS_ACTIVE
                                                     : CU_STREAM_CAPTURE_STATUS_NONE;
    if (id != NULL)
        *id = capture_id;
    return CUDA_SUCCESS;
}

CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    return capture_status(hStream, captureStatus, NULL, "cuStreamIsCapturing");
}

CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                cuuint64_t *id_out)
{
    return capture_status(hStream, captureStatus_out, id_out, "cuStreamGetCaptureInfo");
}

/* The graph outputs (the capture's graph and open ends) are not given:
 * they are cleared, as callers read them unchecked. */
CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                   cuuint64_t *id_out, CUgraph *graph_out,
                                   const CUgraphNode **dependencies_out,
                                   size_t *numDependencies_out)
{
    if (graph_out != NULL)
        *graph_out = NULL;
    if (dependencies_out != NULL)
        *dependencies_out = NULL;
    if (numDependencies_out != NULL)
        *numDependencies_out = 0;
    return capture_status(hStream, captureStatus_out, id_out, "cuStreamGetCaptureInfo");
}

CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                   cuuint64_t *id_out, CUgraph *graph_out,
                                   const CUgraphNode **dependencies_out,
                                   const CUgraphEdgeData **edgeData_out,
                                   size_t *numDependencies_out)
{
    if (edgeData_out != NULL)
        *edgeData_out = NULL;
    return cuStreamGetCaptureInfo_v2(hStream, captureStatus_out, id_out, graph_out,
                                     dependencies_out, numDependencies_out);
}

CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    static const char call[] = "cuStreamWaitEvent";
    int device, event_device;
    struct ox_session *session, *event_session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(hStream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    uint32_t event;
    status = ox_parse(hEvent, OX_H_EVENT, call, "event", &event_device, NULL, &event,
                      &event_session);
    if (status != CUDA_SUCCESS)
        return status;
    if (Flags & ~1u)  /* CU_EVENT_WAIT_DEFAULT, CU_EVENT_WAIT_EXTERNAL */
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "flags 0x%x are not event wait flags",
                       Flags);
    CUresult captured;
    if (ox_capture_wait_event(hStream, hEvent, &captured, call))
        return captured;  /* a fork into, or a join of, a capture */
    if (event_device != device) {
        /* Another device's GPU server cannot hold this stream back: wait
         * here for the event, which orders the stream's later work too. */
        struct ox_event_synchronize_request wait = {event};
        return ox_rpc_event_synchronize(event_session, call, &wait);
    }
    struct ox_stream_wait_event_request request = {server_stream, event, Flags};
    return ox_rpc_stream_wait_event(session, call, &request);
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

static CUresult host_function(CUstream stream, CUhostFn fn, CUstreamCallback callback,
                              void *user_data, const char *call)
{
    if (fn == NULL && callback == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "the function is NULL");
    int device;
    struct ox_session *session;
    uint64_t server_stream;
    CUresult status = ox_stream_target(stream, call, &device, &session, &server_stream);
    if (status != CUDA_SUCCESS)
        return status;
    /* The GPU server cannot call into this process: wait for the stream's
     * work here, then run the function before anything later is sent. */
    struct ox_stream_synchronize_request request = {server_stream};
    status = ox_rpc_stream_synchronize(session, call, &request);
    if (fn != NULL) {
        if (status != CUDA_SUCCESS)
            return status;  /* CUDA skips host functions of a failed stream */
        fn(user_data);
    } else {
        callback(stream, status, user_data);
    }
    return CUDA_SUCCESS;
}

CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    if (fn != NULL && ox_capture_active(hStream))
        return ox_capture_host(hStream, fn, userData, "cuLaunchHostFunc");
    return host_function(hStream, fn, NULL, userData, "cuLaunchHostFunc");
}

CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
                             unsigned int flags)
{
    static const char call[] = "cuStreamAddCallback";
    if (flags != 0)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "flags must be 0, not 0x%x", flags);
    return host_function(hStream, NULL, callback, userData, call);
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
    CUresult status = ox_parse(hEvent, OX_H_EVENT, call, "event", &device, NULL, &number, &session);
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
    CUresult status = ox_parse(hEvent, OX_H_EVENT, call, "event", &device, NULL, &number, &session);
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
    if (ox_capture_active(hStream))  /* marks the stream's place in its capture */
        return ox_capture_event_record(hEvent, hStream, call);
    struct ox_event_record_request request = {number, server_stream};
    return ox_rpc_event_record(session, call, &request);
}

CUresult cuEventSynchronize(CUevent hEvent)
{
    static const char call[] = "cuEventSynchronize";
    int device;
    uint32_t number;
    struct ox_session *session;
    CUresult status = ox_parse(hEvent, OX_H_EVENT, call, "event", &device, NULL, &number, &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_event_synchronize_request request = {number};
    return ox_rpc_event_synchronize(session, call, &request);
}

CUresult cuEventQuery(CUevent hEvent)
{
    static const char call[] = "cuEventQuery";
    int device;
    uint32_t number;
    struct ox_session *session;
    CUresult status = ox_parse(hEvent, OX_H_EVENT, call, "event", &device, NULL, &number,
                               &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_event_query_request request = {number};
    struct ox_event_query_reply reply;
    status = ox_rpc_event_query(session, call, &request, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    return reply.ready ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;  /* an answer, not a failure */
}

CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    static const char call[] = "cuEventElapsedTime";
    int device, end_device;
    uint32_t start, end;
    struct ox_session *session;
    if (pMilliseconds == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "pMilliseconds is NULL");
    CUresult status = ox_parse(hStart, OX_H_EVENT, call, "start event", &device, NULL, &start,
                            &session);
    if (status == CUDA_SUCCESS)
        status = ox_parse(hEnd, OX_H_EVENT, call, "end event", &end_device, NULL, &end, &session);
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
