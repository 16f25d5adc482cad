"""Reading and writing operands as the instruction's type says.

Registers hold raw bits of their declared width; a read views or converts
them to the instruction's type, a write stores the value's bits back,
sign- or zero-extended to the register's width. Writes under a partial
mask keep the other lanes' bits (``np.where``); a full mask replaces the
register's array outright, so arrays are never modified in place and two
registers may share one.
"""

import numpy as np

from orionx_agent.server.ptx import rounding
from orionx_agent.server.ptx.parser import Imm, Not, PtxError, Reg, Special, Symbol
from orionx_agent.server.ptx.types import signed_dtype, unsigned_dtype


def immediate(value, ptype):
    """A numpy scalar of ``value`` as ``ptype``."""
    if ptype.kind == "pred":
        return np.bool_(bool(value))
    if ptype.is_float:
        if ptype.name.startswith("bf16"):
            return rounding.to_bf16_bits(np.array([float(value)]))[0]
        if isinstance(value, int) and ptype.bits in (32, 64) and abs(value) >= 1 << 24:
            value = float(value)
        return ptype.value_dtype.type(value)
    if isinstance(value, float):
        value = int(value)
    bits = value & ((1 << ptype.bits) - 1)
    return np.array(bits, dtype=unsigned_dtype(ptype.bits)).view(ptype.value_dtype)[()]


def reader(operand, ptype, line):
    """fn(frame) -> array (or scalar) of ``operand`` read as ``ptype``."""
    if isinstance(operand, Not):
        index = operand.reg.index
        return lambda f: ~f.regs[index]
    if isinstance(operand, Reg):
        return _register_reader(operand, ptype)
    if isinstance(operand, Imm):
        constant = immediate(operand.value, ptype)
        return lambda f: constant
    if isinstance(operand, Special):
        name, dtype = operand.name, ptype.value_dtype
        return lambda f: f.block.special(name).astype(dtype, copy=False)
    if isinstance(operand, Symbol):
        if operand.space == "func":
            raise PtxError("line %d: the address of function %s is taken: indirect calls "
                           "are not supported by the simulated GPU" % (line, operand.name))
        dtype = unsigned_dtype(max(ptype.bits, 32))
        return lambda f: dtype.type(f.symbol_address(operand))
    raise PtxError("line %d: operand %r cannot be read as .%s" % (line, operand, ptype.name))


def _register_reader(reg, ptype):
    index, reg_bits = reg.index, reg.type.bits
    if reg.type.kind == "pred" or ptype.kind == "pred":
        if reg.type.kind != ptype.kind:
            raise PtxError("register %s (.%s) read as .%s" % (reg.name, reg.type.name,
                                                             ptype.name))
        return lambda f: f.regs[index]
    dtype = ptype.value_dtype
    if reg_bits == ptype.bits:
        return lambda f: f.regs[index].view(dtype)
    if reg_bits > ptype.bits:
        narrow = unsigned_dtype(ptype.bits)
        return lambda f: f.regs[index].astype(narrow).view(dtype)
    if ptype.is_signed:
        source = signed_dtype(reg_bits)
        return lambda f: f.regs[index].view(source).astype(dtype)
    wide = unsigned_dtype(ptype.bits)
    return lambda f: f.regs[index].astype(wide).view(dtype)


def writer(operand, ptype, line):
    """fn(frame, value, mask, full) storing ``value`` (of ``ptype``) in ``operand``."""
    if operand is None:
        return lambda f, value, mask, full: None  # the sink "_"
    if not isinstance(operand, Reg):
        raise PtxError("line %d: destination %r is not a register" % (line, operand))
    index, raw, reg_bits = operand.index, operand.type.raw_dtype, operand.type.bits
    if operand.type.kind == "pred":
        def write_pred(f, value, mask, full):
            value = np.broadcast_to(np.asarray(value, dtype=bool), (f.lanes,))
            f.regs[index] = value if full else np.where(mask, value, f.regs[index])
        return write_pred
    dtype = ptype.value_dtype
    if reg_bits == ptype.bits:
        def to_raw(value):
            return np.asarray(value, dtype=dtype).view(raw)
    elif ptype.is_signed:
        wide = signed_dtype(reg_bits)

        def to_raw(value):
            return np.asarray(value, dtype=dtype).astype(wide).view(raw)
    else:
        narrow = unsigned_dtype(ptype.bits)

        def to_raw(value):
            return np.asarray(value, dtype=dtype).view(narrow).astype(raw)

    def write(f, value, mask, full):
        bits = to_raw(value)
        if full:
            f.regs[index] = bits if bits.shape == (f.lanes,) else np.full(f.lanes, bits, raw)
        else:
            f.regs[index] = np.where(mask, bits, f.regs[index])
    return write
