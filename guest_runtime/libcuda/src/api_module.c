/* Modules, libraries, kernels and the linker. A library is a module and a
 * kernel a function on the GPU server (their handles differ only in their
 * extra bits, ox_api.h); cuLink* gathers its inputs here and hands back an
 * image that cuModuleLoadData and cuLibraryLoadData link on the server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ox_api.h"
#include "ox_wire.h"

/* -- module images ------------------------------------------------------------------------ */

/* Bytes of a module image, which cuModuleLoadData gets without its size:
 * NUL-terminated text (PTX, the built-in image), an ELF cubin (its section
 * table ends it), a fatbin (its header says) or this library's link image
 * (its inputs say). 0: not an image we know. */
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
    if (strncmp((const char *)image, OX_LINK_IMAGE_MAGIC, OX_LINK_IMAGE_MAGIC_BYTES) == 0) {
        const uint8_t *at = image + OX_LINK_IMAGE_MAGIC_BYTES;
        uint32_t count = ox_get_u32(at);
        uint64_t bytes = OX_LINK_IMAGE_MAGIC_BYTES + OX_LINK_IMAGE_HEADER_BYTES;
        at += OX_LINK_IMAGE_HEADER_BYTES;
        for (uint32_t i = 0; i < count; i++) {
            uint64_t input = ox_get_u64(at + 4);
            if (input > OX_MODULE_IMAGE_MAX_BYTES || bytes > OX_MODULE_IMAGE_MAX_BYTES)
                return 0;
            bytes += OX_LINK_IMAGE_INPUT_BYTES + input;
            at += OX_LINK_IMAGE_INPUT_BYTES + input;
        }
        return (size_t)bytes;
    }
    size_t n = strnlen((const char *)image, OX_MODULE_IMAGE_MAX_BYTES);
    if (n == OX_MODULE_IMAGE_MAX_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (image[i] < 0x09)
            return 0;  /* binary bytes: not text */
    return n + 1;
}

/* The image at IMAGE: the fatbinary a CUDA runtime's wrapper (what
 * __cudaRegisterFatBinary registered; the runtime loads kernels by handing
 * it over as it is) points at, else IMAGE itself. */
#define FATBIN_WRAPPER_MAGIC 0x466243B1u

static const void *unwrapped(const void *image)
{
    uint32_t magic;
    memcpy(&magic, image, 4);
    if (magic != FATBIN_WRAPPER_MAGIC)
        return image;
    const void *fatbin;
    memcpy(&fatbin, (const uint8_t *)image + 8, sizeof fatbin);  /* after magic, version */
    return fatbin != NULL ? fatbin : image;
}

/* Load BYTES of IMAGE on the current context's device as a module handle
 * with extra bits EXTRA (a module, or a library). */
static CUresult load(void **out, const void *image, size_t bytes, uint8_t extra,
                     const char *call)
{
    int device = 0;
    struct ox_session *session;
    CUresult status;
    /* A library belongs to no context: the CUDA runtime loads its kernels
     * before it makes one current. Without a current context it goes to
     * device 0, and to other devices when wanted there (ox_library.c). */
    if (extra == OX_MODULE_IS_LIBRARY && ox_thread_has_context() == 0) {
        status = ox_check_device(0, call);  /* cuInit first, as for any call */
        if (status == CUDA_SUCCESS)
            status = ox_device_session(0, call, &session);
    } else
        status = ox_current_device(call, &device, &session);
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
    if (extra == OX_MODULE_IS_LIBRARY) {
        status = ox_library_loaded(device, (uint32_t)reply.module, image, bytes, call);
        if (status != CUDA_SUCCESS) {
            struct ox_module_unload_request request = {(uint32_t)reply.module};
            ox_rpc_module_unload(session, call, &request);
            return status;
        }
    }
    *out = (void *)(uintptr_t)ox_handle(OX_H_MODULE, device, extra, (uint32_t)reply.module);
    return CUDA_SUCCESS;
}

/* Read module file FNAME and load it (cuModuleLoad, cuLibraryLoadFromFile). */
static CUresult load_file(void **out, const char *fname, uint8_t extra, const char *call)
{
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
        status = load(out, image, text ? bytes + 1 : bytes, extra, call);
    }
    free(image);
    return status;
}

/* The length of a function's or variable's NAME, within what a frame carries. */
static CUresult name_length(const char *name, const char *what, const char *call,
                            size_t *name_bytes)
{
    if (name == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "the %s name is NULL", what);
    *name_bytes = strnlen(name, OX_NAME_MAX_BYTES + 1);
    if (*name_bytes > OX_NAME_MAX_BYTES)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "a %s name over %d bytes", what,
                       OX_NAME_MAX_BYTES);
    return CUDA_SUCCESS;
}

/* The kernel NAME of module or library HANDLE as a function handle with
 * extra bits EXTRA (a function, or a kernel). */
static CUresult get_function(void **out, const void *handle, const char *name, uint8_t extra,
                             const char *call)
{
    int device;
    uint32_t module;
    struct ox_session *session;
    CUresult status = ox_parse(handle, OX_H_MODULE, call, extra ? "library" : "module",
                               &device, NULL, &module, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (out == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "the output is NULL");
    size_t name_bytes;
    if ((status = name_length(name, "function", call, &name_bytes)) != CUDA_SUCCESS)
        return status;
    struct ox_module_get_function_request request = {module};
    struct ox_module_get_function_reply reply;
    status = ox_rpc_module_get_function(session, call, &request, name, name_bytes, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    if (reply.function > UINT32_MAX)
        return ox_fail(CUDA_ERROR_UNKNOWN, call, "the GPU server's function number is too big");
    if (extra == OX_FUNCTION_IS_KERNEL) {
        status = ox_kernel_found(device, module, (uint32_t)reply.function, name, call);
        if (status != CUDA_SUCCESS)
            return status;
    }
    *out = (void *)(uintptr_t)ox_handle(OX_H_FUNCTION, device, extra, (uint32_t)reply.function);
    return CUDA_SUCCESS;
}

/* The module variables this process asked for, by module: their ranges
 * are in the device memory table (cuMemcpy and pointer queries know them)
 * until their module is unloaded. */
struct variable {
    int device;
    uint32_t module;
    CUdeviceptr base;
};

static pthread_mutex_t variables_lock = PTHREAD_MUTEX_INITIALIZER;
static struct variable *variables;
static size_t variables_count, variables_capacity;

static CUresult remember_variable(int device, uint32_t module, CUdeviceptr base, size_t bytes,
                                  const char *call)
{
    CUdeviceptr known_base;
    size_t known_bytes;
    int known_device;
    if (ox_find_allocation(base, &known_base, &known_bytes, &known_device) == 0)
        return CUDA_SUCCESS;  /* asked before */
    pthread_mutex_lock(&variables_lock);
    if (variables_count == variables_capacity) {
        size_t capacity = variables_capacity ? 2 * variables_capacity : 16;
        struct variable *grown = realloc(variables, capacity * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&variables_lock);
            return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory to track a variable");
        }
        variables = grown;
        variables_capacity = capacity;
    }
    variables[variables_count++] = (struct variable){device, module, base};
    pthread_mutex_unlock(&variables_lock);
    return ox_record_allocation(device, base, bytes, call);
}

void ox_forget_module_variables(int device, uint32_t module)
{
    pthread_mutex_lock(&variables_lock);
    for (size_t i = 0; i < variables_count;) {
        if (variables[i].device == device && variables[i].module == module) {
            int recorded_device;
            ox_forget_allocation(variables[i].base, &recorded_device);
            variables[i] = variables[--variables_count];
        } else {
            i++;
        }
    }
    if (variables_count == 0) {
        free(variables);
        variables = NULL;
        variables_capacity = 0;
    }
    pthread_mutex_unlock(&variables_lock);
}

static CUresult unload(const void *handle, const char *call, const char *what)
{
    int device;
    uint32_t module;
    struct ox_session *session;
    CUresult status = ox_parse(handle, OX_H_MODULE, call, what, &device, NULL, &module,
                               &session);
    if (status != CUDA_SUCCESS)
        return status;
    struct ox_module_unload_request request = {module};
    status = ox_rpc_module_unload(session, call, &request);
    if (status == CUDA_SUCCESS)
        ox_forget_module_variables(device, module);
    if (status == CUDA_SUCCESS)  /* a library's module handle unloads the library */
        ox_library_unloaded(device, module, call);
    return status;
}

/* The variable NAME of module or library HANDLE: its pointer and size
 * (either output may be NULL). */
static CUresult get_global(CUdeviceptr *dptr, size_t *bytes, const void *handle,
                           const char *name, const char *call, const char *what)
{
    int device;
    uint32_t module;
    struct ox_session *session;
    CUresult status = ox_parse(handle, OX_H_MODULE, call, what, &device, NULL, &module,
                               &session);
    if (status != CUDA_SUCCESS)
        return status;
    size_t name_bytes;
    if ((status = name_length(name, "variable", call, &name_bytes)) != CUDA_SUCCESS)
        return status;
    struct ox_module_get_global_request request = {module};
    struct ox_module_get_global_reply reply;
    status = ox_rpc_module_get_global(session, call, &request, name, name_bytes, &reply);
    if (status != CUDA_SUCCESS)
        return status;
    status = remember_variable(device, module, reply.dptr, reply.nbytes, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (dptr != NULL)
        *dptr = reply.dptr;
    if (bytes != NULL)
        *bytes = reply.nbytes;
    return CUDA_SUCCESS;
}

/* -- modules -------------------------------------------------------------------------------- */

CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    static const char call[] = "cuModuleLoadData";
    if (module == NULL || image == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "module or image is NULL");
    image = unwrapped(image);
    return load((void **)module, image, image_bytes(image), 0, call);
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
    image = unwrapped(image);
    return load((void **)module, image, image_bytes(image), 0, call);
}

CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
    static const char call[] = "cuModuleLoadFatBinary";
    if (module == NULL || fatCubin == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "module or fatCubin is NULL");
    fatCubin = unwrapped(fatCubin);
    return load((void **)module, fatCubin, image_bytes(fatCubin), 0, call);
}

CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
    static const char call[] = "cuModuleLoad";
    if (module == NULL || fname == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "module or fname is NULL");
    return load_file((void **)module, fname, 0, call);
}

CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    return get_function((void **)hfunc, hmod, name, 0, "cuModuleGetFunction");
}

CUresult cuModuleUnload(CUmodule hmod)
{
    return unload(hmod, "cuModuleUnload", "module");
}

CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name)
{
    return get_global(dptr, bytes, hmod, name, "cuModuleGetGlobal", "module");
}

/* -- libraries and kernels ------------------------------------------------------------------ */

CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
                           void **jitOptionsValues, unsigned int numJitOptions,
                           CUlibraryOption *libraryOptions, void **libraryOptionValues,
                           unsigned int numLibraryOptions)
{
    static const char call[] = "cuLibraryLoadData";
    /* JIT options are the server's own; library options only tune when the
     * driver loads the code into contexts, which the server does at once. */
    (void)jitOptions;
    (void)jitOptionsValues;
    (void)numJitOptions;
    (void)libraryOptions;
    (void)libraryOptionValues;
    (void)numLibraryOptions;
    if (library == NULL || code == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "library or code is NULL");
    code = unwrapped(code);
    return load((void **)library, code, image_bytes(code), OX_MODULE_IS_LIBRARY, call);
}

CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fileName,
                               CUjit_option *jitOptions, void **jitOptionsValues,
                               unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                               void **libraryOptionValues, unsigned int numLibraryOptions)
{
    static const char call[] = "cuLibraryLoadFromFile";
    (void)jitOptions;
    (void)jitOptionsValues;
    (void)numJitOptions;
    (void)libraryOptions;
    (void)libraryOptionValues;
    (void)numLibraryOptions;
    if (library == NULL || fileName == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "library or fileName is NULL");
    return load_file((void **)library, fileName, OX_MODULE_IS_LIBRARY, call);
}

CUresult cuLibraryUnload(CUlibrary library)
{
    return unload(library, "cuLibraryUnload", "library");
}

CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
    return get_function((void **)pKernel, library, name, OX_FUNCTION_IS_KERNEL,
                        "cuLibraryGetKernel");
}

/* LIBRARY (or KERNEL) as loaded on the current context's device: the
 * object a context-independent handle stands for there. */
static CUresult on_current_device(const void *handle, enum ox_handle_kind kind,
                                  const char *call, void **out)
{
    if (!ox_thread_has_context()) {
        *out = (void *)handle;  /* no current context: the library's home device */
        return CUDA_SUCCESS;
    }
    int device;
    CUresult status = ox_current_device(call, &device, NULL);
    return status != CUDA_SUCCESS ? status : ox_on_device(handle, kind, device, call, out);
}

CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library,
                            const char *name)
{
    static const char call[] = "cuLibraryGetGlobal";
    void *here;
    CUresult status = on_current_device(library, OX_H_MODULE, call, &here);
    return status != CUDA_SUCCESS ? status : get_global(dptr, bytes, here, name, call, "library");
}

/* A library is a module and a kernel a function to the GPU server: the
 * handle is checked as KIND and given back with the extra bits cleared. */
static CUresult same_object(void **out, const void *handle, enum ox_handle_kind kind,
                            const char *call, const char *what, const char *out_name)
{
    int device;
    uint32_t number;
    struct ox_session *session;
    CUresult status = ox_parse(handle, kind, call, what, &device, NULL, &number, &session);
    if (status != CUDA_SUCCESS)
        return status;
    if (out == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "%s is NULL", out_name);
    *out = (void *)(uintptr_t)ox_handle(kind, device, 0, number);
    return CUDA_SUCCESS;
}

CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library)
{
    static const char call[] = "cuLibraryGetModule";
    void *here;
    CUresult status = on_current_device(library, OX_H_MODULE, call, &here);
    return status != CUDA_SUCCESS ? status
                                  : same_object((void **)pMod, here, OX_H_MODULE, call, "library",
                                                "pMod");
}

CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
    static const char call[] = "cuKernelGetFunction";
    void *here;
    CUresult status = on_current_device(kernel, OX_H_FUNCTION, call, &here);
    return status != CUDA_SUCCESS ? status
                                  : same_object((void **)pFunc, here, OX_H_FUNCTION, call,
                                                "kernel", "pFunc");
}

/* -- the linker ----------------------------------------------------------------------------- */

/* A link in progress: its inputs, copied, and what cuLinkComplete made.
 * CUlinkState handles are LINK_HANDLE_TAG | slot << 8 | generation. */
#define LINKS_MAX 64
#define LINK_HANDLE_TAG 0x4F584C4E00000000ull  /* "OXLN" */
#define JIT_INFO_LOG_BUFFER 3
#define JIT_INFO_LOG_BUFFER_SIZE_BYTES 4
#define JIT_ERROR_LOG_BUFFER 5
#define JIT_ERROR_LOG_BUFFER_SIZE_BYTES 6

struct link_input {
    uint32_t type;
    uint8_t *data;
    size_t bytes;
};

struct link {
    int in_use;
    uint8_t generation;
    struct link_input *inputs;
    size_t count, capacity;
    uint8_t *image;  /* cuLinkComplete's, freed by cuLinkDestroy */
};

static pthread_mutex_t links_lock = PTHREAD_MUTEX_INITIALIZER;
static struct link links[LINKS_MAX];

/* The live link of HANDLE, with links_lock held (NULL: not one, unlocked). */
static struct link *link_of(CUlinkState handle, const char *call, CUresult *status)
{
    uint64_t value = (uint64_t)(uintptr_t)handle;
    size_t slot = (size_t)(value >> 8 & 0xFFFF);
    pthread_mutex_lock(&links_lock);
    if ((value & 0xFFFFFFFF00000000ull) == LINK_HANDLE_TAG && slot < LINKS_MAX
        && links[slot].in_use && links[slot].generation == (uint8_t)value)
        return &links[slot];
    pthread_mutex_unlock(&links_lock);
    *status = ox_fail(CUDA_ERROR_INVALID_HANDLE, call,
                      "the link state is not a live one of cuLinkCreate");
    return NULL;
}

/* The linker writes no log: empty the log buffers the options name and
 * say so in their sizes, as the driver reports the bytes it wrote. */
static void empty_logs(unsigned int count, CUjit_option *options, void **values)
{
    if (options == NULL || values == NULL)
        return;
    for (unsigned int i = 0; i < count; i++) {
        if (options[i] != JIT_INFO_LOG_BUFFER && options[i] != JIT_ERROR_LOG_BUFFER)
            continue;
        for (unsigned int j = 0; j < count; j++)
            if (options[j] == options[i] + 1 && (uintptr_t)values[j] > 0 && values[i] != NULL)
                *(char *)values[i] = '\0';
    }
    for (unsigned int i = 0; i < count; i++)
        if (options[i] == JIT_INFO_LOG_BUFFER_SIZE_BYTES
            || options[i] == JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
            values[i] = (void *)(uintptr_t)0;
}

CUresult cuLinkCreate_v2(unsigned int numOptions, CUjit_option *options, void **optionValues,
                         CUlinkState *stateOut)
{
    static const char call[] = "cuLinkCreate";
    CUresult status = ox_require_init(call);
    if (status != CUDA_SUCCESS)
        return status;
    if (stateOut == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "stateOut is NULL");
    if (numOptions > 0 && (options == NULL || optionValues == NULL))
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "%u options but no option arrays",
                       numOptions);
    pthread_mutex_lock(&links_lock);
    size_t slot = 0;
    while (slot < LINKS_MAX && links[slot].in_use)
        slot++;
    if (slot == LINKS_MAX) {
        pthread_mutex_unlock(&links_lock);
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call,
                       "%d links are in progress already: cuLinkDestroy finished ones",
                       LINKS_MAX);
    }
    struct link *l = &links[slot];
    uint8_t generation = (uint8_t)(l->generation + 1);
    memset(l, 0, sizeof *l);
    l->in_use = 1;
    l->generation = generation;
    *stateOut = (CUlinkState)(uintptr_t)(LINK_HANDLE_TAG | (uint64_t)slot << 8 | generation);
    pthread_mutex_unlock(&links_lock);
    empty_logs(numOptions, options, optionValues);
    return CUDA_SUCCESS;
}

CUresult cuLinkAddData_v2(CUlinkState state, CUjitInputType type, void *data, size_t size,
                          const char *name, unsigned int numOptions, CUjit_option *options,
                          void **optionValues)
{
    static const char call[] = "cuLinkAddData";
    (void)name;
    (void)numOptions;
    (void)options;
    (void)optionValues;
    if (data == NULL || size == 0 || size > OX_MODULE_IMAGE_MAX_BYTES)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "data is NULL or its size is 0 or over %d bytes",
                       OX_MODULE_IMAGE_MAX_BYTES);
    if (type != CU_JIT_INPUT_PTX && type != CU_JIT_INPUT_CUBIN
        && type != CU_JIT_INPUT_FATBINARY)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, call,
                       "input type %d cannot be linked on the pool: give PTX, a cubin or a "
                       "fatbinary (LTO-IR, objects and libraries need nvJitLink)", (int)type);
    CUresult status = CUDA_SUCCESS;
    struct link *l = link_of(state, call, &status);
    if (l == NULL)
        return status;
    if (l->image != NULL) {
        pthread_mutex_unlock(&links_lock);
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "the link is complete already");
    }
    if (l->count == l->capacity) {
        size_t capacity = l->capacity ? 2 * l->capacity : 4;
        struct link_input *grown = realloc(l->inputs, capacity * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&links_lock);
            return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for a link input");
        }
        l->inputs = grown;
        l->capacity = capacity;
    }
    /* PTX is text the server wants NUL-terminated; SIZE may or may not count it. */
    int text = type == CU_JIT_INPUT_PTX;
    size_t bytes = text ? strnlen(data, size) : size;
    uint8_t *copy = malloc(bytes + (size_t)text);
    if (copy == NULL) {
        pthread_mutex_unlock(&links_lock);
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for a link input");
    }
    memcpy(copy, data, bytes);
    if (text)
        copy[bytes++] = '\0';
    l->inputs[l->count++] = (struct link_input){(uint32_t)type, copy, bytes};
    pthread_mutex_unlock(&links_lock);
    return CUDA_SUCCESS;
}

CUresult cuLinkAddFile_v2(CUlinkState state, CUjitInputType type, const char *path,
                          unsigned int numOptions, CUjit_option *options, void **optionValues)
{
    static const char call[] = "cuLinkAddFile";
    if (path == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "path is NULL");
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return ox_fail(CUDA_ERROR_FILE_NOT_FOUND, call, "cannot open link input %s", path);
    uint8_t *data = malloc(OX_MODULE_IMAGE_MAX_BYTES + 1);
    size_t bytes = data ? fread(data, 1, OX_MODULE_IMAGE_MAX_BYTES + 1, file) : 0;
    fclose(file);
    if (data == NULL)
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory to read %s", path);
    CUresult status;
    if (bytes > OX_MODULE_IMAGE_MAX_BYTES)
        status = ox_fail(CUDA_ERROR_INVALID_IMAGE, call, "%s is over %d bytes", path,
                         OX_MODULE_IMAGE_MAX_BYTES);
    else
        status = cuLinkAddData_v2(state, type, data, bytes, path, numOptions, options,
                                  optionValues);
    free(data);
    return status;
}

CUresult cuLinkComplete(CUlinkState state, void **cubinOut, size_t *sizeOut)
{
    static const char call[] = "cuLinkComplete";
    if (cubinOut == NULL || sizeOut == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "cubinOut or sizeOut is NULL");
    CUresult status = CUDA_SUCCESS;
    struct link *l = link_of(state, call, &status);
    if (l == NULL)
        return status;
    if (l->count == 0) {
        pthread_mutex_unlock(&links_lock);
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "nothing was added to the link");
    }
    /* One input is its own image, loadable anywhere; several travel in the
     * link image, which the GPU server links when it is loaded. */
    size_t bytes = l->count == 1 ? l->inputs[0].bytes
                                 : OX_LINK_IMAGE_MAGIC_BYTES + OX_LINK_IMAGE_HEADER_BYTES;
    for (size_t i = 0; l->count > 1 && i < l->count; i++)
        bytes += OX_LINK_IMAGE_INPUT_BYTES + l->inputs[i].bytes;
    if (bytes > OX_MODULE_IMAGE_MAX_BYTES) {
        pthread_mutex_unlock(&links_lock);
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call,
                       "the linked inputs come to %zu bytes, over the %d a module may have",
                       bytes, OX_MODULE_IMAGE_MAX_BYTES);
    }
    uint8_t *image = malloc(bytes);
    if (image == NULL) {
        pthread_mutex_unlock(&links_lock);
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, call, "no host memory for the linked image");
    }
    if (l->count == 1) {
        memcpy(image, l->inputs[0].data, bytes);
    } else {
        uint8_t *at = image;
        memcpy(at, OX_LINK_IMAGE_MAGIC, OX_LINK_IMAGE_MAGIC_BYTES);
        at += OX_LINK_IMAGE_MAGIC_BYTES;
        ox_put_u32(at, (uint32_t)l->count);
        at += OX_LINK_IMAGE_HEADER_BYTES;
        for (size_t i = 0; i < l->count; i++) {
            ox_put_u32(at, l->inputs[i].type);
            ox_put_u64(at + 4, l->inputs[i].bytes);
            at += OX_LINK_IMAGE_INPUT_BYTES;
            memcpy(at, l->inputs[i].data, l->inputs[i].bytes);
            at += l->inputs[i].bytes;
        }
    }
    free(l->image);
    l->image = image;
    *cubinOut = image;
    *sizeOut = bytes;
    pthread_mutex_unlock(&links_lock);
    return CUDA_SUCCESS;
}

CUresult cuLinkDestroy(CUlinkState state)
{
    CUresult status = CUDA_SUCCESS;
    struct link *l = link_of(state, "cuLinkDestroy", &status);
    if (l == NULL)
        return status;
    for (size_t i = 0; i < l->count; i++)
        free(l->inputs[i].data);
    free(l->inputs);
    free(l->image);
    uint8_t generation = l->generation;
    memset(l, 0, sizeof *l);
    l->generation = generation;
    pthread_mutex_unlock(&links_lock);
    return CUDA_SUCCESS;
}
