"""State spaces a PTX kernel addresses, and the check on every global access.

Every space is a flat byte buffer; an access resolves to byte offsets in it
for the lanes that perform it. Global addresses are checked against a
snapshot of the launching session's allocations (device pointer, size,
arena offset) taken when the kernel was queued: an address outside them, or
a range running past one's end, stops the kernel before anything is read or
written. Shared, local and parameter accesses are checked against their
own sizes.

Generic addresses (``cvta``) put shared, local and const memory in windows
far above any device pointer the sim hands out, as a real GPU's generic
address space does; the module's own .global variables have a window too.
"""

import numpy as np

from orionx_agent.server.ptx import faults

WINDOW_BYTES = 1 << 32
SHARED_WINDOW = 1 << 48
LOCAL_WINDOW = 2 << 48
CONST_WINDOW = 3 << 48
WINDOWS = {"shared": SHARED_WINDOW, "local": LOCAL_WINDOW, "const": CONST_WINDOW}
# A module's own .global variables (tables libdevice declares, __device__
# variables): global addresses in this window reach the loaded module's
# image, never an allocation.
MODULE_GLOBALS_WINDOW = 4 << 48


class GlobalMemory:
    """The session's allocations, as the kernel may see them."""

    def __init__(self, arena, allocations, session_label):
        """``allocations``: [(dptr, nbytes, arena offset)] of the session."""
        allocations = sorted(allocations)
        self.arena = arena
        self.session_label = session_label
        self._starts = np.array([a[0] for a in allocations], dtype=np.uint64)
        self._ends = np.array([a[0] + a[1] for a in allocations], dtype=np.uint64)
        self._offsets = np.array([a[2] for a in allocations], dtype=np.int64)

    def offsets(self, addresses, nbytes, describe):
        """Arena byte offsets of ``addresses`` (uint64, the acting lanes'),
        each accessing ``nbytes``; KernelFault when one is not the session's."""
        addresses = np.asarray(addresses, dtype=np.uint64)
        if not len(self._starts):
            self._refuse(addresses[:1], nbytes, describe)
        if not len(addresses):
            return np.zeros(0, dtype=np.int64)
        # Most accesses of one instruction fall in one buffer: two reductions
        # and a subtraction instead of a search per lane.
        lowest, highest = int(addresses.min()), int(addresses.max())
        first = int(np.searchsorted(self._starts, lowest, side="right")) - 1
        if first >= 0 and highest + nbytes <= int(self._ends[first]):
            return addresses.astype(np.int64) - np.int64(int(self._starts[first]) -
                                                         int(self._offsets[first]))
        index = np.searchsorted(self._starts, addresses, side="right") - 1
        clipped = np.maximum(index, 0)
        inside = (index >= 0) & (addresses + np.uint64(nbytes) <= self._ends[clipped]) & \
            (addresses >= self._starts[clipped])
        if not inside.all():
            self._refuse(addresses[~inside], nbytes, describe)
        return self._offsets[clipped] + (addresses - self._starts[clipped]).astype(np.int64)

    def _refuse(self, bad, nbytes, describe):
        raise faults.KernelFault(
            faults.ILLEGAL_ADDRESS,
            "%s: %d-byte global access at 0x%x is outside every allocation of %s (out of "
            "bounds, freed, or another session's); the kernel was stopped before it"
            % (describe(), nbytes, int(bad[0]), self.session_label))


def check_range(offsets, nbytes, limit, space, describe):
    """KernelFault unless every offset + nbytes lies in [0, limit)."""
    if len(offsets) and (offsets.min() < 0 or offsets.max() + nbytes > limit):
        bad = offsets[(offsets < 0) | (offsets + nbytes > limit)][0]
        raise faults.KernelFault(
            faults.ILLEGAL_ADDRESS,
            "%s: %d-byte %s access at offset %d is outside its %d bytes"
            % (describe(), nbytes, space, int(bad), limit))


def check_alignment(offsets, nbytes, describe):
    """KernelFault unless every offset is a multiple of ``nbytes`` (a power of two)."""
    if nbytes > 1 and len(offsets) and np.any(offsets & (nbytes - 1)):
        bad = offsets[(offsets & (nbytes - 1)) != 0][0]
        raise faults.KernelFault(
            faults.MISALIGNED_ADDRESS,
            "%s: %d-byte access at offset 0x%x is not aligned to %d bytes"
            % (describe(), nbytes, int(bad), nbytes))


def generic_space(addresses):
    """Per-lane space names of generic ``addresses`` (uint64)."""
    window = (addresses >> np.uint64(32)) << np.uint64(32)
    spaces = {}
    rest = np.ones(addresses.shape, dtype=bool)
    for space, base in WINDOWS.items():
        hit = window == np.uint64(base)
        if hit.any():
            spaces[space] = hit
            rest &= ~hit
    if rest.any():
        spaces["global"] = rest
    return spaces
