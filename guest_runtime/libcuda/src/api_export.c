/* cuGetExportTable: the private tables NVIDIA's CUDA runtime (libcudart,
 * static or shared, in every library of the process) asks its driver for.
 *
 * They are undocumented; what each slot must do was worked out by running
 * the runtimes of CUDA 12.9 and 13.5 against this library, and is written
 * down in docs/runtime-api.md. In short:
 * - the runtime interface: the primary context of a device (without a
 *   retain), modules from a fatbinary wrapper, a "load compilers" step;
 * - tools callback hooks and tools TLS: arrays of per-API enable flags, all
 *   0 because no profiler runs in this process (it runs by the GPU);
 * - context-local storage: the runtime keeps its per-context state here;
 * - context checks, and a logger the runtime reports its own errors to;
 * - an integrity check: an HMAC-MD2 over values the runtime knows (driver
 *   version, process and thread, table addresses, the devices' UUIDs and
 *   PCI ids). The runtime computes it too and refuses to start (error 103)
 *   when the two differ, so it is computed here, in the process, from the
 *   very values this library reported.
 * The integrity check also says which runtime release is asking: one this
 * library was not tested with gets a note naming the tested ones. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ox_state.h"

/* The runtime releases tested with this library (major*1000 + minor*10):
 * those of the pinned cuda-bindings (12.9, 13.5), nvidia-cuda-runtime
 * (13.5) and CuPy (13.2). Keep TESTED_RUNTIMES_TEXT in step. */
static const int tested_runtimes[] = {12090, 13020, 13050};
#define TESTED_RUNTIMES_TEXT "12.9, 13.2 and 13.5"

typedef void (*ox_slot)(void);
#define SLOT(fn) ((ox_slot)(void (*)(void))(fn))
#define TABLE_BYTES(table) ((ox_slot)(uintptr_t)sizeof(table))

/* -- unserved slots ----------------------------------------------------------------------- */

/* Slots no tested runtime calls: they answer an error that says so, rather
 * than crash or pretend. */
static CUresult unserved_slot(void)
{
    return ox_fail(CUDA_ERROR_NOT_SUPPORTED, "cuGetExportTable",
                   "the CUDA runtime called a slot of a private driver table that this "
                   "library does not serve (tested runtimes: " TESTED_RUNTIMES_TEXT ")");
}

/* Slots of the tools tables, reachable only while a profiler has enabled
 * a callback, which never happens here. */
static CUresult tools_slot(void)
{
    return CUDA_SUCCESS;
}

/* -- the logger --------------------------------------------------------------------------- */

/* The runtime's own diagnostics ("Insufficient driver: %d < %d"), which it
 * otherwise keeps to itself. */
static void log_message(const char *category, int level, const char *format, va_list args)
{
    (void)level;
    char text[512];
    vsnprintf(text, sizeof text, format ? format : "", args);
    fprintf(stderr, "orionx libcuda: the CUDA runtime says (%s): %s\n",
            category ? category : "CUDA", text);
}

static ox_slot log_table[] = {NULL, SLOT(log_message), SLOT(unserved_slot),
                              SLOT(unserved_slot)};

/* -- the runtime interface ---------------------------------------------------------------- */

/* A module from a fatbinary or its runtime wrapper (cuModuleLoadFatBinary
 * takes either). */
static CUresult module_from_wrapper(CUmodule *module, const void *wrapper)
{
    return cuModuleLoadFatBinary(module, wrapper);
}

/* The same with registered host variables: only without them. */
static CUresult module_from_wrapper_with(CUmodule *module, const void *wrapper,
                                         const void *variables, const void *more,
                                         unsigned count)
{
    if (variables != NULL || more != NULL || count != 0)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, "__cudaRegisterFatBinary",
                       "host variable registration through the legacy module path");
    return module_from_wrapper(module, wrapper);
}

static CUresult module_from_fatbin_with(const void *fatbin, CUmodule *module,
                                        const void *variables, const void *more,
                                        unsigned count)
{
    if (variables != NULL || more != NULL || count != 0)
        return ox_fail(CUDA_ERROR_NOT_SUPPORTED, "__cudaRegisterFatBinary",
                       "host variable registration through the legacy module path");
    return cuModuleLoadFatBinary(module, fatbin);
}

/* Device DEV's primary context, without a retain: the runtime keys its
 * context-local storage by it, so it is the handle cuDevicePrimaryCtxRetain
 * and cuCtxGetCurrent give. */
static CUresult primary_context(CUcontext *context, CUdevice dev)
{
    static const char call[] = "cuDevicePrimaryCtxRetain";
    CUresult status = ox_check_device(dev, call);
    if (status != CUDA_SUCCESS)
        return status;
    if (context == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "context is NULL");
    pthread_mutex_lock(&ox_state.lock);
    *context = ox_primary_context(dev);
    pthread_mutex_unlock(&ox_state.lock);
    return CUDA_SUCCESS;
}

static CUresult graphics_device(CUdevice dev, void *out)
{
    (void)dev;
    (void)out;
    return ox_fail(CUDA_ERROR_NOT_SUPPORTED, "cudaGLSetGLDevice",
                   "OpenGL interoperability needs the GPU in this machine");
}

static void ignored_notice(uintptr_t value)
{
    (void)value;
}

/* The runtime's "load the JIT compilers" step: compilers run on the server. */
static CUresult load_compilers(void)
{
    return CUDA_SUCCESS;
}

static ox_slot runtime_table[16];  /* filled by fill_tables: size, then 15 slots */

/* -- tools hooks and TLS ------------------------------------------------------------------ */

/* Per-callback and per-domain enable flags, indexed by the runtime. The
 * runtimes tested index up to 566 callbacks and 13 domains. */
static uint32_t callback_flags[1024];
static uint32_t domain_flags[16];

static void get_callback_flags(uint32_t **flags, size_t *count)
{
    *flags = callback_flags;
    *count = sizeof callback_flags / sizeof callback_flags[0];
}

static void get_domain_flags(uint32_t **flags, size_t *count)
{
    *flags = domain_flags;
    *count = sizeof domain_flags / sizeof domain_flags[0];
}

static ox_slot hooks_table[] = {NULL, SLOT(tools_slot), SLOT(get_callback_flags),
                                SLOT(tools_slot), SLOT(tools_slot), SLOT(tools_slot),
                                SLOT(get_domain_flags)};
static ox_slot tools_tls_table[] = {NULL, SLOT(tools_slot), SLOT(tools_slot),
                                    SLOT(tools_slot)};
static ox_slot tools_13_table[64];  /* CUDA 13's tools table: size, then tools slots */

/* -- context checks ------------------------------------------------------------------------ */

static CUresult context_check(CUcontext context, uint32_t *kind, const void **detail)
{
    (void)context;
    (void)detail;
    if (kind != NULL)
        *kind = 0;  /* an ordinary context */
    return CUDA_SUCCESS;
}

static uint32_t context_checks_flag(void)
{
    return 0;
}

static ox_slot context_checks_table[] = {NULL, SLOT(unserved_slot), SLOT(context_check),
                                         SLOT(context_checks_flag)};

/* -- context-local storage ---------------------------------------------------------------- */

typedef void (*cls_destructor)(CUcontext context, void *key, void *value);

struct cls_entry {
    CUcontext context;  /* the whole handle: a reused slot's next context is another */
    void *key;
    void *value;
    cls_destructor destructor;
};

static pthread_mutex_t cls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cls_entry *cls_entries;
static size_t cls_count, cls_capacity;

/* Whether CONTEXT (NULL: the calling thread's current one, put there) is
 * a live context. */
static int cls_context(CUcontext *context)
{
    if (*context == NULL)
        *context = ox_thread.depth ? ox_thread.stack[ox_thread.depth - 1] : NULL;
    if (*context == NULL)
        return 0;
    pthread_mutex_lock(&ox_state.lock);
    int alive = ox_context_slot(*context) >= 0;
    pthread_mutex_unlock(&ox_state.lock);
    return alive;
}

static struct cls_entry *cls_find(CUcontext context, const void *key)
{
    for (size_t i = 0; i < cls_count; i++)
        if (cls_entries[i].context == context && cls_entries[i].key == key)
            return &cls_entries[i];
    return NULL;
}

static CUresult cls_put(CUcontext context, void *key, void *value, cls_destructor destructor)
{
    if (!cls_context(&context))
        return ox_fail(CUDA_ERROR_INVALID_CONTEXT, "cudaSetDevice",
                       "the CUDA runtime stored context state with no live context current");
    pthread_mutex_lock(&cls_lock);
    struct cls_entry *entry = cls_find(context, key);
    if (entry == NULL
        && ox_grow((void **)&cls_entries, &cls_capacity, cls_count, sizeof *cls_entries) < 0) {
        pthread_mutex_unlock(&cls_lock);
        return ox_fail(CUDA_ERROR_OUT_OF_MEMORY, "cudaSetDevice",
                       "no host memory for the CUDA runtime's context state");
    }
    if (entry == NULL)
        entry = &cls_entries[cls_count++];
    *entry = (struct cls_entry){context, key, value, destructor};
    pthread_mutex_unlock(&cls_lock);
    return CUDA_SUCCESS;
}

static CUresult cls_delete(CUcontext context, void *key)
{
    int alive = cls_context(&context);
    pthread_mutex_lock(&cls_lock);
    struct cls_entry *entry = alive ? cls_find(context, key) : NULL;
    if (entry != NULL)
        *entry = cls_entries[--cls_count];
    pthread_mutex_unlock(&cls_lock);
    return CUDA_SUCCESS;
}

/* A miss is an error: the runtime then makes its state and puts it. */
static CUresult cls_get(void **value, CUcontext context, void *key)
{
    int alive = cls_context(&context);
    pthread_mutex_lock(&cls_lock);
    struct cls_entry *entry = alive ? cls_find(context, key) : NULL;
    if (entry != NULL && value != NULL)
        *value = entry->value;
    pthread_mutex_unlock(&cls_lock);
    return entry != NULL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

void ox_context_storage_ended(CUcontext context)
{
    for (;;) {
        pthread_mutex_lock(&cls_lock);
        struct cls_entry ended = {.context = NULL};
        for (size_t i = 0; i < cls_count; i++) {
            if (cls_entries[i].context == context) {
                ended = cls_entries[i];
                cls_entries[i] = cls_entries[--cls_count];
                break;
            }
        }
        pthread_mutex_unlock(&cls_lock);
        if (ended.context == NULL)
            return;
        /* Unlocked: a destructor may call back into the driver. */
        if (ended.destructor != NULL)
            ended.destructor(ended.context, ended.key, ended.value);
    }
}

static ox_slot cls_table[] = {SLOT(cls_put), SLOT(cls_delete), SLOT(cls_get),
                              SLOT(unserved_slot)};

/* -- the integrity check ------------------------------------------------------------------ */

/* MD2 (RFC 1319): its substitution table, from the digits of pi. */
static const uint8_t md2_pi[256] = {
    41, 46, 67, 201, 162, 216, 124, 1, 61, 54, 84, 161, 236, 240, 6, 19,
    98, 167, 5, 243, 192, 199, 115, 140, 152, 147, 43, 217, 188, 76, 130, 202,
    30, 155, 87, 60, 253, 212, 224, 22, 103, 66, 111, 24, 138, 23, 229, 18,
    190, 78, 196, 214, 218, 158, 222, 73, 160, 251, 245, 142, 187, 47, 238, 122,
    169, 104, 121, 145, 21, 178, 7, 63, 148, 194, 16, 137, 11, 34, 95, 33,
    128, 127, 93, 154, 90, 144, 50, 39, 53, 62, 204, 231, 191, 247, 151, 3,
    255, 25, 48, 179, 72, 165, 181, 209, 215, 94, 146, 42, 172, 86, 170, 198,
    79, 184, 56, 210, 150, 164, 125, 182, 118, 252, 107, 226, 156, 116, 4, 241,
    69, 157, 112, 89, 100, 113, 135, 32, 134, 91, 207, 101, 230, 45, 168, 2,
    27, 96, 37, 173, 174, 176, 185, 246, 28, 70, 97, 105, 52, 64, 126, 15,
    85, 71, 163, 35, 221, 81, 175, 58, 195, 92, 249, 206, 186, 197, 234, 38,
    44, 83, 13, 110, 133, 40, 132, 9, 211, 223, 205, 244, 65, 129, 77, 82,
    106, 220, 55, 200, 108, 193, 171, 250, 36, 225, 123, 8, 12, 189, 177, 74,
    120, 136, 149, 139, 227, 99, 232, 109, 233, 203, 213, 254, 59, 0, 29, 57,
    242, 239, 183, 14, 102, 88, 208, 228, 166, 119, 114, 248, 235, 117, 75, 10,
    49, 68, 80, 180, 143, 237, 31, 26, 219, 153, 141, 51, 159, 17, 131, 20,
};

struct md2 {
    uint8_t state[48];
    uint8_t checksum[16];
    uint8_t block[16];
    size_t filled;
};

static void md2_block(struct md2 *md, const uint8_t *block)
{
    uint8_t last = md->checksum[15];
    for (int i = 0; i < 16; i++) {
        md->state[16 + i] = block[i];
        md->state[32 + i] = (uint8_t)(block[i] ^ md->state[i]);
        last = md->checksum[i] ^= md2_pi[block[i] ^ last];
    }
    unsigned t = 0;
    for (int round = 0; round < 18; round++) {
        for (int i = 0; i < 48; i++)
            t = md->state[i] ^= md2_pi[t];
        t = (t + (unsigned)round) & 0xFF;
    }
}

static void md2_update(struct md2 *md, const uint8_t *data, size_t bytes)
{
    while (bytes > 0) {
        size_t take = 16 - md->filled < bytes ? 16 - md->filled : bytes;
        memcpy(md->block + md->filled, data, take);
        md->filled += take;
        data += take;
        bytes -= take;
        if (md->filled == 16) {
            md2_block(md, md->block);
            md->filled = 0;
        }
    }
}

static void md2_final(struct md2 *md, uint8_t digest[16])
{
    uint8_t pad = (uint8_t)(16 - md->filled);
    uint8_t padding[16];
    memset(padding, pad, sizeof padding);
    md2_update(md, padding, pad);
    uint8_t checksum[16];
    memcpy(checksum, md->checksum, 16);
    md2_block(md, checksum);
    memcpy(digest, md->state, 16);
}

/* HMAC (RFC 2104) over MD2, whose block is 16 bytes: so is this key. */
static const uint8_t integrity_key[16] = {0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52,
                                          0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f};

static void hmac_md2(const uint8_t *message, size_t bytes, uint8_t digest[16])
{
    uint8_t pad[16], inner[16];
    struct md2 md = {0};
    for (int i = 0; i < 16; i++)
        pad[i] = integrity_key[i] ^ 0x36;
    md2_update(&md, pad, 16);
    md2_update(&md, message, bytes);
    md2_final(&md, inner);
    md = (struct md2){0};
    for (int i = 0; i < 16; i++)
        pad[i] = integrity_key[i] ^ 0x5c;
    md2_update(&md, pad, 16);
    md2_update(&md, inner, 16);
    md2_final(&md, digest);
}

#define INTEGRITY_HEADER_BYTES 48
#define INTEGRITY_DEVICE_BYTES 28

static ox_slot integrity_table[3];

static void note_runtime(int version)
{
    static int noted;
    int release = version - version % 10;
    for (size_t i = 0; i < sizeof tested_runtimes / sizeof tested_runtimes[0]; i++)
        if (release == tested_runtimes[i])
            return;
    if (__atomic_exchange_n(&noted, 1, __ATOMIC_SEQ_CST))
        return;
    fprintf(stderr, "orionx libcuda: this process runs CUDA runtime %d.%d, a release this "
            "library was not tested with (tested: " TESTED_RUNTIMES_TEXT "); if the runtime "
            "fails to start (error 103: integrity checks failed), use one of those\n",
            release / 1000, release % 1000 / 10);
}

/* The runtime asks three times (versions V, V+1, V+2) and compares the
 * third answer with its own. */
static CUresult integrity_check(uint32_t version, uint64_t unix_time, uint64_t digest[2])
{
    static const char call[] = "cudaInitDevice";
    note_runtime((int)version);
    if (digest == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "integrity check: no output");
    int devices = 0, driver_version = 0;
    CUresult status = cuDeviceGetCount(&devices);
    if (status == CUDA_SUCCESS)
        status = cuDriverGetVersion(&driver_version);
    if (status != CUDA_SUCCESS)
        return status;
    uint8_t message[INTEGRITY_HEADER_BYTES + OX_DEVICES_MAX * INTEGRITY_DEVICE_BYTES];
    uint32_t words[4] = {(uint32_t)driver_version, version, (uint32_t)getpid(),
                         (uint32_t)(uintptr_t)pthread_self()};
    uint64_t addresses[4] = {(uint64_t)(uintptr_t)runtime_table,
                             (uint64_t)(uintptr_t)integrity_table,
                             (uint64_t)(uintptr_t)integrity_table[1], unix_time};
    memcpy(message, words, sizeof words);
    memcpy(message + sizeof words, addresses, sizeof addresses);
    size_t bytes = INTEGRITY_HEADER_BYTES;
    for (int d = 0; d < devices; d++, bytes += INTEGRITY_DEVICE_BYTES) {
        CUuuid uuid;
        int32_t pci[3];
        status = cuDeviceGetUuid_v2(&uuid, d);
        if (status == CUDA_SUCCESS)
            status = cuDeviceGetAttribute(&pci[0], CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d);
        if (status == CUDA_SUCCESS)
            status = cuDeviceGetAttribute(&pci[1], CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d);
        if (status == CUDA_SUCCESS)
            status = cuDeviceGetAttribute(&pci[2], CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, d);
        if (status != CUDA_SUCCESS)
            return status;
        memcpy(message + bytes, uuid.bytes, 16);
        memcpy(message + bytes + 16, pci, sizeof pci);
    }
    uint8_t out[16];
    hmac_md2(message, bytes, out);
    memcpy(digest, out, sizeof out);
    return CUDA_SUCCESS;
}

/* -- the lookup ---------------------------------------------------------------------------- */

struct export_table {
    uint8_t id[16];
    ox_slot *table;
};

static const struct export_table export_tables[] = {
    {{0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46, 0x8b, 0x4e, 0xb9, 0xe2, 0xfb, 0x46, 0x9e, 0x7c,
      0x0d, 0xd9}, log_table},
    {{0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd,
      0x9d, 0xf9}, runtime_table},
    {{0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c,
      0x0a, 0x66}, hooks_table},
    {{0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a,
      0xec, 0xdc}, tools_tls_table},
    {{0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48, 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24,
      0xc8, 0xf2}, tools_13_table},
    {{0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8,
      0x95, 0x93}, cls_table},
    {{0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d,
      0xfa, 0x7e}, context_checks_table},
    {{0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66,
      0xe1, 0xf2}, integrity_table},
};

/* Tables asked for by NVIDIA libraries that carry on without them: declined
 * without a line on stderr. NVRTC 13.x asks for this one whenever it
 * compiles. */
static const uint8_t declined_quietly[][16] = {
    {0xda, 0x91, 0x51, 0xd3, 0x3a, 0xe6, 0xcc, 0x41, 0xa5, 0xc0, 0x4f, 0x26, 0xd5, 0x33, 0xe3,
     0x28},
};

static void fill_tables(void)
{
    log_table[0] = TABLE_BYTES(log_table);
    runtime_table[0] = TABLE_BYTES(runtime_table);
    for (size_t i = 1; i < sizeof runtime_table / sizeof runtime_table[0]; i++)
        runtime_table[i] = SLOT(unserved_slot);
    runtime_table[1] = SLOT(module_from_wrapper);
    runtime_table[2] = SLOT(primary_context);
    runtime_table[3] = SLOT(graphics_device);
    runtime_table[6] = SLOT(module_from_wrapper_with);
    runtime_table[7] = SLOT(ignored_notice);
    runtime_table[8] = SLOT(module_from_fatbin_with);
    runtime_table[12] = SLOT(load_compilers);
    hooks_table[0] = TABLE_BYTES(hooks_table);
    tools_tls_table[0] = TABLE_BYTES(tools_tls_table);
    tools_13_table[0] = TABLE_BYTES(tools_13_table);
    for (size_t i = 1; i < sizeof tools_13_table / sizeof tools_13_table[0]; i++)
        tools_13_table[i] = SLOT(tools_slot);
    context_checks_table[0] = TABLE_BYTES(context_checks_table);
    integrity_table[0] = TABLE_BYTES(integrity_table);
    integrity_table[1] = SLOT(integrity_check);
    integrity_table[2] = SLOT(unserved_slot);
}

CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    static const char call[] = "cuGetExportTable";
    static pthread_once_t filled = PTHREAD_ONCE_INIT;
    if (ppExportTable == NULL || pExportTableId == NULL)
        return ox_fail(CUDA_ERROR_INVALID_VALUE, call, "ppExportTable or pExportTableId is NULL");
    pthread_once(&filled, fill_tables);
    for (size_t i = 0; i < sizeof export_tables / sizeof export_tables[0]; i++) {
        if (memcmp(export_tables[i].id, pExportTableId->bytes, 16) == 0) {
            *ppExportTable = export_tables[i].table;
            return CUDA_SUCCESS;
        }
    }
    *ppExportTable = NULL;
    for (size_t i = 0; i < sizeof declined_quietly / sizeof declined_quietly[0]; i++)
        if (memcmp(declined_quietly[i], pExportTableId->bytes, 16) == 0)
            return CUDA_ERROR_NOT_FOUND;
    const uint8_t *id = (const uint8_t *)pExportTableId->bytes;
    return ox_fail(CUDA_ERROR_NOT_FOUND, call,
                   "private driver table %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                   "%02x%02x%02x%02x%02x%02x is not one this library serves (it serves "
                   "those of the CUDA runtime " TESTED_RUNTIMES_TEXT ")",
                   id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9],
                   id[10], id[11], id[12], id[13], id[14], id[15]);
}
