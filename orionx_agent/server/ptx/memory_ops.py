"""ld, st, atom and red: addresses to state spaces, and what they read and write.

An access first resolves, for the lanes performing it, to segments
``(buffer, lanes, byte offsets)`` (generic addresses may fall in several
spaces at once); every range is checked before any byte moves. Atomics
apply lanes that hit the same address one after another (round by round,
each round vectorised), so every lane sees the value its predecessor left,
as on a GPU.
"""

import numpy as np

from orionx_agent.server.ptx import faults, memory
from orionx_agent.server.ptx.op import PLAIN, Op
from orionx_agent.server.ptx.operands import reader, writer
from orionx_agent.server.ptx.parser import Address, PtxError, Reg, Symbol, Vector
from orionx_agent.server.ptx.types import TYPES, ptx_type

WINDOWS = memory.WINDOWS
_SPACES = ("global", "shared", "local", "const", "param")


def _space(ins):
    return next((m for m in ins.modifiers if m in _SPACES), "generic")


def _type(ins):
    types = [ptx_type(m) for m in ins.modifiers if ptx_type(m) is not None]
    if not types:
        raise PtxError("line %d: %s has no type" % (ins.line, ins.text))
    return types[-1]


def _vector_width(ins):
    for m in ins.modifiers:
        if m in ("v2", "v4", "v8"):
            return int(m[1:])
    return 1


def address_getter(ins, operand, space):
    """(fn(frame) -> uint64 addresses or a scalar, the space they are in)."""
    if not isinstance(operand, Address):
        raise PtxError("line %d: %s needs an address in brackets" % (ins.line, ins.text))
    offset = operand.offset
    base = operand.base
    if isinstance(base, Symbol):
        if space == "param" or base.space in ("kparam", "param", "callparam"):
            space = base.space if base.space in ("kparam", "param", "callparam") else space
        elif space != "generic" and base.space != space:
            raise PtxError("line %d: %s names .%s variable %s in a .%s access"
                           % (ins.line, ins.text, base.space, base.name, space))
        elif space == "generic":
            raise PtxError("line %d: %s: generic access to variable %s needs cvta"
                           % (ins.line, ins.text, base.name))

        def symbol_address(f):
            return np.uint64(f.symbol_address(base) + offset)
        return symbol_address, space
    if space == "param":
        space = "param_of_frame"
    if base is None:
        constant = np.uint64(offset & ((1 << 64) - 1))
        return (lambda f: constant), space
    if not isinstance(base, Reg):
        raise PtxError("line %d: cannot address through %r" % (ins.line, base))
    read = reader(base, TYPES["u%d" % max(base.type.bits, 32)], ins.line)
    if offset == 0:
        return (lambda f: np.asarray(read(f)).astype(np.uint64)), space
    delta = np.uint64(offset & ((1 << 64) - 1))
    return (lambda f: np.asarray(read(f)).astype(np.uint64) + delta), space


def compile_ld(ins):
    space = _space(ins)
    ptype = _type(ins)
    count = _vector_width(ins)
    width = ptype.bytes
    get_address, space = address_getter(ins, ins.operands[1], space)
    dest = ins.operands[0]
    targets = list(dest.elements) if isinstance(dest, Vector) else [dest]
    if len(targets) != count:
        raise PtxError("line %d: %s: %d destinations for .v%d" % (ins.line, ins.text,
                                                                len(targets), count))
    raw_type = TYPES["b%d" % ptype.bits] if not ptype.is_signed else ptype
    writes = [writer(t, raw_type, ins.line) for t in targets]
    dtype = raw_type.value_dtype

    def ld(f, mask, full):
        segments = f.resolve(space, get_address(f), width * count, mask, ins)
        for k, write in enumerate(writes):
            if full and len(segments) == 1 and segments[0][1] is mask:
                buffer, _, offsets = segments[0]
                value = buffer.view(dtype)[(offsets + k * width) // width]
            else:
                value = np.zeros(f.lanes, dtype=dtype)
                for buffer, lanes, offsets in segments:
                    value[lanes] = buffer.view(dtype)[(offsets + k * width) // width]
            write(f, value, mask, full)
    return _op(ld)


def compile_st(ins):
    space = _space(ins)
    if space == "const":
        raise PtxError("line %d: %s: .const memory is read-only" % (ins.line, ins.text))
    ptype = _type(ins)
    count = _vector_width(ins)
    width = ptype.bytes
    get_address, space = address_getter(ins, ins.operands[0], space)
    source = ins.operands[1]
    sources = list(source.elements) if isinstance(source, Vector) else [source]
    # Read as the store's type (a float immediate is a float), stored as bits.
    reads = [reader(s, ptype, ins.line) for s in sources]
    value_dtype, dtype = ptype.value_dtype, TYPES["b%d" % ptype.bits].value_dtype

    def st(f, mask, full):
        segments = f.resolve(space, get_address(f), width * count, mask, ins)
        for k, read in enumerate(reads):
            bits = np.asarray(read(f), dtype=value_dtype).view(dtype)
            value = np.broadcast_to(bits, (f.lanes,))
            for buffer, lanes, offsets in segments:
                buffer.view(dtype)[(offsets + k * width) // width] = value[lanes]
    return _op(st)


def compile_cp_async(ins):
    """cp.async global -> shared, done at once (the later commit and wait
    then have nothing left to wait for); bytes past src-size are zeros."""
    if ins.has("commit_group") or ins.has("wait_group") or ins.has("wait_all"):
        return _op(lambda f, mask, full: None)
    if not (ins.has("shared") and ins.has("global")) or ins.has("bulk"):
        raise PtxError("line %d: %s is not supported by the simulated GPU: only "
                       "cp.async.{ca,cg}.shared.global" % (ins.line, ins.text))
    get_destination, _ = address_getter(ins, ins.operands[0], "shared")
    get_source, _ = address_getter(ins, ins.operands[1], "global")
    size = ins.operands[2].value
    source_size = reader(ins.operands[3], TYPES["u32"], ins.line) \
        if len(ins.operands) > 3 and not isinstance(ins.operands[3], Symbol) else None

    def cp_async(f, mask, full):
        sources = f.resolve("global", get_source(f), size, mask, ins)
        (destination,) = f.resolve("shared", get_destination(f), size, mask, ins)
        shared, _, shared_offsets = destination
        valid = None
        if source_size is not None:
            valid = np.broadcast_to(np.asarray(source_size(f)), (f.lanes,))
        for byte in range(size):
            values = np.zeros(f.lanes, dtype=np.uint8)
            for buffer, lanes, offsets in sources:
                values[lanes] = buffer[offsets + byte]
            if valid is not None:
                values = np.where(valid > byte, values, np.uint8(0))
            shared[shared_offsets + byte] = values[mask]
    return _op(cp_async)


_ATOM_OPS = {
    "add": lambda old, b, c: old + b,
    "min": lambda old, b, c: np.minimum(old, b),
    "max": lambda old, b, c: np.maximum(old, b),
    "and": lambda old, b, c: old & b,
    "or": lambda old, b, c: old | b,
    "xor": lambda old, b, c: old ^ b,
    "exch": lambda old, b, c: b,
    "cas": lambda old, b, c: np.where(old == b, c, old),
    "inc": lambda old, b, c: np.where(old >= b, old.dtype.type(0), old + old.dtype.type(1)),
    "dec": lambda old, b, c: np.where((old == 0) | (old > b), b, old - old.dtype.type(1)),
}


def compile_atom(ins):
    is_red = ins.opcode == "red"
    space = _space(ins)
    if space not in ("global", "shared", "generic"):
        raise PtxError("line %d: %s: atomics on .%s memory" % (ins.line, ins.text, space))
    ptype = _type(ins)
    op_name = next((m for m in ins.modifiers if m in _ATOM_OPS), None)
    if op_name is None or ptype.bits not in (32, 64) or ptype.name.endswith("x2"):
        raise PtxError("line %d: %s is not supported by the simulated GPU (atomic %s on .%s)"
                       % (ins.line, ins.text, op_name, ptype.name))
    if ptype.is_float and op_name not in ("add", "exch", "min", "max"):
        raise PtxError("line %d: %s: atomic %s on floats" % (ins.line, ins.text, op_name))
    operands = ins.operands if is_red else ins.operands[1:]
    get_address, space = address_getter(ins, operands[0], space)
    b = reader(operands[1], ptype, ins.line)
    c = reader(operands[2], ptype, ins.line) if op_name == "cas" else None
    write = None if is_red else writer(ins.operands[0], ptype, ins.line)
    width = ptype.bytes
    dtype = ptype.value_dtype
    apply = _ATOM_OPS[op_name]

    def atom(f, mask, full):
        segments = f.resolve(space, get_address(f), width, mask, ins)
        b_all = np.broadcast_to(np.asarray(b(f), dtype=dtype), (f.lanes,))
        c_all = np.broadcast_to(np.asarray(c(f), dtype=dtype), (f.lanes,)) if c else None
        old_all = np.zeros(f.lanes, dtype=dtype) if write is not None else None
        for buffer, lanes, offsets in segments:
            view = buffer.view(dtype)
            index = offsets // width
            old = apply_in_rounds(view, index, b_all[lanes],
                                   c_all[lanes] if c_all is not None else None, apply)
            if old_all is not None:
                old_all[lanes] = old
        if write is not None:
            write(f, old_all, mask, full)
    return _op(atom)


def apply_in_rounds(view, index, b, c, apply):
    """Old values; lanes hitting one address apply in lane order."""
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    first = np.ones(len(index), dtype=bool)
    first[1:] = sorted_index[1:] != sorted_index[:-1]
    starts = np.maximum.accumulate(np.where(first, np.arange(len(index)), 0))
    rank = np.empty(len(index), dtype=np.int64)
    rank[order] = np.arange(len(index)) - starts
    old = np.empty(len(index), dtype=view.dtype)
    rounds = int(rank.max()) + 1 if len(index) else 0
    if rounds == 1:
        old[:] = view[index]
        view[index] = apply(old, b, c)
        return old
    for r in range(rounds):
        hit = rank == r
        here = index[hit]
        before = view[here]
        old[hit] = before
        view[here] = apply(before, b[hit], None if c is None else c[hit])
    return old


def resolve(frame, space, addresses, nbytes, mask, ins):
    """[(buffer, lanes mask, byte offsets of those lanes)] of an access."""
    block = frame.block
    if np.ndim(addresses) == 0:
        addresses = np.full(frame.lanes, addresses, dtype=np.uint64)
    if space == "generic":
        segments = []
        for kind, hit in memory.generic_space(addresses).items():
            lanes = hit & mask
            if not lanes.any():
                continue
            local = addresses - np.uint64(WINDOWS[kind]) if kind in WINDOWS else addresses
            segments += resolve(frame, kind, local, nbytes, lanes, ins)
        return segments

    def describe():
        return frame.where(ins)
    active = addresses[mask]
    if space == "global":
        if block.module_globals_bytes:
            return _global_segments(block, addresses, nbytes, mask, describe)
        offsets = block.global_memory.offsets(active, nbytes, describe)
        memory.check_alignment(offsets, min(nbytes, 16), describe)
        return [(block.global_memory.arena, mask, offsets)]
    signed = active.astype(np.int64)
    if space == "shared":
        buffer, per_lane, limit = block.shared, block.block_of_lane, block.shared_bytes
    elif space == "local":
        buffer, per_lane, limit = block.local, block.lane_index, block.local_stride
    elif space == "const":
        buffer, per_lane, limit = block.const, None, block.const_bytes
    elif space == "kparam":
        buffer, per_lane, limit = block.kernel_params, None, block.kernel_param_bytes
    elif space in ("param", "param_of_frame"):
        if frame.params is None:
            buffer, per_lane, limit = block.kernel_params, None, block.kernel_param_bytes
        else:
            buffer, per_lane, limit = frame.params, block.lane_index, frame.param_stride
    elif space == "callparam":
        buffer, per_lane, limit = frame.callparams, block.lane_index, frame.callparam_stride
    else:
        raise faults.KernelFault(faults.ILLEGAL_ADDRESS, "%s: unknown state space %s"
                                 % (describe(), space))
    memory.check_range(signed, nbytes, limit, space, describe)
    memory.check_alignment(signed, min(nbytes, 16), describe)
    if per_lane is not None:
        signed = per_lane[mask] * limit + signed
    return [(buffer, mask, signed)]


def _global_segments(block, addresses, nbytes, mask, describe):
    """Global accesses of a module with .global variables: those in its
    window reach the module's image, the rest the session's allocations."""
    window = np.uint64(memory.MODULE_GLOBALS_WINDOW)
    in_module = mask & ((addresses >> np.uint64(32)) << np.uint64(32) == window)
    segments = []
    if in_module.any():
        offsets = (addresses[in_module] - window).astype(np.int64)
        memory.check_range(offsets, nbytes, block.module_globals_bytes, "module .global",
                           describe)
        memory.check_alignment(offsets, min(nbytes, 16), describe)
        segments.append((block.module_globals, in_module, offsets))
    rest = mask & ~in_module
    if rest.any():
        offsets = block.global_memory.offsets(addresses[rest], nbytes, describe)
        memory.check_alignment(offsets, min(nbytes, 16), describe)
        segments.append((block.global_memory.arena, rest, offsets))
    return segments


def _op(run):
    return Op(PLAIN, run)
