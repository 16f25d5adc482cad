"""Warp-wide instructions: shfl.sync, vote.sync, match.sync, redux.sync and activemask.

Warps are 32 consecutive threads of a block (by linear thread id), so a
warp is a run of consecutive lanes and per-warp reductions are
``reduceat`` over the warp starts. Lanes outside the executing mask count
as inactive, as threads that have not reached the instruction do.
"""

import numpy as np

from orionx_agent.server.ptx.op import PLAIN, Op
from orionx_agent.server.ptx.operands import reader, writer
from orionx_agent.server.ptx.parser import Pair, PtxError
from orionx_agent.server.ptx.types import TYPES

U32 = TYPES["u32"]
PRED = TYPES["pred"]


def compile_shfl(ins):
    mode = next((m for m in ins.modifiers if m in ("up", "down", "bfly", "idx")), None)
    if mode is None or not ins.has("sync"):
        raise PtxError("line %d: %s: only shfl.sync.{up,down,bfly,idx}.b32 is supported"
                       % (ins.line, ins.text))
    dest = ins.operands[0]
    value_dest, pred_dest = (dest.first, dest.second) if isinstance(dest, Pair) else (dest,
                                                                                     None)
    write_value = writer(value_dest, TYPES["b32"], ins.line)
    write_pred = writer(pred_dest, PRED, ins.line) if pred_dest is not None else None
    a = reader(ins.operands[1], TYPES["b32"], ins.line)
    b = reader(ins.operands[2], U32, ins.line)
    c = reader(ins.operands[3], U32, ins.line)

    def shfl(f, mask, full):
        block = f.block
        lane = block.laneid.astype(np.int64)
        bval = np.asarray(b(f)).astype(np.int64) & 0x1F
        cval = np.asarray(c(f)).astype(np.int64)
        clamp, segmask = cval & 0x1F, (cval >> 8) & 0x1F
        max_lane = (lane & segmask) | (clamp & ~segmask)
        min_lane = lane & segmask
        if mode == "up":
            j = lane - bval
            valid = j >= max_lane
        elif mode == "down":
            j = lane + bval
            valid = j <= max_lane
        elif mode == "bfly":
            j = lane ^ bval
            valid = j <= max_lane
        else:
            j = min_lane | (bval & ~segmask)
            valid = j <= max_lane
        valid &= j < block.warp_lanes  # a partial last warp has fewer lanes
        source = np.where(valid, block.warp_start + j, block.lane_index)
        value = np.broadcast_to(np.asarray(a(f)), (f.lanes,))[source]
        write_value(f, value, mask, full)
        if write_pred is not None:
            write_pred(f, valid, mask, full)
    return Op(PLAIN, shfl)


def _warp_or(block, bits):
    """Per-lane: OR of ``bits`` (uint64) over the lane's warp."""
    per_warp = np.bitwise_or.reduceat(bits, block.warp_starts)
    return per_warp[block.warp_id]


def _ballot(block, predicate, mask):
    bits = np.where(predicate & mask, np.uint64(1) << block.laneid.astype(np.uint64),
                    np.uint64(0))
    return _warp_or(block, bits)


def compile_vote(ins):
    mode = next((m for m in ins.modifiers if m in ("all", "any", "uni", "ballot")), None)
    if mode is None:
        raise PtxError("line %d: %s: unknown vote mode" % (ins.line, ins.text))
    a = reader(ins.operands[1], PRED, ins.line)
    out_type = TYPES["b32"] if mode == "ballot" else PRED
    write = writer(ins.operands[0], out_type, ins.line)

    def vote(f, mask, full):
        block = f.block
        predicate = np.broadcast_to(np.asarray(a(f), dtype=bool), (f.lanes,))
        active = _ballot(block, np.ones(f.lanes, dtype=bool), mask)
        yes = _ballot(block, predicate, mask)
        if mode == "ballot":
            result = yes.astype(np.uint32)
        elif mode == "any":
            result = yes != 0
        elif mode == "all":
            result = yes == active
        else:
            result = (yes == active) | (yes == 0)
        write(f, result, mask, full)
    return Op(PLAIN, vote)


def compile_match(ins):
    mode = next((m for m in ins.modifiers if m in ("any", "all")), None)
    kind = next((t for t in ("b32", "b64") if ins.has(t)), None)
    if mode is None or kind is None:
        raise PtxError("line %d: %s: only match.{any,all}.sync.{b32,b64}" % (ins.line,
                                                                              ins.text))
    dest = ins.operands[0]
    mask_dest, pred_dest = (dest.first, dest.second) if isinstance(dest, Pair) else (dest,
                                                                                    None)
    write_mask = writer(mask_dest, TYPES["b32"], ins.line)
    write_pred = writer(pred_dest, PRED, ins.line) if pred_dest is not None else None
    a = reader(ins.operands[1], TYPES[kind], ins.line)

    def match(f, mask, full):
        block = f.block
        value = np.broadcast_to(np.asarray(a(f)), (f.lanes,))
        same = np.zeros(f.lanes, dtype=np.uint64)
        for j in range(32):
            other = block.warp_start + j
            exists = (j < block.warp_lanes)
            other = np.where(exists, other, block.lane_index)
            hit = exists & mask[other] & (value[other] == value)
            same |= np.where(hit, np.uint64(1) << np.uint64(j), np.uint64(0))
        active = _ballot(block, np.ones(f.lanes, dtype=bool), mask)
        if mode == "all":
            everyone = same == active
            write_mask(f, np.where(everyone, active, 0).astype(np.uint32), mask, full)
            if write_pred is not None:
                write_pred(f, everyone, mask, full)
        else:
            write_mask(f, same.astype(np.uint32), mask, full)
    return Op(PLAIN, match)


def compile_activemask(ins):
    write = writer(ins.operands[0], TYPES["b32"], ins.line)

    def activemask(f, mask, full):
        block = f.block
        write(f, _ballot(block, np.ones(f.lanes, dtype=bool), mask).astype(np.uint32), mask,
              full)
    return Op(PLAIN, activemask)


# redux.sync's operations, each with the value an inactive lane contributes.
_REDUX = {
    "add": (np.add, 0), "min": (np.minimum, None), "max": (np.maximum, None),
    "and": (np.bitwise_and, 0xFFFFFFFF), "or": (np.bitwise_or, 0), "xor": (np.bitwise_xor, 0),
}


def compile_redux(ins):
    """redux.sync.{add,min,max}.{u32,s32} and redux.sync.{and,or,xor}.b32: one
    value for the warp's lanes in the mask (sm_80's warp reduction; CUB and
    cooperative groups use it)."""
    operation = next((m for m in ins.modifiers if m in _REDUX), None)
    kind = next((t for t in ("u32", "s32", "b32") if ins.has(t)), None)
    if not ins.has("sync") or operation is None or kind is None or (
            (operation in ("add", "min", "max")) == (kind == "b32")):
        raise PtxError("line %d: %s: only redux.sync.{add,min,max}.{u32,s32} and "
                       "redux.sync.{and,or,xor}.b32 are supported" % (ins.line, ins.text))
    ptype = TYPES[kind]
    write = writer(ins.operands[0], ptype, ins.line)
    a = reader(ins.operands[1], ptype, ins.line)
    combine, neutral = _REDUX[operation]
    if neutral is None:  # min, max: the type's far end
        info = np.iinfo(np.int32 if kind == "s32" else np.uint32)
        neutral = info.max if operation == "min" else info.min

    def redux(f, mask, full):
        block = f.block
        value = np.broadcast_to(np.asarray(a(f)), (f.lanes,)).astype(np.int64)
        value = np.where(mask, value, neutral)
        per_warp = combine.reduceat(value, block.warp_starts)[block.warp_id]
        if kind == "s32":
            per_warp = (per_warp & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
        else:
            per_warp = (per_warp & 0xFFFFFFFF).astype(np.uint32)
        write(f, per_warp, mask, full)
    return Op(PLAIN, redux)
