"""A session's device allocations: its quota and every pointer check.

Allocations are kept sorted by start address, so finding the allocation a
pointer falls in is a bisect, not a scan, however many buffers a session
holds. Nothing a client names reaches a backend before it passes here.
"""

import bisect
import dataclasses

from guest_runtime.curesult import CudaError, CUresult

MB = 1 << 20


@dataclasses.dataclass
class Allocation:
    dptr: int
    nbytes: int
    # Opaque to the map: what the backend needs to free, evict or restore it.
    backend_handle: object = None
    # False while the buffer lives in host RAM (device_memory evicted it).
    resident: bool = True

    @property
    def end(self):
        return self.dptr + self.nbytes


class SessionMemoryMap:
    """Allocations of one session, bounded by its vGPU's quota."""

    def __init__(self, vgpu_label, quota_bytes):
        self.vgpu_label = vgpu_label
        self.quota_bytes = quota_bytes
        self.used_bytes = 0
        # Of used_bytes, those in host RAM now; kept by device_memory, which
        # also brings it back to 0 as the buffers are restored or freed.
        self.evicted_bytes = 0
        self._starts = []
        self._by_start = {}

    def __len__(self):
        return len(self._starts)

    def allocations(self):
        return [self._by_start[start] for start in self._starts]

    def check_quota(self, nbytes):
        """Raise CUDA_ERROR_OUT_OF_MEMORY if ``nbytes`` more would pass the quota."""
        if self.used_bytes + nbytes > self.quota_bytes:
            raise CudaError(
                CUresult.CUDA_ERROR_OUT_OF_MEMORY,
                "%s memory quota %d MB exceeded by a %.1f MB allocation (%.1f MB in use): "
                "free buffers or ask for a vGPU with more memory_mb"
                % (self.vgpu_label, self.quota_bytes // MB, nbytes / MB, self.used_bytes / MB))

    def add(self, allocation):
        index = bisect.bisect_left(self._starts, allocation.dptr)
        self._starts.insert(index, allocation.dptr)
        self._by_start[allocation.dptr] = allocation
        self.used_bytes += allocation.nbytes

    def remove(self, dptr):
        """Forget the allocation starting at ``dptr`` and return it."""
        allocation = self._by_start.get(dptr)
        if allocation is None:
            raise CudaError(
                CUresult.CUDA_ERROR_INVALID_VALUE,
                "cuMemFree of 0x%x: not the start of a live allocation of this session "
                "(already freed, never allocated, or another session's)" % dptr)
        index = bisect.bisect_left(self._starts, dptr)
        del self._starts[index]
        del self._by_start[dptr]
        self.used_bytes -= allocation.nbytes
        return allocation

    def resolve(self, dptr, nbytes, what="access"):
        """The allocation holding ``[dptr, dptr + nbytes)``, or
        CUDA_ERROR_INVALID_VALUE naming the range and why it is refused."""
        index = bisect.bisect_right(self._starts, dptr) - 1
        if index >= 0:
            allocation = self._by_start[self._starts[index]]
            if dptr < allocation.end:
                if nbytes <= allocation.end - dptr:
                    return allocation
                raise CudaError(
                    CUresult.CUDA_ERROR_INVALID_VALUE,
                    "%s of %d bytes at 0x%x runs %d bytes past the end of its %d-byte "
                    "allocation at 0x%x" % (what, nbytes, dptr, dptr + nbytes - allocation.end,
                                            allocation.nbytes, allocation.dptr))
        raise CudaError(
            CUresult.CUDA_ERROR_INVALID_VALUE,
            "%s of %d bytes at 0x%x: the address is in no allocation of this session "
            "(freed, never allocated, or another session's)" % (what, nbytes, dptr))

    def clear(self):
        """Forget everything; returns the allocations for the backend to free."""
        allocations = self.allocations()
        self._starts = []
        self._by_start = {}
        self.used_bytes = 0
        return allocations
