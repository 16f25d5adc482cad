/* What the driver calls of api_stream.c, api_module.c and api_launch.c
 * share: handle parsing, and the kinds of module and function handles. */
#ifndef OX_API_H
#define OX_API_H

#include "ox_internal.h"

/* The extra bits of a module handle that is a CUlibrary, and of a function
 * handle that is a CUkernel. A library and its module, or a kernel and its
 * function, name the same server object: cuLibraryGetModule and
 * cuKernelGetFunction only change these bits. */
#define OX_MODULE_IS_LIBRARY 0x1
#define OX_FUNCTION_IS_KERNEL 0x1

/* Parse HANDLE of KIND into its device, extra bits (EXTRA may be NULL) and
 * server number, and give the device's session; CALL and WHAT for errors
 * (CUDA_ERROR_INVALID_HANDLE for a handle that is not one of ours). */
CUresult ox_parse(const void *handle, enum ox_handle_kind kind, const char *call,
                  const char *what, int *device, uint8_t *extra, uint32_t *number,
                  struct ox_session **session);

/* The parameter layout of server function FUNCTION of DEVICE, asked once
 * per function and kept: PARAM_COUNT entries of (offset, size) in
 * *ENTRIES (owned by the cache, valid for the process) and the packed
 * buffer's size. */
CUresult ox_param_layout(struct ox_session *session, int device, uint32_t function,
                         const char *call, uint32_t *param_count, uint32_t *params_bytes,
                         const uint32_t **entries);

/* Forget the variables of server module MODULE of DEVICE, which was
 * unloaded (api_module.c). */
void ox_forget_module_variables(int device, uint32_t module);

/* -- libraries on every device (ox_library.c) -- */

/* Library MODULE of DEVICE was loaded from BYTES of IMAGE (kept, copied). */
CUresult ox_library_loaded(int device, uint32_t module, const void *image, size_t bytes,
                           const char *call);
/* Kernel NAME of library MODULE of DEVICE is server function FUNCTION. */
CUresult ox_kernel_found(int device, uint32_t module, uint32_t function, const char *name,
                         const char *call);
/* HANDLE, a library (KIND OX_H_MODULE) or kernel (OX_H_FUNCTION), as the
 * same object on device TARGET, loaded there the first time. */
CUresult ox_on_device(const void *handle, enum ox_handle_kind kind, int target, const char *call,
                      void **out);
/* Library MODULE of DEVICE was unloaded there: unload it everywhere else. */
void ox_library_unloaded(int device, uint32_t module, const char *call);

/* -- kernel parameters (api_launch.c) -- */

/* The parameters of a launch of F as the server takes them: *PARAMS is
 * EXTRA's buffer, or KERNEL_PARAMS packed into OUT (OX_KERNEL_PARAMS_MAX_BYTES
 * long); *BYTES their size. */
CUresult ox_pack_kernel_params(const void *f, void **kernel_params, void **extra, uint8_t *out,
                               const void **params, size_t *bytes, const char *call);

/* -- stream capture (api_graph.c) -- */

/* Whether STREAM is being captured (cheap when nothing is). */
int ox_capture_active(CUstream stream);
/* The same, with the capture's id. */
int ox_capture_status(CUstream stream, uint64_t *id);
/* The asynchronous calls, as nodes of STREAM's capture. */
CUresult ox_capture_launch(CUstream stream, CUfunction function, const unsigned grid[3],
                           const unsigned block[3], unsigned shared_mem_bytes,
                           void **kernel_params, void **extra, const char *call);
CUresult ox_capture_copy(CUstream stream, CUdeviceptr dst, CUdeviceptr src, size_t bytes,
                         const char *call);
CUresult ox_capture_memset(CUstream stream, CUdeviceptr dst, unsigned value,
                           unsigned element_bytes, size_t count, const char *call);
CUresult ox_capture_host(CUstream stream, CUhostFn fn, void *data, const char *call);
CUresult ox_capture_event_record(CUevent event, CUstream stream, const char *call);
/* A stream waiting for an event a capture marked forks or joins that
 * capture: 1 and *RESULT when the wait concerned a capture, else 0. */
int ox_capture_wait_event(CUstream stream, CUevent event, CUresult *result, const char *call);

#endif
