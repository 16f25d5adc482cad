/* What the parts of the library share: the error path, configuration,
 * process state and handles. */
#ifndef OX_INTERNAL_H
#define OX_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "orionx/cuda.h"
#include "ox_proc.h"
#include "ox_rpc.h"
#include "ox_session.h"

/* -- errors (ox_error.c): the one path every failure takes --------------------- */

/* Report CODE for CALL: the first time this (CALL, FORMAT) fails, one line
 * on stderr, "orionx libcuda: CALL: <message> (CUDA_ERROR_...)". Returns CODE. */
CUresult ox_fail(CUresult code, const char *call, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* As ox_fail for a message the GPU server sent: once per (CALL, CODE). */
CUresult ox_fail_server(CUresult code, const char *call, const char *message);
/* CUDA's name of CODE, or NULL. */
const char *ox_error_name(CUresult code);

/* -- configuration (ox_config.c) ----------------------------------------------- */

#define OX_ENDPOINTS_MAX 8
#define OX_DEVICES_MAX 16

enum ox_endpoint_kind { OX_EP_UNIX, OX_EP_VSOCK, OX_EP_SERIAL, OX_EP_TCP, OX_EP_TLS };
enum ox_transport_choice { OX_CHOOSE_AUTO, OX_CHOOSE_SHM, OX_CHOOSE_UNIX, OX_CHOOSE_TCP };

struct ox_endpoint {
    enum ox_endpoint_kind kind;
    char text[300];   /* as given, for messages */
    char path[256];   /* unix, serial */
    char host[256];   /* tcp, tls */
    char port[16];
};

struct ox_config {
    struct ox_endpoint endpoints[OX_ENDPOINTS_MAX];  /* fastest first */
    int endpoint_count;
    enum ox_transport_choice transport;
    char *token;
    uint32_t first_vgpu_index;
    int device_count;
    char vgpu_ids[OX_DEVICES_MAX][64];  /* from the token, for UUIDs */
    uint64_t shm_ring_bytes;            /* 0: the server's default */
    int connect_timeout_ms;
};

/* Read the environment (ORIONX_ENDPOINT, ORIONX_TOKEN, ORIONX_VGPU_INDEX,
 * ORIONX_TRANSPORT, ORIONX_SHM_RING_BYTES) into CONFIG; CALL for errors. */
CUresult ox_config_load(struct ox_config *config, const char *call);

/* -- handles ------------------------------------------------------------------ */

/* Handles the library gives out are numbers, never pointers to its memory:
 * a magic, the kind, the device and the server's (or the context table's)
 * number, so a stale or foreign handle is refused, never followed. */
enum ox_handle_kind { OX_H_CONTEXT = 1, OX_H_STREAM, OX_H_EVENT, OX_H_MODULE, OX_H_FUNCTION };

uint64_t ox_handle(enum ox_handle_kind kind, int device, uint8_t extra, uint32_t number);
/* 0 when HANDLE is of KIND: its device, extra bits and number; else -1. */
int ox_handle_parse(uint64_t handle, enum ox_handle_kind kind, int *device, uint8_t *extra,
                    uint32_t *number);

/* -- process state (ox_state.c) ------------------------------------------------ */

/* CUDA_ERROR_NOT_INITIALIZED until cuInit succeeded. */
CUresult ox_require_init(const char *call);
/* Device DEVICE's session, connected on first use (never under the lock). */
CUresult ox_device_session(int device, const char *call, struct ox_session **out);
/* CUDA_ERROR_INVALID_DEVICE unless 0 <= DEVICE < the device count. */
CUresult ox_check_device(int device, const char *call);
/* The calling thread's current context: its device (and session). */
CUresult ox_current_device(const char *call, int *device, struct ox_session **session);
/* The device and session a stream handle runs on (0, CU_STREAM_LEGACY and
 * CU_STREAM_PER_THREAD: the current context's default stream). */
CUresult ox_stream_target(CUstream stream, const char *call, int *device,
                          struct ox_session **session, uint64_t *server_stream);
/* Record / forget a device allocation (for address queries and cuMemcpy). */
CUresult ox_record_allocation(int device, CUdeviceptr base, size_t bytes, const char *call);
int ox_forget_allocation(CUdeviceptr base, int *device);
/* The allocation containing PTR: 0 and its base, size and device, else -1. */
int ox_find_allocation(CUdeviceptr ptr, CUdeviceptr *base, size_t *bytes, int *device);
/* Host memory of this client (cuMemAllocHost, cuMemHostAlloc, registered). */
CUresult ox_record_host(void *base, size_t bytes, unsigned flags, int registered,
                        const char *call);
int ox_forget_host(void *base, int registered);
int ox_find_host(const void *ptr, void **base, size_t *bytes, unsigned *flags);
/* The UUID of DEVICE (from its vGPU's id in the token). */
void ox_device_uuid(int device, CUuuid *uuid);
/* The primary context of DEVICE as a handle. */
CUcontext ox_primary_context(int device);
/* Device of context handle CTX if it is alive. */
CUresult ox_context_device(CUcontext ctx, const char *call, int *device);

/* Each op of a frame carries at most this many bytes of bulk data: copies
 * beyond it travel as several frames (payload_bytes is a u32). */
#define OX_FRAME_DATA_MAX_BYTES (1ull << 30)

#endif
