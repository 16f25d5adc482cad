"""mbarrier on the sim: a phase completes when its last expected arrival
comes, its parity flips, and waits on an older token see it completed.
The PTX is written out so that which lanes arrive, and when, is exact."""

import numpy as np
import pytest

from tests.ptx.device import Device, ptr

# 64 threads, a barrier expecting 64 arrivals. Each thread records in
# out[8 * tid + k]: 0 whether the phase looked complete after only the
# first warp arrived, 1 after all arrived, 2 the parity wait on phase 0,
# 3 the pending count in its token, 4 a second phase counted with
# arrive's count operand and arrive_drop, 5 the wait on phase 1.
PTX = r"""
.version 8.0
.target sm_80
.address_size 64

.visible .entry phases(.param .u64 out)
{
    .shared .align 8 .b64 bar;
    .reg .pred %p<8>;
    .reg .b32 %r<12>;
    .reg .b64 %rd<12>;
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd2, %r1, 32;
    add.u64 %rd3, %rd1, %rd2;
    mov.u32 %r2, bar;
    setp.ne.u32 %p1, %r1, 0;
    @%p1 bra INITED;
    mbarrier.init.shared.b64 [%r2], 64;
INITED:
    bar.sync 0;
    setp.ge.u32 %p2, %r1, 32;
    @%p2 bra SECOND_WARP;
    mbarrier.arrive.shared.b64 %rd4, [%r2];
    bra.uni ARRIVED;
SECOND_WARP:
    mov.u64 %rd4, 0;
ARRIVED:
    bar.sync 0;
    mbarrier.test_wait.shared.b64 %p3, [%r2], %rd4;
    selp.u32 %r3, 1, 0, %p3;
    st.global.u32 [%rd3], %r3;
    bar.sync 0;
    @!%p2 bra LATE_DONE;
    mbarrier.arrive.shared.b64 %rd4, [%r2];
LATE_DONE:
    bar.sync 0;
    mbarrier.test_wait.shared.b64 %p4, [%r2], %rd4;
    selp.u32 %r4, 1, 0, %p4;
    st.global.u32 [%rd3+4], %r4;
    mov.u32 %r10, 0;
    mbarrier.test_wait.parity.shared.b64 %p5, [%r2], %r10;
    selp.u32 %r5, 1, 0, %p5;
    st.global.u32 [%rd3+8], %r5;
    mbarrier.pending_count.b64 %r6, %rd4;
    st.global.u32 [%rd3+12], %r6;
    bar.sync 0;
    // Phase 1: thread 0 arrives for 63 at once and thread 1 arrives and
    // drops out: 64 arrivals complete it; the next phase expects 63.
    setp.eq.u32 %p6, %r1, 0;
    @!%p6 bra NOT_ZERO;
    mbarrier.arrive.shared.b64 %rd5, [%r2], 63;
NOT_ZERO:
    setp.eq.u32 %p7, %r1, 1;
    @!%p7 bra NOT_ONE;
    mbarrier.arrive_drop.shared.b64 %rd5, [%r2];
NOT_ONE:
    bar.sync 0;
    ld.shared.u64 %rd6, [bar];
    shr.u64 %rd7, %rd6, 32;
    cvt.u32.u64 %r7, %rd7;
    and.b32 %r7, %r7, 2147483647;
    st.global.u32 [%rd3+16], %r7;
    mov.u32 %r11, 1;
    mbarrier.try_wait.parity.shared.b64 %p5, [%r2], %r11;
    selp.u32 %r8, 1, 0, %p5;
    st.global.u32 [%rd3+20], %r8;
    mbarrier.inval.shared.b64 [%r2];
    ret;
}
"""


@pytest.fixture
def device(cuda):
    opened = Device(cuda, PTX)
    yield opened
    opened.close()


def test_phases_complete_with_their_last_arrival(device):
    d_out = device.zeros(64 * 8, np.uint32)
    device.launch("phases", 1, 64, [ptr(d_out)])
    out = device.download(d_out, 64 * 8, np.uint32).reshape(64, 8)
    assert not out[:32, 0].any()        # half the arrivals: phase 0 still open
    assert out[:, 1].all()              # all 64 arrived: complete
    assert out[:, 2].all()              # so is "the phase of parity 0"
    # Each token is the barrier before its lane arrived (lanes in order):
    # the first warp saw 64..33 still due, the second 32..1.
    np.testing.assert_array_equal(out[:32, 3], 64 - np.arange(32))
    np.testing.assert_array_equal(out[32:, 3], 32 - np.arange(32))
    assert (out[:, 4] == 63).all()      # after arrive_drop the next phase expects 63
    assert out[:, 5].all()              # phase 1 completed with 63 + 1 arrivals
