/* The one error path (libvirt style): every failure is returned as CUDA's
 * code through ox_fail, which also tells the user once per cause. And the
 * names and descriptions of the codes (cuGetErrorName, cuGetErrorString). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ox_internal.h"

#define SEEN_MAX 512

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const char *call;
    const void *cause;
} seen[SEEN_MAX];
static int seen_count;

/* 1 the first time (CALL, CAUSE) is reported; 0 after (and when full). */
static int first_time(const char *call, const void *cause)
{
    int first = 1;
    pthread_mutex_lock(&seen_lock);
    for (int i = 0; i < seen_count && first; i++)
        if (seen[i].call == call && seen[i].cause == cause)
            first = 0;
    if (first && seen_count < SEEN_MAX) {
        seen[seen_count].call = call;
        seen[seen_count].cause = cause;
        seen_count++;
    } else if (first) {
        first = 0;
    }
    pthread_mutex_unlock(&seen_lock);
    return first;
}

static void report(CUresult code, const char *call, const char *message)
{
    const char *name = ox_error_name(code);
    char unknown[32];
    if (name == NULL) {
        snprintf(unknown, sizeof unknown, "CUresult %d", (int)code);
        name = unknown;
    }
    fprintf(stderr, "orionx libcuda: %s: %s (%s)\n", call, message, name);
}

CUresult ox_fail(CUresult code, const char *call, const char *format, ...)
{
    if (!first_time(call, format))
        return code;
    char message[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    report(code, call, message);
    return code;
}

CUresult ox_fail_server(CUresult code, const char *call, const char *message)
{
    /* Codes are small numbers: as a cause they never equal a format's address. */
    if (first_time(call, (const void *)(uintptr_t)(unsigned)code))
        report(code, call, message);
    return code;
}

int ox_unserved(const char *symbol)
{
    return ox_fail(CUDA_ERROR_NOT_SUPPORTED, symbol,
                   "not served by the OrionX CUDA library yet (docs/libcuda.md lists what is); "
                   "run this part of the program on a local GPU or ask for the call to be "
                   "added");
}

static const struct {
    CUresult code;
    const char *name;
    const char *text;
} codes[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "cuInit has not been called"},
    {CUDA_ERROR_DEINITIALIZED, "CUDA_ERROR_DEINITIALIZED", "the driver is shutting down"},
    {CUDA_ERROR_STUB_LIBRARY, "CUDA_ERROR_STUB_LIBRARY", "a stub library was loaded"},
    {CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA_ERROR_DEVICE_UNAVAILABLE",
     "the device is unavailable: the connection to its GPU server is lost"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is available"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE", "invalid module image"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid or no current context"},
    {CUDA_ERROR_CONTEXT_ALREADY_CURRENT, "CUDA_ERROR_CONTEXT_ALREADY_CURRENT",
     "context already current"},
    {CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, "CUDA_ERROR_PEER_ACCESS_NOT_ENABLED",
     "peer access is not enabled"},
    {CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED",
     "peer access is not supported"},
    {CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX", "invalid PTX"},
    {CUDA_ERROR_INVALID_SOURCE, "CUDA_ERROR_INVALID_SOURCE", "invalid source"},
    {CUDA_ERROR_FILE_NOT_FOUND, "CUDA_ERROR_FILE_NOT_FOUND", "file not found"},
    {CUDA_ERROR_OPERATING_SYSTEM, "CUDA_ERROR_OPERATING_SYSTEM", "an operating system call failed"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE", "illegal state"},
    {CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
     "operation not permitted when stream is capturing"},
    {CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, "CUDA_ERROR_STREAM_CAPTURE_UNMATCHED",
     "capture was not initiated in this stream"},
    {CUDA_ERROR_STREAM_CAPTURE_ISOLATION, "CUDA_ERROR_STREAM_CAPTURE_ISOLATION",
     "operation would make the legacy stream depend on a capturing blocking stream"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "work not completed yet"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access"},
    {CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
     "too many resources requested for launch"},
    {CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE",
     "primary context active"},
    {CUDA_ERROR_CONTEXT_IS_DESTROYED, "CUDA_ERROR_CONTEXT_IS_DESTROYED",
     "context is destroyed"},
    {CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED",
     "host memory already registered"},
    {CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
     "host memory not registered"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
    {CUDA_ERROR_MPS_CLIENT_TERMINATED, "CUDA_ERROR_MPS_CLIENT_TERMINATED",
     "the client has been terminated by the server; restart the process to use CUDA"},
};

const char *ox_error_name(CUresult code)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].code == code)
            return codes[i].name;
    return NULL;
}

/* cuGetErrorName and cuGetErrorString are queries: an unknown value is
 * answered without a message, a NULL result pointer is a mistake. */
CUresult cuGetErrorName(CUresult error, const char **pStr)
{
    if (pStr == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, "cuGetErrorName", "pStr is NULL");
    *pStr = ox_error_name(error);
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char **pStr)
{
    if (pStr == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, "cuGetErrorString", "pStr is NULL");
    *pStr = NULL;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].code == error)
            *pStr = codes[i].text;
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
