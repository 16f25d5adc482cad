"""Every CUDA driver entry point the OrionX libcuda.so.1 knows, in one table.

``tools/gen_libcuda.py`` reads :data:`ENTRY_POINTS` and emits from it both
the lookup table of ``cuGetProcAddress{,_v2}`` and the linker's list of
exported symbols, so the two cannot disagree.

An :class:`EntryPoint` has the *base name* that ``cuGetProcAddress`` is
asked for (``"cuMemAlloc"``) and one :class:`Version` per ABI version of it:
the CUDA version number that introduced it (``3020`` for 3.2), the versioned
symbol a program links or ``dlsym``s (``"cuMemAlloc_v2"``, the real name, as
CuPy looks names up directly) and the C function that implements it. A
version whose symbol differs from its implementation is exported as an alias
of it (``cuDevicePrimaryCtxRelease`` of ``cuDevicePrimaryCtxRelease_v2``).

``ptds`` is the per-thread-default-stream variant (``_ptds`` for copies and
memsets, ``_ptsz`` for calls that take a stream), what ``cuGetProcAddress``
returns when asked with ``CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM``
at ABI 7000 or later. A GPU server session has one default stream, so each
variant is an alias of the legacy implementation (docs/libcuda.md).

``served=False`` marks a name the library exports so that programs which
resolve it up front still load, but does not serve yet: its generated stub
answers ``CUDA_ERROR_NOT_SUPPORTED`` with one line on stderr. Names in no
entry are unknown: ``cuGetProcAddress`` answers ``CUDA_ERROR_NOT_FOUND``.
"""

import dataclasses

PTDS_ABI_VERSION = 7000  # the first CUDA with per-thread default streams


@dataclasses.dataclass(frozen=True)
class Version:
    abi_version: int
    symbol: str
    implementation: str


@dataclasses.dataclass(frozen=True)
class EntryPoint:
    base_name: str
    versions: tuple
    ptds: Version | None = None
    served: bool = True


def _entry(base_name, *versions, ptds=None, served=True):
    """``versions``: (abi, symbol) or (abi, symbol, implementation) tuples;
    ``ptds``: the variant's symbol, implemented by the newest version."""
    parsed = tuple(Version(v[0], v[1], v[2] if len(v) > 2 else v[1]) for v in versions)
    variant = (Version(PTDS_ABI_VERSION, ptds, parsed[-1].implementation)
               if ptds else None)
    return EntryPoint(base_name, parsed, variant, served)


ENTRY_POINTS = (
    # initialisation, version, errors, the resolver itself
    _entry("cuInit", (2000, "cuInit")),
    _entry("cuDriverGetVersion", (2020, "cuDriverGetVersion")),
    _entry("cuGetErrorName", (6000, "cuGetErrorName")),
    _entry("cuGetErrorString", (6000, "cuGetErrorString")),
    _entry("cuGetProcAddress", (11030, "cuGetProcAddress"), (12000, "cuGetProcAddress_v2")),
    _entry("cuGetExportTable", (3000, "cuGetExportTable")),
    # devices
    _entry("cuDeviceGet", (2000, "cuDeviceGet")),
    _entry("cuDeviceGetCount", (2000, "cuDeviceGetCount")),
    _entry("cuDeviceGetName", (2000, "cuDeviceGetName")),
    _entry("cuDeviceGetUuid", (9020, "cuDeviceGetUuid"), (11040, "cuDeviceGetUuid_v2")),
    _entry("cuDeviceTotalMem", (3020, "cuDeviceTotalMem_v2")),
    _entry("cuDeviceGetAttribute", (2000, "cuDeviceGetAttribute")),
    _entry("cuDeviceCanAccessPeer", (4000, "cuDeviceCanAccessPeer")),
    _entry("cuDeviceComputeCapability", (2000, "cuDeviceComputeCapability")),
    _entry("cuProfilerStart", (4000, "cuProfilerStart")),
    _entry("cuProfilerStop", (4000, "cuProfilerStop")),
    # primary contexts
    _entry("cuDevicePrimaryCtxRetain", (7000, "cuDevicePrimaryCtxRetain")),
    _entry("cuDevicePrimaryCtxRelease",
           (7000, "cuDevicePrimaryCtxRelease", "cuDevicePrimaryCtxRelease_v2"),
           (11000, "cuDevicePrimaryCtxRelease_v2")),
    _entry("cuDevicePrimaryCtxSetFlags",
           (7000, "cuDevicePrimaryCtxSetFlags", "cuDevicePrimaryCtxSetFlags_v2"),
           (11000, "cuDevicePrimaryCtxSetFlags_v2")),
    _entry("cuDevicePrimaryCtxGetState", (7000, "cuDevicePrimaryCtxGetState")),
    _entry("cuDevicePrimaryCtxReset",
           (7000, "cuDevicePrimaryCtxReset", "cuDevicePrimaryCtxReset_v2"),
           (11000, "cuDevicePrimaryCtxReset_v2")),
    # contexts
    _entry("cuCtxCreate", (3020, "cuCtxCreate_v2"), (11040, "cuCtxCreate_v3"),
           (12050, "cuCtxCreate_v4")),
    _entry("cuCtxDestroy", (4000, "cuCtxDestroy_v2")),
    _entry("cuCtxPushCurrent", (4000, "cuCtxPushCurrent_v2")),
    _entry("cuCtxPopCurrent", (4000, "cuCtxPopCurrent_v2")),
    _entry("cuCtxSetCurrent", (4000, "cuCtxSetCurrent")),
    _entry("cuCtxGetCurrent", (4000, "cuCtxGetCurrent")),
    _entry("cuCtxGetDevice", (2000, "cuCtxGetDevice")),
    _entry("cuCtxGetFlags", (7000, "cuCtxGetFlags")),
    _entry("cuCtxGetApiVersion", (3020, "cuCtxGetApiVersion")),
    _entry("cuCtxSynchronize", (2000, "cuCtxSynchronize")),
    _entry("cuCtxEnablePeerAccess", (4000, "cuCtxEnablePeerAccess")),
    _entry("cuCtxDisablePeerAccess", (4000, "cuCtxDisablePeerAccess")),
    _entry("cuCtxGetStreamPriorityRange", (5050, "cuCtxGetStreamPriorityRange")),
    # memory
    _entry("cuMemGetInfo", (3020, "cuMemGetInfo_v2")),
    _entry("cuMemAlloc", (3020, "cuMemAlloc_v2")),
    _entry("cuMemFree", (3020, "cuMemFree_v2")),
    _entry("cuMemGetAddressRange", (3020, "cuMemGetAddressRange_v2")),
    _entry("cuMemAllocHost", (3020, "cuMemAllocHost_v2")),
    _entry("cuMemFreeHost", (2000, "cuMemFreeHost")),
    _entry("cuMemHostAlloc", (2020, "cuMemHostAlloc")),
    _entry("cuMemHostRegister", (6050, "cuMemHostRegister_v2")),
    _entry("cuMemHostUnregister", (4000, "cuMemHostUnregister")),
    _entry("cuMemHostGetDevicePointer", (3020, "cuMemHostGetDevicePointer_v2")),
    _entry("cuMemcpy", (4000, "cuMemcpy"), ptds="cuMemcpy_ptds"),
    _entry("cuMemcpyAsync", (4000, "cuMemcpyAsync"), ptds="cuMemcpyAsync_ptsz"),
    _entry("cuMemcpyHtoD", (3020, "cuMemcpyHtoD_v2"), ptds="cuMemcpyHtoD_v2_ptds"),
    _entry("cuMemcpyDtoH", (3020, "cuMemcpyDtoH_v2"), ptds="cuMemcpyDtoH_v2_ptds"),
    _entry("cuMemcpyDtoD", (3020, "cuMemcpyDtoD_v2"), ptds="cuMemcpyDtoD_v2_ptds"),
    _entry("cuMemcpyHtoDAsync", (3020, "cuMemcpyHtoDAsync_v2"),
           ptds="cuMemcpyHtoDAsync_v2_ptsz"),
    _entry("cuMemcpyDtoHAsync", (3020, "cuMemcpyDtoHAsync_v2"),
           ptds="cuMemcpyDtoHAsync_v2_ptsz"),
    _entry("cuMemcpyDtoDAsync", (3020, "cuMemcpyDtoDAsync_v2"),
           ptds="cuMemcpyDtoDAsync_v2_ptsz"),
    _entry("cuMemsetD8", (3020, "cuMemsetD8_v2"), ptds="cuMemsetD8_v2_ptds"),
    _entry("cuMemsetD16", (3020, "cuMemsetD16_v2"), ptds="cuMemsetD16_v2_ptds"),
    _entry("cuMemsetD32", (3020, "cuMemsetD32_v2"), ptds="cuMemsetD32_v2_ptds"),
    _entry("cuMemsetD8Async", (3020, "cuMemsetD8Async"), ptds="cuMemsetD8Async_ptsz"),
    _entry("cuMemsetD16Async", (3020, "cuMemsetD16Async"), ptds="cuMemsetD16Async_ptsz"),
    _entry("cuMemsetD32Async", (3020, "cuMemsetD32Async"), ptds="cuMemsetD32Async_ptsz"),
    _entry("cuPointerGetAttribute", (4000, "cuPointerGetAttribute")),
    _entry("cuPointerGetAttributes", (7000, "cuPointerGetAttributes")),
    # streams
    _entry("cuStreamCreate", (2000, "cuStreamCreate")),
    _entry("cuStreamCreateWithPriority", (5050, "cuStreamCreateWithPriority")),
    _entry("cuStreamDestroy", (4000, "cuStreamDestroy_v2")),
    _entry("cuStreamSynchronize", (2000, "cuStreamSynchronize"),
           ptds="cuStreamSynchronize_ptsz"),
    _entry("cuStreamQuery", (2000, "cuStreamQuery"), ptds="cuStreamQuery_ptsz"),
    # CUDA graphs and stream capture (api_graph.c)
    _entry("cuGraphCreate", (10000, "cuGraphCreate")),
    _entry("cuGraphDestroy", (10000, "cuGraphDestroy")),
    _entry("cuGraphAddKernelNode", (10000, "cuGraphAddKernelNode"),
           (12000, "cuGraphAddKernelNode_v2")),
    _entry("cuGraphAddMemcpyNode", (10000, "cuGraphAddMemcpyNode")),
    _entry("cuGraphAddMemsetNode", (10000, "cuGraphAddMemsetNode")),
    _entry("cuGraphAddHostNode", (10000, "cuGraphAddHostNode")),
    _entry("cuGraphAddEmptyNode", (10000, "cuGraphAddEmptyNode")),
    _entry("cuGraphAddEventRecordNode", (11010, "cuGraphAddEventRecordNode")),
    _entry("cuGraphAddEventWaitNode", (11010, "cuGraphAddEventWaitNode")),
    _entry("cuGraphAddDependencies", (10000, "cuGraphAddDependencies"),
           (12030, "cuGraphAddDependencies_v2")),
    _entry("cuGraphNodeGetType", (10000, "cuGraphNodeGetType")),
    _entry("cuGraphGetNodes", (10000, "cuGraphGetNodes")),
    _entry("cuGraphGetRootNodes", (10000, "cuGraphGetRootNodes")),
    _entry("cuGraphClone", (10000, "cuGraphClone")),
    _entry("cuGraphInstantiate", (10000, "cuGraphInstantiate"),
           (11000, "cuGraphInstantiate_v2", "cuGraphInstantiate")),
    _entry("cuGraphInstantiateWithFlags", (11040, "cuGraphInstantiateWithFlags")),
    _entry("cuGraphInstantiateWithParams", (12000, "cuGraphInstantiateWithParams"),
           ptds="cuGraphInstantiateWithParams_ptsz"),
    _entry("cuGraphExecDestroy", (10000, "cuGraphExecDestroy")),
    _entry("cuGraphLaunch", (10000, "cuGraphLaunch"), ptds="cuGraphLaunch_ptsz"),
    _entry("cuGraphUpload", (11010, "cuGraphUpload"), ptds="cuGraphUpload_ptsz"),
    _entry("cuStreamBeginCapture", (10000, "cuStreamBeginCapture"),
           (10010, "cuStreamBeginCapture_v2"), ptds="cuStreamBeginCapture_v2_ptsz"),
    _entry("cuStreamEndCapture", (10000, "cuStreamEndCapture"), ptds="cuStreamEndCapture_ptsz"),
    # memory pools and stream-ordered allocation (api_mempool.c)
    _entry("cuDeviceGetDefaultMemPool", (11020, "cuDeviceGetDefaultMemPool")),
    _entry("cuDeviceGetMemPool", (11020, "cuDeviceGetMemPool")),
    _entry("cuDeviceSetMemPool", (11020, "cuDeviceSetMemPool")),
    _entry("cuMemPoolCreate", (11020, "cuMemPoolCreate")),
    _entry("cuMemPoolDestroy", (11020, "cuMemPoolDestroy")),
    _entry("cuMemPoolSetAttribute", (11020, "cuMemPoolSetAttribute")),
    _entry("cuMemPoolGetAttribute", (11020, "cuMemPoolGetAttribute")),
    _entry("cuMemPoolTrimTo", (11020, "cuMemPoolTrimTo")),
    _entry("cuMemAllocAsync", (11020, "cuMemAllocAsync"), ptds="cuMemAllocAsync_ptsz"),
    _entry("cuMemAllocFromPoolAsync", (11020, "cuMemAllocFromPoolAsync"),
           ptds="cuMemAllocFromPoolAsync_ptsz"),
    _entry("cuMemFreeAsync", (11020, "cuMemFreeAsync"), ptds="cuMemFreeAsync_ptsz"),
    _entry("cuStreamIsCapturing", (10000, "cuStreamIsCapturing"),
           ptds="cuStreamIsCapturing_ptsz"),
    _entry("cuStreamGetCaptureInfo", (10010, "cuStreamGetCaptureInfo"),
           (11030, "cuStreamGetCaptureInfo_v2"), (12030, "cuStreamGetCaptureInfo_v3")),
    _entry("cuStreamWaitEvent", (3020, "cuStreamWaitEvent"), ptds="cuStreamWaitEvent_ptsz"),
    _entry("cuStreamGetPriority", (5050, "cuStreamGetPriority"),
           ptds="cuStreamGetPriority_ptsz"),
    _entry("cuStreamGetFlags", (5050, "cuStreamGetFlags"), ptds="cuStreamGetFlags_ptsz"),
    _entry("cuLaunchHostFunc", (10000, "cuLaunchHostFunc"), ptds="cuLaunchHostFunc_ptsz"),
    _entry("cuStreamAddCallback", (5000, "cuStreamAddCallback"),
           ptds="cuStreamAddCallback_ptsz"),
    # events
    _entry("cuEventCreate", (2000, "cuEventCreate")),
    _entry("cuEventDestroy", (4000, "cuEventDestroy_v2")),
    _entry("cuEventRecord", (2000, "cuEventRecord"), ptds="cuEventRecord_ptsz"),
    _entry("cuEventSynchronize", (2000, "cuEventSynchronize")),
    _entry("cuEventQuery", (2000, "cuEventQuery")),
    _entry("cuEventElapsedTime", (2000, "cuEventElapsedTime"),
           (12080, "cuEventElapsedTime_v2", "cuEventElapsedTime")),
    # modules and launches
    _entry("cuModuleLoad", (2000, "cuModuleLoad")),
    _entry("cuModuleLoadData", (2000, "cuModuleLoadData")),
    _entry("cuModuleLoadDataEx", (2010, "cuModuleLoadDataEx")),
    _entry("cuModuleLoadFatBinary", (2000, "cuModuleLoadFatBinary")),
    _entry("cuModuleGetFunction", (2000, "cuModuleGetFunction")),
    _entry("cuModuleUnload", (2000, "cuModuleUnload")),
    _entry("cuModuleGetGlobal", (3020, "cuModuleGetGlobal_v2")),
    _entry("cuLaunchKernel", (4000, "cuLaunchKernel"), ptds="cuLaunchKernel_ptsz"),
    _entry("cuLaunchKernelEx", (11060, "cuLaunchKernelEx"), ptds="cuLaunchKernelEx_ptsz"),
    _entry("cuLaunchCooperativeKernel", (9000, "cuLaunchCooperativeKernel"),
           ptds="cuLaunchCooperativeKernel_ptsz"),
    # libraries, kernels, the linker
    _entry("cuLibraryLoadData", (12000, "cuLibraryLoadData")),
    _entry("cuLibraryLoadFromFile", (12000, "cuLibraryLoadFromFile")),
    _entry("cuLibraryUnload", (12000, "cuLibraryUnload")),
    _entry("cuLibraryGetKernel", (12000, "cuLibraryGetKernel")),
    _entry("cuLibraryGetModule", (12000, "cuLibraryGetModule")),
    _entry("cuLibraryGetGlobal", (12000, "cuLibraryGetGlobal")),
    _entry("cuKernelGetFunction", (12000, "cuKernelGetFunction")),
    _entry("cuLinkCreate", (6050, "cuLinkCreate_v2")),
    _entry("cuLinkAddData", (6050, "cuLinkAddData_v2")),
    _entry("cuLinkAddFile", (6050, "cuLinkAddFile_v2")),
    _entry("cuLinkComplete", (5050, "cuLinkComplete")),
    _entry("cuLinkDestroy", (5050, "cuLinkDestroy")),
    # functions, kernels, occupancy
    _entry("cuFuncGetParamInfo", (12040, "cuFuncGetParamInfo")),
    _entry("cuKernelGetParamInfo", (12040, "cuKernelGetParamInfo")),
    _entry("cuFuncGetAttribute", (2020, "cuFuncGetAttribute")),
    _entry("cuFuncSetAttribute", (9000, "cuFuncSetAttribute")),
    _entry("cuKernelGetAttribute", (12000, "cuKernelGetAttribute")),
    _entry("cuKernelSetAttribute", (12000, "cuKernelSetAttribute")),
    _entry("cuFuncSetCacheConfig", (3000, "cuFuncSetCacheConfig")),
    _entry("cuKernelSetCacheConfig", (12000, "cuKernelSetCacheConfig")),
    _entry("cuOccupancyMaxActiveBlocksPerMultiprocessor",
           (6050, "cuOccupancyMaxActiveBlocksPerMultiprocessor")),
    _entry("cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags",
           (7000, "cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags")),
    _entry("cuOccupancyMaxPotentialBlockSize", (6050, "cuOccupancyMaxPotentialBlockSize")),
    _entry("cuOccupancyAvailableDynamicSMemPerBlock",
           (10020, "cuOccupancyAvailableDynamicSMemPerBlock")),
    _entry("cuOccupancyMaxPotentialBlockSizeWithFlags",
           (7000, "cuOccupancyMaxPotentialBlockSizeWithFlags")),
    _entry("cuMemcpyPeer", (4000, "cuMemcpyPeer"), ptds="cuMemcpyPeer_ptds"),
    _entry("cuMemcpyPeerAsync", (4000, "cuMemcpyPeerAsync"), ptds="cuMemcpyPeerAsync_ptsz"),
    # Exported for programs that resolve them up front (CuPy dlsyms these);
    # later phases of the C library serve them.
    # refused for good, each saying why (api_memory.c): no remote GPU can
    _entry("cuMemAllocManaged", (6000, "cuMemAllocManaged")),
    _entry("cuIpcGetMemHandle", (4010, "cuIpcGetMemHandle")),
    _entry("cuIpcOpenMemHandle", (11000, "cuIpcOpenMemHandle_v2")),
    _entry("cuIpcCloseMemHandle", (4010, "cuIpcCloseMemHandle")),
    _entry("cuIpcGetEventHandle", (4010, "cuIpcGetEventHandle")),
    _entry("cuIpcOpenEventHandle", (4010, "cuIpcOpenEventHandle")),
    _entry("cuDeviceGetPCIBusId", (4010, "cuDeviceGetPCIBusId"), served=False),
    # Runtime-level features whose driver calls are not served yet
    # (docs/runtime-api.md):
    # arrays, 2-D/3-D copies, textures, surfaces.
    _entry("cuMemAllocPitch", (3020, "cuMemAllocPitch_v2"), served=False),
    _entry("cuMemcpy2D", (3020, "cuMemcpy2D_v2"), served=False),
    _entry("cuMemcpy2DAsync", (3020, "cuMemcpy2DAsync_v2"), served=False),
    _entry("cuMemcpy3D", (3020, "cuMemcpy3D_v2"), served=False),
    _entry("cuMemcpy3DAsync", (3020, "cuMemcpy3DAsync_v2"), served=False),
    _entry("cuArrayCreate", (3020, "cuArrayCreate_v2"), served=False),
    _entry("cuArray3DCreate", (3020, "cuArray3DCreate_v2"), served=False),
    _entry("cuTexObjectCreate", (5000, "cuTexObjectCreate"), served=False),
    _entry("cuSurfObjectCreate", (5000, "cuSurfObjectCreate"), served=False),
)
