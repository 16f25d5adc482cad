/*
 * orionx/cuda.h - the CUDA driver API as the OrionX libcuda.so.1 serves it.
 *
 * Programs include this header (or NVIDIA's cuda.h: the types, values and
 * exported symbols are the same) and link -lcuda against the OrionX library;
 * every call goes to a pooled vGPU on a GPU server over the OrionX data
 * plane (docs/protocol.md). What each call does differently from a local GPU
 * is said at the call; docs/libcuda.md has the design.
 *
 * Errors: every call returns a CUresult with CUDA's own value. A failure
 * also leaves one line on stderr the first time it happens for its cause,
 * naming the call, the reason and what to do.
 *
 * Threads: every call may be made from any thread. Each thread has its own
 * stack of current contexts; the process's state sits behind one lock that
 * is never held while waiting for the GPU server.
 *
 * Streams and the default stream: a GPU server session has one default
 * stream, so the legacy and the per-thread default stream (CU_STREAM_LEGACY,
 * CU_STREAM_PER_THREAD, the _ptds/_ptsz variants) are the same stream.
 *
 * Names: the declarations below use the exported, versioned symbols
 * (cuMemAlloc_v2); orionx/cuda_names.h, included at the end, maps the plain
 * names a program writes onto them as NVIDIA's header does.
 */
#ifndef ORIONX_CUDA_H
#define ORIONX_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA version this header describes (CUDA_VERSION of cuda.h). */
#define CUDA_VERSION 12080

typedef unsigned long long CUdeviceptr;
typedef int CUdevice;
typedef unsigned int cuuint32_t;
typedef unsigned long long cuuint64_t;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphNode_st *CUgraphNode;
typedef struct CUgraphEdgeData_st CUgraphEdgeData;
typedef struct CUipcMemHandle_st {
    char reserved[64];
} CUipcMemHandle;
typedef struct CUipcEventHandle_st {
    char reserved[64];
} CUipcEventHandle;
typedef struct CUmemPoolHandle_st *CUmemoryPool;
typedef enum CUmemAllocationType_enum {
    CU_MEM_ALLOCATION_TYPE_INVALID = 0,
    CU_MEM_ALLOCATION_TYPE_PINNED = 1
} CUmemAllocationType;
typedef enum CUmemAllocationHandleType_enum {
    CU_MEM_HANDLE_TYPE_NONE = 0
} CUmemAllocationHandleType;
typedef enum CUmemLocationType_enum {
    CU_MEM_LOCATION_TYPE_INVALID = 0,
    CU_MEM_LOCATION_TYPE_DEVICE = 1
} CUmemLocationType;
typedef struct CUmemLocation_st {
    CUmemLocationType type;
    int id;
} CUmemLocation;
typedef struct CUmemPoolProps_st {
    CUmemAllocationType allocType;
    CUmemAllocationHandleType handleTypes;
    CUmemLocation location;
    void *win32SecurityAttributes;
    size_t maxSize;
    unsigned short usage;
    unsigned char reserved[54];
} CUmemPoolProps;
typedef enum CUmemPool_attribute_enum {
    CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES = 1,
    CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC = 2,
    CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES = 3,
    CU_MEMPOOL_ATTR_RELEASE_THRESHOLD = 4,
    CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT = 5,
    CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH = 6,
    CU_MEMPOOL_ATTR_USED_MEM_CURRENT = 7,
    CU_MEMPOOL_ATTR_USED_MEM_HIGH = 8
} CUmemPool_attribute;
typedef struct CUgraphExec_st *CUgraphExec;
typedef struct CUkern_st *CUkernel;
typedef struct CUarray_st *CUarray;
typedef enum CUgraphNodeType_enum {
    CU_GRAPH_NODE_TYPE_KERNEL = 0,
    CU_GRAPH_NODE_TYPE_MEMCPY = 1,
    CU_GRAPH_NODE_TYPE_MEMSET = 2,
    CU_GRAPH_NODE_TYPE_HOST = 3,
    CU_GRAPH_NODE_TYPE_EMPTY = 5,
    CU_GRAPH_NODE_TYPE_WAIT_EVENT = 6,
    CU_GRAPH_NODE_TYPE_EVENT_RECORD = 7
} CUgraphNodeType;
typedef enum CUstreamCaptureMode_enum {
    CU_STREAM_CAPTURE_MODE_GLOBAL = 0,
    CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
    CU_STREAM_CAPTURE_MODE_RELAXED = 2
} CUstreamCaptureMode;
typedef enum CUgraphInstantiateResult_enum {
    CUDA_GRAPH_INSTANTIATE_SUCCESS = 0,
    CUDA_GRAPH_INSTANTIATE_ERROR = 1
} CUgraphInstantiateResult;
typedef struct CUDA_GRAPH_INSTANTIATE_PARAMS_st {
    cuuint64_t flags;
    CUstream hUploadStream;
    CUgraphNode hErrNode_out;
    CUgraphInstantiateResult result_out;
} CUDA_GRAPH_INSTANTIATE_PARAMS;
typedef struct CUDA_KERNEL_NODE_PARAMS_st {
    CUfunction func;
    unsigned int gridDimX, gridDimY, gridDimZ;
    unsigned int blockDimX, blockDimY, blockDimZ;
    unsigned int sharedMemBytes;
    void **kernelParams;
    void **extra;
} CUDA_KERNEL_NODE_PARAMS_v1;
typedef struct CUDA_KERNEL_NODE_PARAMS_v2_st {
    CUfunction func;
    unsigned int gridDimX, gridDimY, gridDimZ;
    unsigned int blockDimX, blockDimY, blockDimZ;
    unsigned int sharedMemBytes;
    void **kernelParams;
    void **extra;
    CUkernel kern;     /* used when func is NULL */
    CUcontext ctx;
} CUDA_KERNEL_NODE_PARAMS_v2;
typedef struct CUDA_MEMSET_NODE_PARAMS_st {
    CUdeviceptr dst;
    size_t pitch;
    unsigned int value;
    unsigned int elementSize;
    size_t width;
    size_t height;
} CUDA_MEMSET_NODE_PARAMS;
typedef struct CUDA_HOST_NODE_PARAMS_st {
    void (*fn)(void *userData);
    void *userData;
} CUDA_HOST_NODE_PARAMS;
typedef struct CUDA_MEMCPY3D_st {
    size_t srcXInBytes, srcY, srcZ, srcLOD;
    int srcMemoryType;  /* CUmemorytype */
    const void *srcHost;
    CUdeviceptr srcDevice;
    CUarray srcArray;
    void *reserved0;
    size_t srcPitch, srcHeight;
    size_t dstXInBytes, dstY, dstZ, dstLOD;
    int dstMemoryType;
    void *dstHost;
    CUdeviceptr dstDevice;
    CUarray dstArray;
    void *reserved1;
    size_t dstPitch, dstHeight;
    size_t WidthInBytes, Height, Depth;
} CUDA_MEMCPY3D;
typedef enum CUstreamCaptureStatus_enum {
    CU_STREAM_CAPTURE_STATUS_NONE = 0,
    CU_STREAM_CAPTURE_STATUS_ACTIVE = 1,
    CU_STREAM_CAPTURE_STATUS_INVALIDATED = 2
} CUstreamCaptureStatus;
typedef struct CUuuid_st {
    char bytes[16];
} CUuuid;

/* CUresult: CUDA's values (those this library returns, and common ones). */
typedef enum cudaError_enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_DEINITIALIZED = 4,
    CUDA_ERROR_STUB_LIBRARY = 34,
    CUDA_ERROR_DEVICE_UNAVAILABLE = 46,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_CONTEXT_ALREADY_CURRENT = 202,
    CUDA_ERROR_INVALID_PTX = 218,
    CUDA_ERROR_INVALID_SOURCE = 300,
    CUDA_ERROR_FILE_NOT_FOUND = 301,
    CUDA_ERROR_OPERATING_SYSTEM = 304,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_ILLEGAL_STATE = 401,
    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
    CUDA_ERROR_STREAM_CAPTURE_UNMATCHED = 903,
    CUDA_ERROR_STREAM_CAPTURE_ISOLATION = 905,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_PEER_ACCESS_UNSUPPORTED = 217,
    CUDA_ERROR_PEER_ACCESS_NOT_ENABLED = 705,
    CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE = 708,
    CUDA_ERROR_CONTEXT_IS_DESTROYED = 709,
    CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED = 712,
    CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED = 713,
    CUDA_ERROR_LAUNCH_FAILED = 719,
    CUDA_ERROR_NOT_PERMITTED = 800,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_UNKNOWN = 999,
    /* OrionX's own, above CUDA's range: the GPU server ended the session
     * because the pool gave its vGPU to another allocation. */
    CUDA_ERROR_MPS_CLIENT_TERMINATED = 810
} CUresult;

/* Device attributes the GPU servers report (others: CUDA_ERROR_INVALID_VALUE
 * unless the server's GPU knows them). The values are CUDA's. */
typedef enum CUdevice_attribute_enum {
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y = 3,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z = 4,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
    CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK = 12,
    CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_INTEGRATED = 18,
    CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY = 19,
    CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33,
    CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID = 34,
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39,
    CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID = 50,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR = 81,
    CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR = 82,
    CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY = 83,
    CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED = 86,
    CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS = 88,
    CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS = 89,
    CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM = 91,
    CU_DEVICE_ATTRIBUTE_COOPERATIVE_MULTI_DEVICE_LAUNCH = 96,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED = 99,
    CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES = 100,
    CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST = 101,
    CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED = 102,
    CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED = 103,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR = 106,
    CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115,
    CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED = 116,
    CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES = 119,
    CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = 124,
    CU_DEVICE_ATTRIBUTE_IPC_EVENT_SUPPORTED = 125,
    CU_DEVICE_ATTRIBUTE_MULTICAST_SUPPORTED = 132
} CUdevice_attribute;

typedef enum CUpointer_attribute_enum {
    CU_POINTER_ATTRIBUTE_CONTEXT = 1,
    CU_POINTER_ATTRIBUTE_MEMORY_TYPE = 2,
    CU_POINTER_ATTRIBUTE_DEVICE_POINTER = 3,
    CU_POINTER_ATTRIBUTE_HOST_POINTER = 4,
    CU_POINTER_ATTRIBUTE_SYNC_MEMOPS = 6,
    CU_POINTER_ATTRIBUTE_BUFFER_ID = 7,
    CU_POINTER_ATTRIBUTE_IS_MANAGED = 8,
    CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL = 9,
    CU_POINTER_ATTRIBUTE_RANGE_START_ADDR = 11,
    CU_POINTER_ATTRIBUTE_RANGE_SIZE = 12,
    CU_POINTER_ATTRIBUTE_MAPPED = 13
} CUpointer_attribute;

typedef enum CUmemorytype_enum {
    CU_MEMORYTYPE_HOST = 1,
    CU_MEMORYTYPE_DEVICE = 2,
    CU_MEMORYTYPE_ARRAY = 3,
    CU_MEMORYTYPE_UNIFIED = 4
} CUmemorytype;

typedef enum CUdriverProcAddressQueryResult_enum {
    CU_GET_PROC_ADDRESS_SUCCESS = 0,
    CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND = 1,
    CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT = 2
} CUdriverProcAddressQueryResult;

/* cuGetProcAddress flags */
#define CU_GET_PROC_ADDRESS_DEFAULT 0
#define CU_GET_PROC_ADDRESS_LEGACY_STREAM 1
#define CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM 2

/* The two named default streams (both the session's one default stream). */
#define CU_STREAM_LEGACY ((CUstream)0x1)
#define CU_STREAM_PER_THREAD ((CUstream)0x2)
#define CU_STREAM_DEFAULT 0x0
#define CU_STREAM_NON_BLOCKING 0x1

#define CU_EVENT_DEFAULT 0x0
#define CU_EVENT_BLOCKING_SYNC 0x1
#define CU_EVENT_DISABLE_TIMING 0x2

#define CU_CTX_SCHED_AUTO 0x00
#define CU_CTX_SCHED_MASK 0x07
#define CU_CTX_MAP_HOST 0x08
#define CU_CTX_FLAGS_MASK 0xFF

#define CU_MEMHOSTALLOC_PORTABLE 0x01
#define CU_MEMHOSTALLOC_DEVICEMAP 0x02
#define CU_MEMHOSTALLOC_WRITECOMBINED 0x04
#define CU_MEMHOSTREGISTER_PORTABLE 0x01
#define CU_MEMHOSTREGISTER_DEVICEMAP 0x02
#define CU_MEMHOSTREGISTER_IOMEMORY 0x04
#define CU_MEMHOSTREGISTER_READ_ONLY 0x08

/* cuLaunchKernel's extra: a packed parameter buffer and its size. */
#define CU_LAUNCH_PARAM_END ((void *)0x00)
#define CU_LAUNCH_PARAM_BUFFER_POINTER ((void *)0x01)
#define CU_LAUNCH_PARAM_BUFFER_SIZE ((void *)0x02)

typedef int CUjit_option;

/* Libraries and kernels (CUDA 12): on a pooled vGPU a library is loaded on
 * the device of the context current when it is loaded. */
typedef struct CUlib_st *CUlibrary;
typedef struct CUkern_st *CUkernel;
typedef int CUlibraryOption;
typedef struct CUlinkState_st *CUlinkState;
typedef enum CUjitInputType_enum {
    CU_JIT_INPUT_CUBIN = 0,
    CU_JIT_INPUT_PTX = 1,
    CU_JIT_INPUT_FATBINARY = 2,
    CU_JIT_INPUT_OBJECT = 3,
    CU_JIT_INPUT_LIBRARY = 4,
    CU_JIT_INPUT_NVVM = 5
} CUjitInputType;

typedef enum CUfunction_attribute_enum {
    CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
    CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1,
    CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES = 2,
    CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3,
    CU_FUNC_ATTRIBUTE_NUM_REGS = 4,
    CU_FUNC_ATTRIBUTE_PTX_VERSION = 5,
    CU_FUNC_ATTRIBUTE_BINARY_VERSION = 6,
    CU_FUNC_ATTRIBUTE_CACHE_MODE_CA = 7,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT = 9
} CUfunction_attribute;

typedef enum CUfunc_cache_enum {
    CU_FUNC_CACHE_PREFER_NONE = 0,
    CU_FUNC_CACHE_PREFER_SHARED = 1,
    CU_FUNC_CACHE_PREFER_L1 = 2,
    CU_FUNC_CACHE_PREFER_EQUAL = 3
} CUfunc_cache;

/* Dynamic shared memory a block of BLOCKSIZE threads needs (occupancy). */
typedef size_t (*CUoccupancyB2DSize)(int blockSize);

typedef enum CUlaunchAttributeID_enum {
    CU_LAUNCH_ATTRIBUTE_IGNORE = 0,
    CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW = 1,
    CU_LAUNCH_ATTRIBUTE_COOPERATIVE = 2,
    CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY = 3,
    CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4,
    CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE = 5,
    CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6,
    CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT = 7,
    CU_LAUNCH_ATTRIBUTE_PRIORITY = 8,
    CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP = 9,
    CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN = 10,
    CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION = 11,
    CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT = 12,
    CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE = 13,
    CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT = 14
} CUlaunchAttributeID;

/* A launch attribute's value: 64 bytes, of which this library reads the
 * members below (the others are CUDA's, at the same places). */
typedef union CUlaunchAttributeValue_union {
    char pad[64];
    unsigned long long align_;  /* CUDA's members hold pointers: 8-byte aligned */
    int cooperative;
    struct {
        unsigned int x;
        unsigned int y;
        unsigned int z;
    } clusterDim;
    int priority;
} CUlaunchAttributeValue;

typedef struct CUlaunchAttribute_st {
    CUlaunchAttributeID id;
    char pad[8 - sizeof(CUlaunchAttributeID)];
    CUlaunchAttributeValue value;
} CUlaunchAttribute;

typedef struct CUlaunchConfig_st {
    unsigned int gridDimX, gridDimY, gridDimZ;
    unsigned int blockDimX, blockDimY, blockDimZ;
    unsigned int sharedMemBytes;
    CUstream hStream;
    CUlaunchAttribute *attrs;
    unsigned int numAttrs;
} CUlaunchConfig;
/* cuCtxCreate_v3/_v4 parameters; this library accepts none of them set. */
typedef struct CUexecAffinityParam_st CUexecAffinityParam;
typedef struct CUctxCigParam_st CUctxCigParam;
typedef struct CUctxCreateParams_st {
    CUexecAffinityParam *execAffinityParams;
    int numExecAffinityParams;
    CUctxCigParam *cigParams;
} CUctxCreateParams;

#if defined(ORIONX_LIBCUDA_BUILD) && defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* -- initialisation, versions, errors ----------------------------------- */

/* Find the devices (ORIONX_ENDPOINT and ORIONX_TOKEN, see docs/libcuda.md)
 * and connect device 0's session. FLAGS must be 0. Fails with
 * CUDA_ERROR_NO_DEVICE when nothing is configured or reachable; a later
 * call tries again. */
CUresult cuInit(unsigned int Flags);
/* The driver version of device 0's GPU server (its real driver on the cuda
 * backend). Works before cuInit; when no server is reachable it reports the
 * version this library implements (CUDA_VERSION). */
CUresult cuDriverGetVersion(int *driverVersion);
/* CUDA's name of ERROR ("CUDA_ERROR_INVALID_VALUE"); CUDA_ERROR_INVALID_VALUE
 * and *pStr NULL for a value that is not a CUresult. */
CUresult cuGetErrorName(CUresult error, const char **pStr);
/* A sentence describing ERROR; as cuGetErrorName for unknown values. */
CUresult cuGetErrorString(CUresult error, const char **pStr);
/* The implementation of SYMBOL (a base name, "cuMemAlloc") at ABI version
 * CUDAVERSION (the newest of its versions not above it), the per-thread
 * default stream variant when FLAGS has
 * CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM. Unknown names:
 * CUDA_ERROR_NOT_FOUND and *SYMBOLSTATUS CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
 * only versions newer than CUDAVERSION: CUDA_ERROR_NOT_FOUND and
 * CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT. Silent (it is a query). */
CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                             cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus);
/* cuGetProcAddress_v2 without the status (CUDA 11.3 to 11.8). */
CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags);
/* Private tables of NVIDIA's runtime: none yet, CUDA_ERROR_NOT_FOUND (with
 * one line on stderr). */
CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId);

/* -- devices: one per vGPU of the session token ------------------------- */

/* How many devices: the vGPUs of ORIONX_TOKEN from ORIONX_VGPU_INDEX on. */
CUresult cuDeviceGetCount(int *count);
/* Device ORDINAL (CUDA_ERROR_INVALID_DEVICE past the count). */
CUresult cuDeviceGet(CUdevice *device, int ordinal);
/* The GPU server's name of the vGPU, cut to LEN - 1 bytes and terminated. */
CUresult cuDeviceGetName(char *name, int len, CUdevice dev);
/* A UUID stable for the vGPU: derived from its id in the session token. */
CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev);
/* As cuDeviceGetUuid (there is no MIG distinction on a vGPU). */
CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev);
/* The vGPU's memory quota in bytes, not the physical GPU's memory. */
CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev);
/* An attribute of the server's GPU; cached, as it never changes. Features
 * a remote GPU cannot give this process (mapped, managed and pageable host
 * memory, memory pools, virtual memory management, IPC, RDMA, multicast,
 * host atomics) answer 0 whatever the GPU has, so programs take their
 * plain paths. */
CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev);
/* Compute capability from the two attributes (deprecated in CUDA). */
CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev);
/* 0: vGPUs are separate sessions, no peer access; CUDA_ERROR_INVALID_DEVICE
 * when both are the same device, as CUDA answers. */
CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev);
/* Profiler ranges: accepted, nothing to start (profile on the GPU server). */
CUresult cuProfilerStart(void);
CUresult cuProfilerStop(void);

/* -- primary contexts ----------------------------------------------------- */

/* The device's primary context, its reference count raised. */
CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev);
/* Lower the primary context's count; CUDA_ERROR_INVALID_CONTEXT at 0. */
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev);
/* Flags the primary context reports (scheduling flags have no effect). */
CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags);
/* Its flags, and whether it is active (retained at least once). */
CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active);
/* Synchronize the device and make the primary context inactive. Memory
 * stays allocated (the session is shared by the device's contexts). */
CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev);

/* -- contexts: client-side, all of a device's contexts share its session -- */

/* A new context on DEV, made current (pushed) on the calling thread. */
CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev);
/* As cuCtxCreate_v2; execution affinity (NUMPARAMS > 0) is not supported. */
CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams,
                        unsigned int flags, CUdevice dev);
/* As cuCtxCreate_v2; affinity or CIG parameters are not supported. */
CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams,
                        unsigned int flags, CUdevice dev);
/* Destroy a created context (synchronizing its device first) and pop it
 * from the calling thread if current. Primary contexts: CUDA_ERROR_INVALID_CONTEXT. */
CUresult cuCtxDestroy_v2(CUcontext ctx);
/* Push CTX on the calling thread's stack of current contexts. */
CUresult cuCtxPushCurrent_v2(CUcontext ctx);
/* Pop the calling thread's current context into *PCTX (may be NULL). */
CUresult cuCtxPopCurrent_v2(CUcontext *pctx);
/* Replace the top of the calling thread's stack (NULL pops it). */
CUresult cuCtxSetCurrent(CUcontext ctx);
/* The calling thread's current context, NULL when none. */
CUresult cuCtxGetCurrent(CUcontext *pctx);
/* The device of the current context. */
CUresult cuCtxGetDevice(CUdevice *device);
/* The current context's flags. */
CUresult cuCtxGetFlags(unsigned int *flags);
/* The API version of CTX (CUDA_VERSION of this library). */
CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version);
/* Wait for all work of the current context's device; returns a pending
 * asynchronous error (sticky errors, docs/protocol.md). */
CUresult cuCtxSynchronize(void);
CUresult cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int Flags);
CUresult cuCtxDisablePeerAccess(CUcontext peerContext);
/* Stream priorities: 0 (least) to 0 (greatest); priorities are recorded,
 * GPU servers schedule by vGPU, not by stream. */
CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority);

/* -- memory ---------------------------------------------------------------- */

/* Free and total bytes of the vGPU's memory quota. */
CUresult cuMemGetInfo_v2(size_t *free, size_t *total);
/* BYTESIZE bytes of device memory in the current context's session. */
CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize);
CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags);
CUresult cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr);
CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags);
CUresult cuIpcCloseMemHandle(CUdeviceptr dptr);
CUresult cuIpcGetEventHandle(CUipcEventHandle *pHandle, CUevent event);
CUresult cuIpcOpenEventHandle(CUevent *phEvent, CUipcEventHandle handle);
CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev);
CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev);
CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool);
CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps);
CUresult cuMemPoolDestroy(CUmemoryPool pool);
CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value);
CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value);
CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep);
CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream);
CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                 CUstream hStream);
CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream);
/* Free an allocation (pipelined; unknown pointers: CUDA_ERROR_INVALID_VALUE). */
CUresult cuMemFree_v2(CUdeviceptr dptr);
/* The allocation containing DPTR: its base and size (either may be NULL). */
CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr);
/* Host memory, allocated here in the client: copies from and to it are as
 * fast as from any host memory (there is no pinning across the network). */
CUresult cuMemAllocHost_v2(void **pp, size_t bytesize);
/* Free memory of cuMemAllocHost or cuMemHostAlloc. */
CUresult cuMemFreeHost(void *p);
/* As cuMemAllocHost; CU_MEMHOSTALLOC_DEVICEMAP (mapped host memory) cannot
 * reach a remote GPU: CUDA_ERROR_NOT_SUPPORTED. */
CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags);
/* Record P as registered host memory (for cuPointerGetAttribute); the
 * DEVICEMAP and IOMEMORY flags: CUDA_ERROR_NOT_SUPPORTED. */
CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags);
/* Forget a registration of cuMemHostRegister. */
CUresult cuMemHostUnregister(void *p);
/* Mapped host memory cannot be remoted: CUDA_ERROR_NOT_SUPPORTED. */
CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags);
/* Copies. Host to device sends the bytes before returning (the async form
 * too), device to host waits for them (the async form too: its ordering is
 * kept and the data is there when it returns). Ranges outside this
 * session's allocations: CUDA_ERROR_INVALID_VALUE from the server. */
/* BYTECOUNT bytes from host memory SRCHOST to device memory. */
CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount);
/* BYTECOUNT bytes from device memory to host memory DSTHOST. */
CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount);
/* BYTECOUNT bytes between two device allocations, on the server. */
CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount);
/* The same three on HSTREAM (0, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD:
 * the default stream). */
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount,
                              CUstream hStream);
CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                              CUstream hStream);
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount,
                              CUstream hStream);
/* Unified copies: the direction comes from which addresses are this
 * process's device allocations (anything else is host memory). */
CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount);
CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream);
CUresult cuMemcpyPeer(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                      CUcontext srcContext, size_t ByteCount);
CUresult cuMemcpyPeerAsync(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                           CUcontext srcContext, size_t ByteCount, CUstream hStream);
/* Set N elements of 8, 16 or 32 bits at DSTDEVICE to a value (the async
 * forms on HSTREAM, pipelined). The server has 8- and 32-bit memsets;
 * 16-bit ones with two different bytes are sent as pattern copies. */
CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N);
CUresult cuMemsetD16_v2(CUdeviceptr dstDevice, unsigned short us, size_t N);
CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N);
CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream);
CUresult cuMemsetD16Async(CUdeviceptr dstDevice, unsigned short us, size_t N,
                          CUstream hStream);
CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream);
/* Attributes of a device allocation or client host memory: CONTEXT,
 * MEMORY_TYPE, DEVICE_POINTER, HOST_POINTER, SYNC_MEMOPS, BUFFER_ID,
 * IS_MANAGED (0), DEVICE_ORDINAL, RANGE_START_ADDR, RANGE_SIZE, MAPPED.
 * Unknown pointers: CUDA_ERROR_INVALID_VALUE. */
CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr);
/* cuPointerGetAttribute for NUMATTRIBUTES attributes at once; an unknown
 * pointer gives zeros (CUDA's rule for this call). */
CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
                                void **data, CUdeviceptr ptr);

/* -- streams and events ---------------------------------------------------- */

/* A stream of the current context's session. */
CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags);
/* As cuStreamCreate; PRIORITY is recorded (cuStreamGetPriority) and clamped
 * to the range cuCtxGetStreamPriorityRange reports. */
CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority);
/* Destroy a stream (its queued work still runs). */
CUresult cuStreamDestroy_v2(CUstream hStream);
/* Wait for the stream's work; returns a pending asynchronous error. */
CUresult cuStreamSynchronize(CUstream hStream);
/* CUDA_SUCCESS when the stream's work is done, CUDA_ERROR_NOT_READY (with
 * no message) while it is not, without waiting; a failed kernel's error. */
CUresult cuStreamQuery(CUstream hStream);
CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus);
CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                cuuint64_t *id_out);
CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                   cuuint64_t *id_out, CUgraph *graph_out,
                                   const CUgraphNode **dependencies_out,
                                   size_t *numDependencies_out);
CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                   cuuint64_t *id_out, CUgraph *graph_out,
                                   const CUgraphNode **dependencies_out,
                                   const CUgraphEdgeData **edgeData_out,
                                   size_t *numDependencies_out);
/* Order the stream's later work after HEVENT's recorded work, on the GPU
 * server without waiting here; an event of another device is waited for
 * in the client (a correct, stronger ordering). */
CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags);
/* The stream's priority: always 0 (see cuCtxGetStreamPriorityRange). */
CUresult cuStreamGetPriority(CUstream hStream, int *priority);
/* The flags the stream was created with (0 for the default stream). */
CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags);
/* Host functions on a stream: the call waits for the stream's work, then
 * runs FN in the calling thread before it returns, so the stream's later
 * work (sent after it) follows it as CUDA orders it. */
typedef void (*CUhostFn)(void *userData);
typedef void (*CUstreamCallback)(CUstream hStream, CUresult status, void *userData);
CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData);
/* As cuLaunchHostFunc; CALLBACK is told the stream's status. FLAGS must be 0. */
CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
                             unsigned int flags);
/* An event of the current context's session; FLAGS are passed to the server. */
CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags);
/* Destroy an event. */
CUresult cuEventDestroy_v2(CUevent hEvent);
/* Record HEVENT on HSTREAM (pipelined). */
CUresult cuEventRecord(CUevent hEvent, CUstream hStream);
/* Wait until the work before the event's record is done. */
CUresult cuEventSynchronize(CUevent hEvent);
/* As cuStreamQuery, for the work before the event's record. */
CUresult cuEventQuery(CUevent hEvent);
/* Milliseconds between two recorded events, measured on the server. */
CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd);

/* -- modules and launches -------------------------------------------------- */

/* Load the module image in file FNAME (read here, sent to the server). */
CUresult cuModuleLoad(CUmodule *module, const char *fname);
/* Load IMAGE: PTX text (NUL-terminated), an ELF cubin, a fatbin, or the
 * built-in kernels' image "orionx:builtin-kernels". Other bytes:
 * CUDA_ERROR_INVALID_IMAGE. cuLinkComplete's image of several inputs links on
 * the server at this load. The sim runs PTX (also inside a fatbin). */
CUresult cuModuleLoadData(CUmodule *module, const void *image);
/* As cuModuleLoadData; the JIT options are not sent (the server's own apply). */
CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin);
CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
                            CUjit_option *options, void **optionValues);
/* The kernel NAME of module HMOD (CUDA_ERROR_NOT_FOUND when it has none). */
CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name);
/* Unload a module; its functions' handles and variables become invalid. */
CUresult cuModuleUnload(CUmodule hmod);
/* The device pointer and size of the module's __device__ (.global) or
 * __constant__ (.const) variable NAME (either output may be NULL): copies
 * reach it, and a kernel started later sees what they wrote. The module's
 * variables count against the vGPU's memory on the sim backend.
 * CUDA_ERROR_NOT_FOUND when it has no such variable. */
CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name);
/* Launch F (pipelined: errors of the kernel come back from the next
 * synchronizing call). Parameters: KERNELPARAMS, one pointer per parameter
 * to its value, packed here by the function's parameter layout (asked of
 * the server once per function), or EXTRA with CU_LAUNCH_PARAM_BUFFER_POINTER
 * and CU_LAUNCH_PARAM_BUFFER_SIZE (the packed bytes, sent as they are);
 * both: CUDA_ERROR_INVALID_VALUE. F may be a CUkernel. */
CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                        unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                        unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                        void **kernelParams, void **extra);
/* As cuLaunchKernel with CONFIG's shape, stream and attributes. Cache,
 * priority, synchronization and memory-domain attributes are accepted and
 * have no effect; cooperative launches and clusters of more than one block:
 * CUDA_ERROR_NOT_SUPPORTED; other attributes: CUDA_ERROR_NOT_SUPPORTED. */
CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                          void **extra);

/* -- libraries, kernels, the linker ----------------------------------------- */

/* As cuModuleLoadData, as a library (the options are not sent). */
CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
                           void **jitOptionsValues, unsigned int numJitOptions,
                           CUlibraryOption *libraryOptions, void **libraryOptionValues,
                           unsigned int numLibraryOptions);
/* As cuModuleLoad, as a library. */
CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fileName,
                               CUjit_option *jitOptions, void **jitOptionsValues,
                               unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                               void **libraryOptionValues, unsigned int numLibraryOptions);
CUresult cuLibraryUnload(CUlibrary library);
/* The kernel NAME of LIBRARY (CUDA_ERROR_NOT_FOUND when it has none). */
CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name);
/* As cuModuleGetGlobal, of LIBRARY. */
CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library,
                            const char *name);
/* The module of LIBRARY (the same server module). */
CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library);
/* The function of KERNEL in its device's context. */
CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel);
/* Start a link; its info and error log buffers (CU_JIT_*_LOG_BUFFER) are
 * left empty, the link itself happening on the GPU server. */
CUresult cuLinkCreate_v2(unsigned int numOptions, CUjit_option *options, void **optionValues,
                         CUlinkState *stateOut);
/* Add PTX, a cubin or a fatbinary (copied); LTO-IR, objects and libraries:
 * CUDA_ERROR_NOT_SUPPORTED. */
CUresult cuLinkAddData_v2(CUlinkState state, CUjitInputType type, void *data, size_t size,
                          const char *name, unsigned int numOptions, CUjit_option *options,
                          void **optionValues);
CUresult cuLinkAddFile_v2(CUlinkState state, CUjitInputType type, const char *path,
                          unsigned int numOptions, CUjit_option *options, void **optionValues);
/* The linked image, valid until cuLinkDestroy: one input as it is; several
 * in an image that cuModuleLoadData links on the GPU server (so errors of
 * the link itself come back from that load). */
CUresult cuLinkComplete(CUlinkState state, void **cubinOut, size_t *sizeOut);
CUresult cuLinkDestroy(CUlinkState state);

/* Cooperative launches (grid-wide synchronization) cannot be remoted:
 * CUDA_ERROR_NOT_SUPPORTED, with a line on stderr. */
CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                   unsigned int gridDimZ, unsigned int blockDimX,
                                   unsigned int blockDimY, unsigned int blockDimZ,
                                   unsigned int sharedMemBytes, CUstream hStream,
                                   void **kernelParams);

/* -- functions and occupancy ----------------------------------------------- */

/* Offset and size of parameter PARAMINDEX of FUNC in its packed buffer;
 * an index past the last parameter: CUDA_ERROR_INVALID_VALUE (no message). */
CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
                            size_t *paramSize);
CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset,
                              size_t *paramSize);
/* A function attribute as the GPU server's backend reports it (the sim:
 * NUM_REGS 0, it has no register file). */
CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc);
/* MAX_DYNAMIC_SHARED_SIZE_BYTES and PREFERRED_SHARED_MEMORY_CARVEOUT can be set. */
CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value);
/* As cuFuncGetAttribute / cuFuncSetAttribute; DEV must be the kernel's device. */
CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel,
                              CUdevice dev);
CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel,
                              CUdevice dev);
/* Accepted; cache preferences do not change a pooled vGPU. */
CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config);
CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev);
/* Occupancy, computed here from the device's attributes (warp size, threads,
 * blocks, shared memory and registers per multiprocessor) and the
 * function's (threads per block, static shared memory, registers). */
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func,
                                                     int blockSize, size_t dynamicSMemSize);
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func,
                                                              int blockSize,
                                                              size_t dynamicSMemSize,
                                                              unsigned int flags);
/* Dynamic shared memory each of NUMBLOCKS resident blocks of BLOCKSIZE
 * threads can have on one multiprocessor (0 when they do not fit). */
CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func,
                                                 int numBlocks, int blockSize);
/* The block size that keeps the most threads resident and the grid that
 * fills the device with it. */
CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
                                          CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                          size_t dynamicSMemSize, int blockSizeLimit);
CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize,
                                                   CUfunction func,
                                                   CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                   size_t dynamicSMemSize, int blockSizeLimit,
                                                   unsigned int flags);

#if defined(ORIONX_LIBCUDA_BUILD) && defined(__GNUC__)
/* CUDA graphs and stream capture (api_graph.c) */
CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags);
CUresult cuGraphDestroy(CUgraph hGraph);
CUresult cuGraphAddKernelNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                              const CUgraphNode *dependencies, size_t numDependencies,
                              const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams);
CUresult cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph,
                                 const CUgraphNode *dependencies, size_t numDependencies,
                                 const CUDA_KERNEL_NODE_PARAMS_v2 *nodeParams);
CUresult cuGraphAddMemcpyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                              const CUgraphNode *dependencies, size_t numDependencies,
                              const CUDA_MEMCPY3D *copyParams, CUcontext ctx);
CUresult cuGraphAddMemsetNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                              const CUgraphNode *dependencies, size_t numDependencies,
                              const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx);
CUresult cuGraphAddHostNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                            const CUgraphNode *dependencies, size_t numDependencies,
                            const CUDA_HOST_NODE_PARAMS *nodeParams);
CUresult cuGraphAddEmptyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                             const CUgraphNode *dependencies, size_t numDependencies);
CUresult cuGraphAddEventRecordNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                   const CUgraphNode *dependencies, size_t numDependencies,
                                   CUevent event);
CUresult cuGraphAddEventWaitNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                 const CUgraphNode *dependencies, size_t numDependencies,
                                 CUevent event);
CUresult cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
                                size_t numDependencies);
CUresult cuGraphAddDependencies_v2(CUgraph hGraph, const CUgraphNode *from,
                                   const CUgraphNode *to, const CUgraphEdgeData *edgeData,
                                   size_t numDependencies);
CUresult cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType *type);
CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes);
CUresult cuGraphGetRootNodes(CUgraph hGraph, CUgraphNode *rootNodes, size_t *numRootNodes);
CUresult cuGraphClone(CUgraph *phGraphClone, CUgraph originalGraph);
CUresult cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
                            char *logBuffer, size_t bufferSize);
CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                     unsigned long long flags);
CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                      CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams);
CUresult cuGraphExecDestroy(CUgraphExec hGraphExec);
CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream);
CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream);
CUresult cuStreamBeginCapture(CUstream hStream);
CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode);
CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph);

#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#include "orionx/cuda_names.h"

#endif
