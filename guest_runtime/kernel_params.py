"""Packing of cuLaunchKernel's ``kernelParams`` into one byte buffer.

cuda-python takes kernel arguments as ``(values, types)``: ctypes types for
plain values and ``None`` for driver objects such as ``CUdeviceptr``. A
remote GPU cannot follow host pointers, so the runtime packs the values
here with C's natural alignment, the layout the driver's ``extra`` buffer
uses, and sends the bytes.
"""

import ctypes

from guest_runtime.curesult import CudaError, CUresult

POINTER_BYTES = 8


def pack_kernel_params(kernel_params):
    """Bytes of ``kernel_params``: None, already-packed bytes, or (values, types)."""
    if kernel_params is None or kernel_params == 0:
        return b""
    if isinstance(kernel_params, bytes | bytearray | memoryview):
        return bytes(kernel_params)
    if isinstance(kernel_params, int):
        raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                        "kernelParams given as a host void** address cannot reach a remote "
                        "GPU: pass (values, types) as cuda-python allows, or packed bytes")
    try:
        values, types = kernel_params
    except (TypeError, ValueError):
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "kernelParams must be (values, types) or packed bytes, got %r"
                        % type(kernel_params).__name__) from None
    if len(values) != len(types):
        raise CudaError(CUresult.CUDA_ERROR_INVALID_VALUE,
                        "kernelParams has %d values but %d types" % (len(values), len(types)))
    packed = bytearray()
    for value, ctype in zip(values, types, strict=True):
        data, alignment = _encode(value, ctype)
        packed += b"\x00" * (-len(packed) % alignment)
        packed += data
    return bytes(packed)


def _encode(value, ctype):
    """(bytes, alignment) of one argument."""
    if ctype is None:
        # A driver object (CUdeviceptr, ...) or a plain int standing for one.
        return int(value).to_bytes(POINTER_BYTES, "little", signed=False), POINTER_BYTES
    if isinstance(value, ctypes._SimpleCData | ctypes.Structure | ctypes.Array):
        instance = value
    else:
        try:
            instance = ctype(value)
        except TypeError:
            instance = ctype(int(value))  # a driver object passed with a ctypes type
    return bytes(instance), ctypes.alignment(ctype)
