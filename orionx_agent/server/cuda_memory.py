"""Device buffers on a real GPU that can move to host RAM and back at the
same device address (CUDA's virtual memory management API).

A buffer of at least the allocation granularity (2 MB on current GPUs) gets
its own reserved address range (``cuMemAddressReserve``) with physical memory
mapped into it (``cuMemCreate``, ``cuMemMap``, ``cuMemSetAccess``). Evicting
copies it into pinned host memory (``cuMemcpyDtoH``) and releases the
physical memory but keeps the range; restoring maps new physical memory into
the same range and copies the bytes back. Kernels keep the pointers they
were given, which is why ``cuMemAlloc`` followed by a new ``cuMemAlloc``
would not do. Smaller buffers use ``cuMemAlloc`` and stay on the device:
rounding them up to the granularity would waste more than evicting saves.
"""

from guest_runtime.curesult import CudaError, CUresult

# CUdevice_attribute: whether the GPU and driver support cuMemCreate & co.
VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED = 102


class VmmBlock:
    """A buffer's reserved range, and where its bytes are now."""

    __slots__ = ("va", "size", "handle", "host")

    def __init__(self, va, size):
        self.va = va
        self.size = size          # reserved and mapped bytes: a granularity multiple
        self.handle = None        # CUmemGenericAllocationHandle while on the device
        self.host = None          # pinned host address while evicted


class VmmAllocator:
    """Evictable buffers for one GPU; every call runs with a context current."""

    def __init__(self, driver, device_ordinal, check):
        self._driver = driver
        self._check = check  # cuda_backend._check: values of a result, or CudaError
        self._ordinal = device_ordinal
        self._prop = self._allocation_prop()
        self._access = self._access_desc()
        self.granularity = int(check(driver.cuMemGetAllocationGranularity(
            self._prop, driver.CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_MINIMUM),
            "cuMemGetAllocationGranularity"))

    def _allocation_prop(self):
        driver = self._driver
        prop = driver.CUmemAllocationProp()
        prop.type = driver.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
        prop.location.type = driver.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        prop.location.id = self._ordinal
        return prop

    def _access_desc(self):
        driver = self._driver
        desc = driver.CUmemAccessDesc()
        desc.location.type = driver.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        desc.location.id = self._ordinal
        desc.flags = driver.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
        return desc

    def worth_it(self, nbytes):
        return nbytes >= self.granularity

    def alloc(self, nbytes):
        """A VmmBlock of at least ``nbytes``, mapped; CUDA_ERROR_OUT_OF_MEMORY
        when the GPU has no physical memory left for it."""
        size = -(-nbytes // self.granularity) * self.granularity
        va = int(self._check(self._driver.cuMemAddressReserve(size, 0, 0, 0),
                             "cuMemAddressReserve(%d)" % size))
        block = VmmBlock(va, size)
        try:
            self.map(block)
        except BaseException:
            self._driver.cuMemAddressFree(self._ptr(va), size)
            raise
        return block

    def map(self, block):
        """Back ``block``'s range with new physical memory."""
        driver = self._driver
        err, handle = driver.cuMemCreate(block.size, self._prop, 0)
        if int(err) == CUresult.CUDA_ERROR_OUT_OF_MEMORY:
            raise CudaError(CUresult.CUDA_ERROR_OUT_OF_MEMORY,
                            "cuMemCreate of %d bytes: the GPU's memory is full" % block.size)
        self._check((err,), "cuMemCreate(%d)" % block.size)
        try:
            self._check(driver.cuMemMap(self._ptr(block.va), block.size, 0, handle, 0),
                        "cuMemMap")
            self._check(driver.cuMemSetAccess(self._ptr(block.va), block.size, [self._access],
                                              1), "cuMemSetAccess")
        except BaseException:
            driver.cuMemUnmap(self._ptr(block.va), block.size)
            driver.cuMemRelease(handle)
            raise
        block.handle = handle

    def unmap(self, block):
        """Give ``block``'s physical memory back; its range stays reserved."""
        driver = self._driver
        self._check(driver.cuMemUnmap(self._ptr(block.va), block.size), "cuMemUnmap")
        self._check(driver.cuMemRelease(block.handle), "cuMemRelease")
        block.handle = None

    def evict(self, block, nbytes):
        """Copy the first ``nbytes`` to pinned host memory, then unmap.
        The caller has synchronised the owner's context: nothing still
        writes the buffer."""
        driver = self._driver
        host = self._check(driver.cuMemAllocHost(max(nbytes, 1)),
                           "cuMemAllocHost(%d) for an evicted buffer" % nbytes)
        try:
            self._check(driver.cuMemcpyDtoH(host, self._ptr(block.va), nbytes),
                        "cuMemcpyDtoH (evicting)")
            self.unmap(block)
        except BaseException:
            driver.cuMemFreeHost(host)
            raise
        block.host = host

    def restore(self, block, nbytes):
        """Map new physical memory into the same range and copy the bytes back."""
        self.map(block)
        try:
            self._check(self._driver.cuMemcpyHtoD(self._ptr(block.va), block.host, nbytes),
                        "cuMemcpyHtoD (restoring)")
            # The new physical pages may hold what another session left there.
            self.scrub(block, nbytes)
        except BaseException:
            self.unmap(block)
            raise
        self._driver.cuMemFreeHost(block.host)
        block.host = None

    def scrub(self, block, start_bytes=0):
        """Zero the mapped range from ``start_bytes`` to its end, synchronously."""
        if block.size > start_bytes:
            self._check(self._driver.cuMemsetD8(self._ptr(block.va + start_bytes), 0,
                                                block.size - start_bytes),
                        "cuMemsetD8 (scrubbing)")

    def free(self, block):
        driver = self._driver
        if block.handle is not None:
            self.unmap(block)
        if block.host is not None:
            driver.cuMemFreeHost(block.host)
            block.host = None
        self._check(driver.cuMemAddressFree(self._ptr(block.va), block.size),
                    "cuMemAddressFree")

    def _ptr(self, value):
        return self._driver.CUdeviceptr(value)
