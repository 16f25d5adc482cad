"""mbarrier: sm_80's split arrive/wait barriers in shared memory, which
cuda::barrier and cuda::pipeline compile to.

A barrier is a 64-bit word the program treats as opaque. Here its bits 0-30
count the arrivals still due in the current phase, bits 32-62 the arrivals
each phase expects, and bit 63 is the current phase's parity. An arrival
that brings the count to 0 completes the phase: the parity flips and the
count starts again. The token an arrive returns is the word before it, so a
test_wait on it asks whether that token's phase has completed.

Lanes run lowest program counter first, so a lane spinning on test_wait or
try_wait does not run ahead of lanes still to arrive. cp.async completes at
once here, so its mbarrier arrive (which counts an extra arrival first,
unless .noinc) is an arrival only with .noinc. Transaction counts (TMA's
expect_tx) are refused.
"""

import numpy as np

from orionx_agent.server.ptx.memory_ops import address_getter, apply_in_rounds
from orionx_agent.server.ptx.op import PLAIN, Op
from orionx_agent.server.ptx.operands import reader, writer
from orionx_agent.server.ptx.parser import Address, PtxError
from orionx_agent.server.ptx.types import TYPES

U64 = TYPES["u64"]
U32 = TYPES["u32"]
PRED = TYPES["pred"]
_COUNT_MASK = np.uint64(0x7FFFFFFF)
_PARITY = np.uint64(1 << 63)


def _pending(word):
    return word & _COUNT_MASK


def _expected(word):
    return (word >> np.uint64(32)) & _COUNT_MASK


def _arrive(old, count, drop):
    """The word after COUNT arrivals (DROP: they also leave the barrier)."""
    expected = _expected(old) - (count if drop else np.uint64(0))
    pending = _pending(old) - np.minimum(count, _pending(old))
    completed = pending == 0
    parity = np.where(completed, (old & _PARITY) ^ _PARITY, old & _PARITY)
    pending = np.where(completed, expected, pending)
    return parity | (expected << np.uint64(32)) | pending


def _shared_space(ins):
    if ins.has("expect_tx") or ins.has("complete_tx"):
        raise PtxError("line %d: %s is not supported by the simulated GPU (transaction "
                       "counts: bulk copies are not simulated)" % (ins.line, ins.text))
    if not any(m.startswith("shared") for m in ins.modifiers):
        raise PtxError("line %d: %s is not supported by the simulated GPU: only mbarriers "
                       "in .shared memory" % (ins.line, ins.text))
    return "shared"


def _words(f, get_address, mask, ins):
    (segment,) = f.resolve("shared", get_address(f), 8, mask, ins)
    buffer, lanes, offsets = segment
    return buffer.view(np.uint64), lanes, offsets // 8


def _update(ins, address, count_of, drop, write_token):
    get_address, _ = address_getter(ins, address, "shared")

    def update(f, mask, full):
        words, lanes, index = _words(f, get_address, mask, ins)
        count = np.broadcast_to(np.asarray(count_of(f), dtype=np.uint64), (f.lanes,))[lanes]
        old = apply_in_rounds(words, index, count, None,
                              lambda before, n, _: _arrive(before, n, drop))
        if write_token is not None:
            token = np.zeros(f.lanes, dtype=np.uint64)
            token[lanes] = old
            write_token(f, token, mask, full)
    return Op(PLAIN, update)


def compile_mbarrier(ins):
    operands = ins.operands
    if ins.has("pending_count"):  # of a token, in a register
        write = writer(operands[0], U32, ins.line)
        state = reader(operands[1], U64, ins.line)
        return Op(PLAIN, lambda f, mask, full: write(
            f, (np.asarray(state(f), dtype=np.uint64) & _COUNT_MASK).astype(np.uint32), mask,
            full))
    _shared_space(ins)
    if ins.has("init"):
        get_address, _ = address_getter(ins, operands[0], "shared")
        count = reader(operands[1], U32, ins.line)

        def init(f, mask, full):
            words, lanes, index = _words(f, get_address, mask, ins)
            n = np.broadcast_to(np.asarray(count(f), dtype=np.uint64), (f.lanes,))[lanes]
            words[index] = (n << np.uint64(32)) | n
        return Op(PLAIN, init)
    if ins.has("inval"):
        return Op(PLAIN, lambda f, mask, full: None)
    if ins.has("arrive") or ins.has("arrive_drop"):
        # [state,] [addr] [, count]: the token's destination may be the sink.
        first_address = next(i for i, o in enumerate(operands) if isinstance(o, Address))
        write_token = writer(operands[0], U64, ins.line) if first_address == 1 else None
        count = (reader(operands[first_address + 1], U32, ins.line)
                 if len(operands) > first_address + 1 else (lambda f: 1))
        return _update(ins, operands[first_address], count, ins.has("arrive_drop"),
                       write_token)
    if ins.has("test_wait") or ins.has("try_wait"):
        write = writer(operands[0], PRED, ins.line)
        get_address, _ = address_getter(ins, operands[1], "shared")
        parity_form = ins.has("parity")
        against = reader(operands[2], U32 if parity_form else U64, ins.line)

        def wait(f, mask, full):
            words, lanes, index = _words(f, get_address, mask, ins)
            current = (words[index] >> np.uint64(63)).astype(np.uint64)
            value = np.broadcast_to(np.asarray(against(f), dtype=np.uint64), (f.lanes,))[lanes]
            asked = value & np.uint64(1) if parity_form else value >> np.uint64(63)
            done = np.zeros(f.lanes, dtype=bool)
            done[lanes] = current != asked  # that phase has completed
            write(f, done, mask, full)
        return Op(PLAIN, wait)
    raise PtxError("line %d: %s is not supported by the simulated GPU (mbarrier init, "
                   "arrive, arrive_drop, test_wait, try_wait, pending_count, inval)"
                   % (ins.line, ins.text))


def compile_cp_async_arrive(ins):
    """cp.async.mbarrier.arrive[.noinc].shared.b64 [addr]: the copies are
    done already, so only .noinc's arrival is left."""
    _shared_space(ins)
    if not ins.has("noinc"):
        return Op(PLAIN, lambda f, mask, full: None)
    return _update(ins, ins.operands[0], lambda f: 1, False, None)
