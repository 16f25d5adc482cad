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
enum ox_transport_choice {
    OX_CHOOSE_AUTO, OX_CHOOSE_SHM, OX_CHOOSE_UNIX, OX_CHOOSE_TCP, OX_CHOOSE_TLS,
    OX_CHOOSE_VSOCK, OX_CHOOSE_SERIAL
};
/* How the process got its devices: ORIONX_ENDPOINT and ORIONX_TOKEN; an
 * acquire-mode allocation bound through orionx-run's broker
 * (ORIONX_ACQUIRE_SOCKET, ox_acquire.c); or a KVM guest's link to its
 * host's agent (vsock, virtio-serial), which needs no token. */
enum ox_mode { OX_MODE_DIRECT, OX_MODE_ACQUIRE, OX_MODE_VM };

struct ox_endpoint {
    enum ox_endpoint_kind kind;
    char text[300];   /* as given, for messages */
    char path[256];   /* unix, serial */
    char host[256];   /* tcp, tls */
    char port[16];    /* tcp, tls, vsock */
    unsigned cid;     /* vsock */
};

/* Where one device's session goes: the GPU server's endpoints (tried in
 * order), the token and the token's vGPU that this device is. */
struct ox_route {
    struct ox_endpoint endpoints[OX_ENDPOINTS_MAX];
    int endpoint_count;
    char *token;          /* owned; "" for a VM's link (the agent holds the token) */
    uint32_t vgpu_index;
    char vgpu_id[64];     /* the vGPU's id in the token, for UUIDs */
};

struct ox_config {
    enum ox_mode mode;
    /* Non-NULL once loaded (cuInit tests it): ORIONX_TOKEN, or "". */
    char *token;
    enum ox_transport_choice transport;
    int device_count;
    /* Per device; in acquire mode filled by the broker's bind (ox_acquire_bind). */
    struct ox_route routes[OX_DEVICES_MAX];
    uint64_t shm_ring_bytes;   /* 0: the server's default */
    int connect_timeout_ms;
    char tls_ca_file[512];     /* ORIONX_TLS_CA_FILE; "": the system's CAs */
    char pci_sysfs_root[256];  /* where a VM's ivshmem devices are listed */
    int acquire_fd;            /* the broker connection, -1 when none */
};

/* Read the environment (ORIONX_ENDPOINT, ORIONX_TOKEN, ORIONX_VGPU_INDEX,
 * ORIONX_TRANSPORT, ORIONX_SHM_RING_BYTES, ORIONX_TLS_CA_FILE,
 * ORIONX_ACQUIRE_SOCKET, ORIONX_VSOCK_PORT) into CONFIG; with none set, look
 * for a KVM guest's link. CALL for errors. */
CUresult ox_config_load(struct ox_config *config, const char *call);
/* Parse the comma-separated endpoint list TEXT into ROUTE (fastest first
 * when SORT, else in the order given); VARIABLE names it in errors. */
CUresult ox_parse_endpoints(struct ox_route *route, const char *text, int sort,
                            const char *variable, const char *call);
/* The vGPU id of vGPU INDEX in TOKEN (read, not verified) into ID; the
 * number of vGPUs the token names (1 when it cannot be read). */
int ox_token_vgpus(const char *token, uint32_t index, char *id, size_t id_bytes);

/* -- acquire mode (ox_acquire.c): orionx-run's broker on a unix socket ---------- */

/* Connect to the broker at PATH and ask how many vGPUs the allocation has. */
CUresult ox_acquire_count(struct ox_config *config, const char *path, const char *call);
/* Bind the allocation (the broker waits in the queue as long as it takes)
 * and fill CONFIG's routes; once per process unless AGAIN (fresh tokens
 * after a lost session). Serialised inside. */
CUresult ox_acquire_bind(struct ox_config *config, int again, const char *call);
/* Whether the routes are filled (always, outside acquire mode). */
int ox_acquire_bound(const struct ox_config *config);

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

/* Room in *ARRAY (of *CAPACITY elements of ELEMENT_BYTES, COUNT in use) for
 * one more: doubled when full. -1 without memory, the array unchanged. */
int ox_grow(void **array, size_t *capacity, size_t count, size_t element_bytes);

/* CUDA_ERROR_NOT_INITIALIZED until cuInit succeeded. */
CUresult ox_require_init(const char *call);
/* Device DEVICE's session, connected on first use (never under the lock). */
CUresult ox_device_session(int device, const char *call, struct ox_session **out);
/* CUDA_ERROR_INVALID_DEVICE unless 0 <= DEVICE < the device count. */
CUresult ox_check_device(int device, const char *call);
/* The calling thread's current context: its device (and session). */
CUresult ox_current_device(const char *call, int *device, struct ox_session **session);
/* Whether the calling thread has a current context (alive or not). */
int ox_thread_has_context(void);
/* The device and session a stream handle runs on (0, CU_STREAM_LEGACY and
 * CU_STREAM_PER_THREAD: the current context's default stream). */
CUresult ox_stream_target(CUstream stream, const char *call, int *device,
                          struct ox_session **session, uint64_t *server_stream);
/* Record / forget a device allocation (for address queries and cuMemcpy). */
CUresult ox_record_allocation(int device, CUdeviceptr base, size_t bytes, const char *call);
/* Allocate BYTES on DEVICE (through SESSION) and record them (api_memory.c). */
CUresult ox_device_alloc(int device, struct ox_session *session, size_t bytes,
                         CUdeviceptr *dptr, const char *call);
/* DPTR is freed: out of its memory pool's account, if it has one (api_mempool.c). */
void ox_pool_forget(CUdeviceptr dptr);
int ox_forget_allocation(CUdeviceptr base, int *device);
/* The allocation containing PTR: 0 and its base, size and device, else -1. */
int ox_find_allocation(CUdeviceptr ptr, CUdeviceptr *base, size_t *bytes, int *device);
/* Host memory of this client (cuMemAllocHost, cuMemHostAlloc, registered). */
CUresult ox_record_host(void *base, size_t bytes, unsigned flags, int registered,
                        const char *call);
int ox_forget_host(void *base, int registered);
int ox_find_host(const void *ptr, void **base, size_t *bytes, unsigned *flags);
/* Device attributes FIRST..FIRST+COUNT-1 of DEVICE into OUT: kept ones
 * under one lock, else through cuDeviceGetAttribute (api_device.c). */
CUresult ox_device_attributes(int device, int first, int count, int *out);
/* The UUID of DEVICE (from its vGPU's id in the token); in acquire mode it
 * binds first, and a failed binding is CALL's error. */
CUresult ox_device_uuid(int device, CUuuid *uuid, const char *call);
/* The primary context of DEVICE as a handle. */
CUcontext ox_primary_context(int device);
/* Device of context handle CTX if it is alive. */
CUresult ox_context_device(CUcontext ctx, const char *call, int *device);

/* The driver API release cuDriverGetVersion reports (api_device.c). */
#define OX_DRIVER_VERSION 13050
/* CONTEXT is ending (being destroyed, or a primary context reset): the CUDA
 * runtime's state stored for it is destroyed, while it is still valid
 * (api_export.c). */
void ox_context_storage_ended(CUcontext context);

/* Each op of a frame carries at most this many bytes of bulk data: copies
 * beyond it travel as several frames (payload_bytes is a u32). */
#define OX_FRAME_DATA_MAX_BYTES (1ull << 30)

#endif
