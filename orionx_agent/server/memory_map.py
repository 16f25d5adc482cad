"""A session's device allocations: its vGPU's quota and every pointer check.

A tenant may open any number of sessions with one token (several
transports, the gateway's hand-over, VM channels); each draws on the one
:class:`VGpuAccount` of its vGPU, so more connections never mean more
memory (nor more device time: the scheduler meters per account too).

Allocations are kept sorted by start address, so finding the allocation a
pointer falls in is a bisect, not a scan, however many buffers a session
holds. Nothing a client names reaches a backend before it passes here.
"""

import bisect
import dataclasses
import threading

from guest_runtime.curesult import CudaError, CUresult

MB = 1 << 20


class VGpuAccount:
    """Limits and memory in use of one vGPU (of one allocation) on this GPU server."""

    def __init__(self, allocation_id, vgpu_id, compute_pct, memory_mb):
        self.key = (allocation_id, vgpu_id)
        self.vgpu_id = vgpu_id
        self.compute_pct = compute_pct
        self.quota_bytes = memory_mb * MB
        self.used_bytes = 0          # device memory of all its sessions, claimed or held
        self.session_ids = set()
        self._lock = threading.Lock()

    def __repr__(self):
        return "VGpuAccount(vGPU %s of allocation %s)" % (self.vgpu_id, self.key[0])

    def reserve(self, nbytes):
        """Count ``nbytes`` more against the quota, or CUDA_ERROR_OUT_OF_MEMORY.
        Checked and counted at once: sessions allocating together cannot
        both pass on the same room."""
        with self._lock:
            if self.used_bytes + nbytes > self.quota_bytes:
                raise CudaError(
                    CUresult.CUDA_ERROR_OUT_OF_MEMORY,
                    "vGPU %s memory quota %d MB exceeded by a %.1f MB allocation (%.1f MB "
                    "in use by its %d session(s)): free buffers or ask for a vGPU with "
                    "more memory_mb" % (self.vgpu_id, self.quota_bytes // MB, nbytes / MB,
                                        self.used_bytes / MB, len(self.session_ids)))
            self.used_bytes += nbytes

    def give_back(self, nbytes):
        with self._lock:
            self.used_bytes -= nbytes


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
    """Allocations of one session, bounded by its vGPU's quota, which all
    sessions of the vGPU share through one account (``vgpu_account``)."""

    def __init__(self, vgpu_label, quota_bytes, account=None):
        self.vgpu_label = vgpu_label
        # Alone (tests, tools): an account of its own.
        self.account = account or VGpuAccount(None, vgpu_label, 100, quota_bytes // MB)
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

    @property
    def quota_bytes(self):
        return self.account.quota_bytes

    @property
    def vgpu_used_bytes(self):
        """Memory of every session of this vGPU."""
        return self.account.used_bytes

    def reserve(self, nbytes):
        """Count ``nbytes`` against the vGPU's quota before allocating them
        (CUDA_ERROR_OUT_OF_MEMORY past it); :meth:`add` then holds them, or
        :meth:`cancel_reservation` gives them back."""
        self.account.reserve(nbytes)

    def cancel_reservation(self, nbytes):
        self.account.give_back(nbytes)

    def add(self, allocation):
        """Hold a buffer whose bytes :meth:`reserve` counted."""
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
        self.account.give_back(allocation.nbytes)
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
        self.account.give_back(self.used_bytes)
        self.used_bytes = 0
        return allocations
