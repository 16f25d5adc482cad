"""CUDA driver result codes and the exception that carries one.

The values are CUDA's own, so a status read off the wire means the same as it
would from the real driver, and the C library (``libcuda.so.1``) hands it
back to the program unchanged.

A preempted session ends with CUDA's own code for a client that its
server has terminated, ``CUDA_ERROR_MPS_CLIENT_TERMINATED`` (810): like an
MPS client, the process must start again to use CUDA, and the message
names the allocation that took the GPU. A code of the pool's own would be
unknown to NVIDIA's bindings, which raise on a CUresult they cannot name.
"""

import enum


class CUresult(enum.IntEnum):
    CUDA_SUCCESS = 0
    CUDA_ERROR_INVALID_VALUE = 1
    CUDA_ERROR_OUT_OF_MEMORY = 2
    CUDA_ERROR_NOT_INITIALIZED = 3
    CUDA_ERROR_DEINITIALIZED = 4
    CUDA_ERROR_DEVICE_UNAVAILABLE = 46
    CUDA_ERROR_NO_DEVICE = 100
    CUDA_ERROR_INVALID_DEVICE = 101
    CUDA_ERROR_INVALID_IMAGE = 200
    CUDA_ERROR_INVALID_CONTEXT = 201
    CUDA_ERROR_NO_BINARY_FOR_GPU = 209
    CUDA_ERROR_INVALID_PTX = 218
    CUDA_ERROR_INVALID_SOURCE = 300
    CUDA_ERROR_OPERATING_SYSTEM = 304
    CUDA_ERROR_INVALID_HANDLE = 400
    CUDA_ERROR_ILLEGAL_STATE = 401
    CUDA_ERROR_NOT_FOUND = 500
    CUDA_ERROR_NOT_READY = 600
    CUDA_ERROR_ILLEGAL_ADDRESS = 700
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701
    CUDA_ERROR_LAUNCH_TIMEOUT = 702
    CUDA_ERROR_MISALIGNED_ADDRESS = 716
    CUDA_ERROR_LAUNCH_FAILED = 719
    CUDA_ERROR_NOT_PERMITTED = 800
    CUDA_ERROR_NOT_SUPPORTED = 801
    CUDA_ERROR_UNKNOWN = 999
    # The session was preempted (or its allocation revoked); the message
    # names why. Everything the session held is gone.
    CUDA_ERROR_MPS_CLIENT_TERMINATED = 810


class CudaError(Exception):
    """A call failed with ``code``; ``message`` says what to do about it."""

    def __init__(self, code, message):
        super().__init__("%s (%d): %s" % (error_name(code), int(code), message))
        self.code = CUresult(code) if code in _KNOWN else code
        self.message = message


_KNOWN = {int(member) for member in CUresult}


def error_name(code):
    """CUDA's name for ``code``, or a placeholder naming the number."""
    try:
        return CUresult(code).name
    except ValueError:
        return "CUDA_ERROR_%d" % int(code)
