/* Libraries and kernels belong to no context (CUDA 12): one CUlibrary, and
 * each CUkernel of it, serves every device of the process. A library is
 * loaded on its home device (the current one, or device 0: the CUDA runtime
 * loads the kernels of an nvcc program before it makes a context current);
 * the first time one of its kernels, its module or its variables are wanted
 * on another device, its image is loaded there as well, and the kernel
 * found there by name. Kept only in a process with more than one device. */
#include <stdlib.h>
#include <string.h>

#include "ox_api.h"
#include "ox_state.h"

struct library {
    int in_use;
    int home;
    uint8_t *image;
    size_t bytes;
    uint32_t loaded;                  /* bit D: loaded on device D */
    uint32_t module[OX_DEVICES_MAX];  /* its server module on each device */
};

struct kernel {
    int library;  /* index into libraries; -1: a free entry */
    char *name;
    uint32_t found;                     /* bit D: found on device D */
    uint32_t function[OX_DEVICES_MAX];  /* its server function on each device */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct library *libraries;
static size_t library_count, library_capacity;
static struct kernel *kernels;
static size_t kernel_count, kernel_capacity;

static int several_devices(void)
{
    return ox_state.device_count > 1;
}

/* Index of the library loaded as MODULE on DEVICE, or -1. Lock held. */
static int find_library(int device, uint32_t module)
{
    for (size_t i = 0; i < library_count; i++)
        if (libraries[i].in_use && (libraries[i].loaded >> device & 1)
            && libraries[i].module[device] == module)
            return (int)i;
    return -1;
}

/* Index of the kernel found as FUNCTION on DEVICE, or -1. Lock held. */
static int find_kernel(int device, uint32_t function)
{
    for (size_t i = 0; i < kernel_count; i++)
        if (kernels[i].library >= 0 && (kernels[i].found >> device & 1)
            && kernels[i].function[device] == function)
            return (int)i;
    return -1;
}

CUresult ox_library_loaded(int device, uint32_t module, const void *image, size_t bytes,
                           const char *call)
{
    if (!several_devices())
        return CUDA_SUCCESS;
    uint8_t *copy = malloc(bytes);
    pthread_mutex_lock(&lock);
    size_t slot = library_count;
    for (size_t i = 0; i < library_count && slot == library_count; i++)
        if (!libraries[i].in_use)
            slot = i;  /* one an unloaded library left */
    if (copy == NULL || (slot == library_count
                         && ox_grow((void **)&libraries, &library_capacity, library_count,
                                 sizeof *libraries) < 0)) {
        pthread_mutex_unlock(&lock);
        free(copy);
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call,
                       "no host memory to keep the library for the process's other devices");
    }
    memcpy(copy, image, bytes);
    if (slot == library_count)
        library_count++;
    struct library *l = &libraries[slot];
    *l = (struct library){.in_use = 1, .home = device, .image = copy, .bytes = bytes,
                          .loaded = 1u << device};
    l->module[device] = module;
    pthread_mutex_unlock(&lock);
    return CUDA_SUCCESS;
}

CUresult ox_kernel_found(int device, uint32_t module, uint32_t function, const char *name,
                         const char *call)
{
    if (!several_devices())
        return CUDA_SUCCESS;
    pthread_mutex_lock(&lock);
    int library = find_library(device, module);
    if (library < 0 || find_kernel(device, function) >= 0) {
        pthread_mutex_unlock(&lock);
        return CUDA_SUCCESS;  /* not a kept library, or asked before */
    }
    char *copy = strdup(name);
    size_t slot = kernel_count;
    for (size_t i = 0; i < kernel_count && slot == kernel_count; i++)
        if (kernels[i].library < 0)
            slot = i;
    if (copy == NULL || (slot == kernel_count
                         && ox_grow((void **)&kernels, &kernel_capacity, kernel_count,
                                 sizeof *kernels) < 0)) {
        pthread_mutex_unlock(&lock);
        free(copy);
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory to keep the kernel");
    }
    if (slot == kernel_count)
        kernel_count++;
    struct kernel *k = &kernels[slot];
    *k = (struct kernel){.library = library, .name = copy, .found = 1u << device};
    k->function[device] = function;
    pthread_mutex_unlock(&lock);
    return CUDA_SUCCESS;
}

/* Load library L on device TARGET if it is not there yet. Lock held. */
static CUresult load_on(struct library *l, int target, const char *call)
{
    if (l->loaded >> target & 1)
        return CUDA_SUCCESS;
    struct ox_session *session;
    CUresult status = ox_device_session(target, call, &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_module_load_data_reply reply;
    status = ox_rpc_module_load_data(session, call, l->image, l->bytes, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    if (reply.module > UINT32_MAX)
        return ox_fail(CUDA_ERROR_UNKNOWN, call, "the GPU server's module number is too big");
    l->module[target] = (uint32_t)reply.module;
    l->loaded |= 1u << target;
    return CUDA_SUCCESS;
}

static CUresult not_kept(const char *what, int device, int target, const char *call)
{
    return ox_fail(CUDA_ERROR_INVALID_HANDLE, call,
                   "the %s was loaded on device %d and is wanted on device %d: load it in a "
                   "context of that device (a module, unlike a library, stays on its device)",
                   what, device, target);
}

CUresult ox_on_device(const void *handle, enum ox_handle_kind kind, int target, const char *call,
                      void **out)
{
    int device;
    uint8_t extra;
    uint32_t number;
    struct ox_session *session;
    const char *what = kind == OX_H_MODULE ? "library" : "kernel";
    CUresult status = ox_parse(handle, kind, call, what, &device, &extra, &number, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (device == target) {
        *out = (void *)handle;
        return CUDA_SUCCESS;
    }
    pthread_mutex_lock(&lock);
    if (kind == OX_H_MODULE) {
        int index = find_library(device, number);
        if (index < 0) {
            pthread_mutex_unlock(&lock);
            return not_kept("module", device, target, call);
        }
        status = load_on(&libraries[index], target, call);
        if (status == CUDA_SUCCESS)
            *out = (void *)(uintptr_t)ox_handle(OX_H_MODULE, target, extra,
                                                libraries[index].module[target]);
        pthread_mutex_unlock(&lock);
        return status;
    }
    int index = find_kernel(device, number);
    if (index < 0) {
        pthread_mutex_unlock(&lock);
        return not_kept("function", device, target, call);
    }
    struct kernel *k = &kernels[index];
    struct library *l = &libraries[k->library];
    if (!(k->found >> target & 1)) {
        status = load_on(l, target, call);
        struct ox_session *target_session = NULL;
        if (status == CUDA_SUCCESS)
            status = ox_device_session(target, call, &target_session);
        struct ox_module_get_function_request request = {l->module[target]};
        struct ox_module_get_function_reply reply;
        if (status == CUDA_SUCCESS)
            status = ox_rpc_module_get_function(target_session, call, &request, k->name,
                                                strlen(k->name) + 1, &reply);
        if (status == CUDA_SUCCESS && reply.function > UINT32_MAX)
            status = ox_fail(CUDA_ERROR_UNKNOWN, call,
                             "the GPU server's function number is too big");
        if (status == CUDA_SUCCESS) {
            k->function[target] = (uint32_t)reply.function;
            k->found |= 1u << target;
        }
    }
    if (status == CUDA_SUCCESS)
        *out = (void *)(uintptr_t)ox_handle(OX_H_FUNCTION, target, extra, k->function[target]);
    pthread_mutex_unlock(&lock);
    return status;
}

void ox_library_unloaded(int device, uint32_t module, const char *call)
{
    pthread_mutex_lock(&lock);
    int index = find_library(device, module);
    if (index < 0) {
        pthread_mutex_unlock(&lock);
        return;
    }
    struct library *l = &libraries[index];
    for (int d = 0; d < OX_DEVICES_MAX; d++) {
        struct ox_session *session;
        if (d == device || !(l->loaded >> d & 1) || ox_device_session(d, call, &session))
            continue;
        struct ox_module_unload_request request = {l->module[d]};
        ox_rpc_module_unload(session, call, &request);  /* its failure is its own line */
        ox_forget_module_variables(d, l->module[d]);
    }
    for (size_t i = 0; i < kernel_count; i++) {
        if (kernels[i].library == index) {
            free(kernels[i].name);
            kernels[i] = (struct kernel){.library = -1};
        }
    }
    free(l->image);
    *l = (struct library){0};
    pthread_mutex_unlock(&lock);
}
