"""What the session layer asks of a backend; ``sim`` and ``cuda`` implement it.

A backend is one physical GPU (:class:`GpuBackend`); each session opens its
own :class:`BackendContext` on it (a real CUDA context on the ``cuda``
backend). Pointers and handles reach a context only after the session has
checked them against its own tables, so contexts trust their arguments.
"""

import abc

from guest_runtime.curesult import CudaError, CUresult


class GpuBackend(abc.ABC):
    name = "abstract"
    device_name = ""
    total_memory_bytes = 0
    gpu_uuid = None

    @abc.abstractmethod
    def open_context(self, label):
        """A new BackendContext for the session called ``label``."""

    @abc.abstractmethod
    def attribute(self, attribute):
        """Value of CUdevice_attribute ``attribute`` (an int), or None if unknown."""

    def driver_version(self):
        """A current driver's (CUDA 13.5): programs built for cuda-bindings 13
        and NVRTC 13 take it as new enough for their PTX, which the
        simulated GPU's executor reads whatever its ISA version."""
        return 13050

    def close(self):  # noqa: B027 - optional: most backends hold nothing to release
        """Release the device when the server stops."""


class BackendContext(abc.ABC):
    """Device work of one session. Methods raise CudaError on failure."""

    @abc.abstractmethod
    def alloc(self, nbytes):
        """(dptr, backend_handle) of ``nbytes`` of new device memory."""

    @abc.abstractmethod
    def free(self, allocation):
        """Release a memory_map.Allocation."""

    @abc.abstractmethod
    def write_views(self, dptr, nbytes, stream):
        """Yield writable byte memoryviews that together cover ``[dptr, dptr +
        nbytes)``. The caller fills each before asking for the next; the
        backend makes a filled view device memory when resumed (generator)."""

    @abc.abstractmethod
    def read_views(self, dptr, nbytes, stream):
        """Yield byte memoryviews holding device memory ``[dptr, dptr +
        nbytes)`` in order; each is valid until the next is asked for."""

    @abc.abstractmethod
    def copy_dtod(self, dst, src, nbytes, stream): ...

    @abc.abstractmethod
    def memset(self, dst, value, count, element_bytes, stream): ...

    @abc.abstractmethod
    def create_stream(self, flags): ...

    @abc.abstractmethod
    def destroy_stream(self, stream): ...

    @abc.abstractmethod
    def synchronize_stream(self, stream): ...

    def query_stream(self, stream):
        """Whether the stream's work is done (its failure raised), not waiting.
        By default the backend waits for it: always done, then."""
        self.synchronize_stream(stream)
        return True

    def wait_event(self, stream, event, flags):
        """Make the stream's later work wait for the event's recorded work.
        By default the backend waits for the event itself."""
        self.synchronize_event(event)

    @abc.abstractmethod
    def create_event(self, flags): ...

    @abc.abstractmethod
    def destroy_event(self, event): ...

    @abc.abstractmethod
    def record_event(self, event, stream): ...

    @abc.abstractmethod
    def synchronize_event(self, event): ...

    def query_event(self, event):
        """Whether the event's recorded work is done, not waiting."""
        self.synchronize_event(event)
        return True

    @abc.abstractmethod
    def elapsed_ms(self, start, end): ...

    @abc.abstractmethod
    def load_module(self, image): ...

    @abc.abstractmethod
    def unload_module(self, module): ...

    @abc.abstractmethod
    def get_function(self, module, name): ...

    def module_variables_bytes(self, module):
        """Bytes of session memory the module's variables need (0: the backend
        keeps them itself, or there are none)."""
        return 0

    def place_module_variables(self, module, allocation):  # noqa: B027 - only with bytes above
        """Put the module's variables in the session's ``allocation``."""

    def module_global(self, module, name):
        """(device pointer, bytes) of the module's variable ``name``."""
        raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                        "this GPU server's backend cannot reach module variables yet: pass "
                        "a buffer of your own to the kernel instead")

    def param_layout(self, function):
        """(packed bytes, [(offset, size)] per parameter) of ``function``."""
        raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                        "this GPU server's backend cannot report kernel parameter layouts: "
                        "pass packed parameters through cuLaunchKernel's extra")

    def function_attribute(self, function, attribute):
        """Value of CUfunction_attribute ``attribute`` (an int) of ``function``."""
        raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                        "this GPU server's backend cannot report function attributes")

    def set_function_attribute(self, function, attribute, value):
        raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                        "this GPU server's backend cannot set function attributes")

    @abc.abstractmethod
    def launch(self, function, grid, block, shared_mem_bytes, stream, params, memory_map,
               charge=None):
        """Start ``function``. ``memory_map`` lets a backend that can check
        kernel arguments do so; ``charge(device_s)`` is called with the device
        time the kernel took, once known."""

    @abc.abstractmethod
    def synchronize(self): ...

    def can_evict(self, allocation):
        """Whether ``allocation`` can move to host RAM and back (same pointer)."""
        return False

    def evict(self, allocation):
        """Move a resident buffer to host RAM, freeing its device memory."""
        raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                        "this backend cannot move buffers to host RAM")

    def restore(self, allocation):
        """Bring an evicted buffer back to the device at the same pointer."""
        raise CudaError(CUresult.CUDA_ERROR_NOT_SUPPORTED,
                        "this backend cannot move buffers to host RAM")

    def abort_kernels(self):  # noqa: B027 - optional: a real GPU's kernels are bounded by it
        """The session is ending: stop its kernels, queued or running, as
        soon as the backend can, so freeing its memory need not wait for a
        long kernel to finish."""

    @abc.abstractmethod
    def close(self):
        """Free everything the context holds (the session ended)."""
