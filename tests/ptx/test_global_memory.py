"""The check every global access of a PTX kernel passes: an address range is
allowed only inside one of the session's own allocations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orionx_agent.server.ptx import faults
from orionx_agent.server.ptx.memory import GlobalMemory

BASE = 0x7_0000_0000


@st.composite
def layouts(draw):
    """Disjoint allocations [(dptr, nbytes, arena offset)] with gaps between."""
    allocations, dptr, offset = [], BASE, 0
    for _ in range(draw(st.integers(1, 5))):
        dptr += draw(st.integers(0, 3)) * 256
        nbytes = draw(st.integers(1, 8)) * 64
        allocations.append((dptr, nbytes, offset))
        dptr += nbytes
        offset += nbytes + 256
    return allocations


def _inside(allocations, address, nbytes):
    for dptr, size, offset in allocations:
        if dptr <= address and address + nbytes <= dptr + size:
            return offset + address - dptr
    return None


@settings(max_examples=200, deadline=None)
@given(layouts(), st.data())
def test_offsets_only_inside_one_allocation(allocations, data):
    memory = GlobalMemory(np.zeros(1 << 16, dtype=np.uint8), allocations, "session 1")
    end = allocations[-1][0] + allocations[-1][1]
    nbytes = data.draw(st.sampled_from([1, 4, 8, 16]))
    addresses = data.draw(st.lists(st.integers(BASE - 64, end + 64), min_size=1, max_size=40))
    expected = [_inside(allocations, a, nbytes) for a in addresses]
    if None in expected:
        with pytest.raises(faults.KernelFault) as caught:
            memory.offsets(np.array(addresses, dtype=np.uint64), nbytes, lambda: "probe")
        assert caught.value.code == faults.ILLEGAL_ADDRESS
        assert "session 1" in caught.value.message
    else:
        got = memory.offsets(np.array(addresses, dtype=np.uint64), nbytes, lambda: "probe")
        assert list(got) == expected
