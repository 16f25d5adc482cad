"""The device attributes a vGPU reports, whichever backend runs it.

The CUDA runtime fills ``cudaDeviceProp`` by asking the driver for every
``CUdevice_attribute`` it knows, so a server must answer each of them, and
answer honestly: a program that checks an attribute takes its other path
when it reads 0.

``SIM_ATTRIBUTES`` is the simulated GPU: a plausible compute-capability-8.0
part with the limits the PTX executor holds launches to. Every attribute
the CUDA 13.5 headers name (1..161) has a value. What no vGPU offers on any
backend (mapped and managed memory, IPC, ...) the client library answers
0 for itself, before asking a server (libcuda's api_device.c).
"""

from orionx_agent.server.ptx import executor

# The highest CUdevice_attribute value known (CUDA 13.5); above it, a server
# answers CUDA_ERROR_INVALID_VALUE as a driver does.
MAX_ATTRIBUTE = 161

SIM_SM_COUNT = 16

_TEXTURE_LIMITS = {
    21: 131072,                              # MAXIMUM_TEXTURE1D_WIDTH
    22: 131072, 23: 65536,                   # MAXIMUM_TEXTURE2D_WIDTH/HEIGHT
    24: 16384, 25: 16384, 26: 16384,         # MAXIMUM_TEXTURE3D_*
    27: 32768, 28: 32768, 29: 2048,          # MAXIMUM_TEXTURE2D_LAYERED_*
    42: 32768, 43: 2048,                     # MAXIMUM_TEXTURE1D_LAYERED_*
    45: 32768, 46: 32768,                    # MAXIMUM_TEXTURE2D_GATHER_*
    47: 8192, 48: 8192, 49: 32768,           # MAXIMUM_TEXTURE3D_*_ALTERNATE
    52: 32768, 53: 32768, 54: 2046,          # MAXIMUM_TEXTURECUBEMAP_*
    55: 32768, 56: 131072, 57: 65536,        # MAXIMUM_SURFACE1D/2D_*
    58: 16384, 59: 16384, 60: 16384,         # MAXIMUM_SURFACE3D_*
    61: 32768, 62: 2048,                     # MAXIMUM_SURFACE1D_LAYERED_*
    63: 32768, 64: 32768, 65: 2048,          # MAXIMUM_SURFACE2D_LAYERED_*
    66: 32768, 67: 32768, 68: 2046,          # MAXIMUM_SURFACECUBEMAP_*
    69: 268435456,                           # MAXIMUM_TEXTURE1D_LINEAR_WIDTH
    70: 131072, 71: 65000, 72: 2097120,      # MAXIMUM_TEXTURE2D_LINEAR_*
    73: 32768, 74: 32768,                    # MAXIMUM_TEXTURE2D_MIPMAPPED_*
    77: 32768,                               # MAXIMUM_TEXTURE1D_MIPMAPPED_WIDTH
}

SIM_ATTRIBUTES = dict.fromkeys(range(1, MAX_ATTRIBUTE + 1), 0)
SIM_ATTRIBUTES.update(_TEXTURE_LIMITS)
SIM_ATTRIBUTES.update({
    1: executor.MAX_THREADS_PER_BLOCK,   # MAX_THREADS_PER_BLOCK
    2: 1024, 3: 1024, 4: 64,             # MAX_BLOCK_DIM_X/Y/Z
    5: 2147483647, 6: 65535, 7: 65535,   # MAX_GRID_DIM_X/Y/Z
    8: executor.MAX_SHARED_BYTES_PER_BLOCK,  # MAX_SHARED_MEMORY_PER_BLOCK
    9: 65536,       # TOTAL_CONSTANT_MEMORY
    10: executor.WARP_SIZE,  # WARP_SIZE
    11: 2147483647,  # MAX_PITCH
    12: 65536,      # MAX_REGISTERS_PER_BLOCK
    13: executor.CLOCK_KHZ,  # CLOCK_RATE (kHz)
    14: 512,        # TEXTURE_ALIGNMENT
    15: 1,          # GPU_OVERLAP
    16: SIM_SM_COUNT,  # MULTIPROCESSOR_COUNT
    20: 0,          # COMPUTE_MODE: default
    30: 512,        # SURFACE_ALIGNMENT
    31: 1,          # CONCURRENT_KERNELS
    33: 0, 34: 0, 50: 0,  # PCI_BUS_ID, PCI_DEVICE_ID, PCI_DOMAIN_ID
    36: 1215000,    # MEMORY_CLOCK_RATE (kHz)
    37: 5120,       # GLOBAL_MEMORY_BUS_WIDTH (bits)
    38: 4 << 20,    # L2_CACHE_SIZE (bytes)
    39: 2048,       # MAX_THREADS_PER_MULTIPROCESSOR
    40: 2,          # ASYNC_ENGINE_COUNT
    41: 1,          # UNIFIED_ADDRESSING
    44: 1,          # CAN_TEX2D_GATHER
    51: 32,         # TEXTURE_PITCH_ALIGNMENT
    75: 8, 76: 0,   # COMPUTE_CAPABILITY_MAJOR/MINOR
    78: 1,          # STREAM_PRIORITIES_SUPPORTED
    79: 1, 80: 1,   # GLOBAL/LOCAL_L1_CACHE_SUPPORTED
    81: 65536,      # MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
    82: 65536,      # MAX_REGISTERS_PER_MULTIPROCESSOR
    87: 2,          # SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO
    90: 1,          # COMPUTE_PREEMPTION_SUPPORTED
    97: executor.MAX_SHARED_BYTES_PER_BLOCK,  # MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    106: 16,        # MAX_BLOCKS_PER_MULTIPROCESSOR
    111: 0,         # RESERVED_SHARED_MEMORY_PER_BLOCK
    126: 1,         # MEM_SYNC_DOMAIN_COUNT
    130: 0, 131: -1, 134: -1,  # NUMA_CONFIG: none; NUMA_ID, HOST_NUMA_ID: none
    149: 1,         # LOCALITY_DOMAIN_COUNT
    157: SIM_SM_COUNT,  # LOCALITY_DOMAIN_MULTIPROCESSOR_COUNT
})
# The simulated GPU's architecture, as CUDA numbers them (compute 8.0: 80).
SIM_ARCH = SIM_ATTRIBUTES[75] * 10 + SIM_ATTRIBUTES[76]
MAX_BLOCK_DIMS = (SIM_ATTRIBUTES[2], SIM_ATTRIBUTES[3], SIM_ATTRIBUTES[4])
MAX_GRID_DIMS = (SIM_ATTRIBUTES[5], SIM_ATTRIBUTES[6], SIM_ATTRIBUTES[7])


def vgpu_attribute(backend_value, attribute):
    """What a vGPU reports for ATTRIBUTE given its backend's BACKEND_VALUE
    (None: the backend does not know it); None when it is no attribute."""
    if not 1 <= attribute <= MAX_ATTRIBUTE:
        return None
    # An attribute newer than the backend's driver: a driver of that release
    # would answer 0 for a capability it does not have.
    return 0 if backend_value is None else backend_value
