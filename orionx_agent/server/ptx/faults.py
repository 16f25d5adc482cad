"""Why a PTX kernel stopped, as the CUDA error a real GPU would report.

A :class:`KernelFault` ends the launch and becomes the session's sticky
error.
"""

from guest_runtime.curesult import CUresult

NO_BINARY_FOR_GPU = int(CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU)
LAUNCH_TIMEOUT = int(CUresult.CUDA_ERROR_LAUNCH_TIMEOUT)
MISALIGNED_ADDRESS = int(CUresult.CUDA_ERROR_MISALIGNED_ADDRESS)
ILLEGAL_ADDRESS = int(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS)
LAUNCH_FAILED = int(CUresult.CUDA_ERROR_LAUNCH_FAILED)


class KernelFault(Exception):
    """A kernel stopped with CUDA error ``code``; ``message`` says where."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

