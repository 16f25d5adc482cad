"""What each PTX instruction does, compiled once per module into closures.

``compile_instruction`` turns a parsed :class:`Instruction` into an
:class:`Op`. A plain op is ``run(frame, mask, full)``: it computes its
result for every lane of the frame at once with numpy and writes the lanes
in ``mask`` (all of them when ``full``). Control flow (branches, calls,
returns, exits) is left to the executor. An instruction this module does
not know, or a form of one it cannot run, raises PtxError at module load.
"""

import numpy as np

from orionx_agent.server.ptx import faults, mbarrier_ops, memory_ops, rounding, warp_ops
from orionx_agent.server.ptx.op import BRANCH, CALL, EXIT, PLAIN, RET, Op
from orionx_agent.server.ptx.operands import immediate, reader, writer
from orionx_agent.server.ptx.parser import Pair, PtxError, Vector
from orionx_agent.server.ptx.types import TYPES, ptx_type, unsigned_dtype


def instruction_types(ins):
    return [ptx_type(m) for m in ins.modifiers if ptx_type(m) is not None]


def _one_type(ins):
    types = instruction_types(ins)
    if not types:
        raise PtxError("line %d: %s has no type" % (ins.line, ins.opcode))
    return types[-1]


def _rounding_mode(ins, default="rn"):
    for mode in rounding.MODES:
        if ins.has(mode):
            return mode
    return default


def _unsupported(ins, why):
    return PtxError("line %d: %s is not supported by the simulated GPU: %s"
                    % (ins.line, ins.text, why))


# -- plain op construction ----------------------------------------------------------

def _plain(ins, compute, out_type, dest=None):
    """An op writing ``compute(frame)`` (typed ``out_type``) to the destination."""
    write = writer(ins.operands[0] if dest is None else dest, out_type, ins.line)

    def run(f, mask, full):
        write(f, compute(f), mask, full)
    return Op(PLAIN, run)


def _sources(ins, ptype, first=1):
    return [reader(o, ptype, ins.line) for o in ins.operands[first:]]


# -- integer and float arithmetic -------------------------------------------------

def _float_binary(ins, ptype, name):
    a, b = _sources(ins, ptype)[:2]
    mode = _rounding_mode(ins)
    ftz, sat = ins.has("ftz"), ins.has("sat")
    if ptype.name in ("f16", "bf16", "f16x2", "bf16x2"):
        return _half_op(ins, ptype, name, 2)
    if ptype.bits == 64 and mode != "rn":
        raise _unsupported(ins, "directed rounding of f64 arithmetic")
    exact = {"add": rounding.f32_add, "sub": lambda x, y, m: rounding.f32_add(x, -y, m),
             "mul": rounding.f32_mul, "div": rounding.f32_div}

    def compute(f):
        x, y = a(f), b(f)
        if ftz:
            x, y = rounding.flush_subnormal(x), rounding.flush_subnormal(y)
        if ptype.bits == 32:
            if mode == "rn" and name != "div":
                r = {"add": np.add, "sub": np.subtract, "mul": np.multiply}[name](x, y)
            else:
                r = exact[name](np.asarray(x, np.float32), np.asarray(y, np.float32), mode)
        else:
            r = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                 "div": np.divide}[name](x, y)
        if ftz:
            r = rounding.flush_subnormal(r)
        if sat:
            r = _saturate_float(r)
        return r
    return _plain(ins, compute, ptype)


def _saturate_float(r):
    return np.where(np.isnan(r), r.dtype.type(0), np.clip(r, 0, 1)).astype(r.dtype)


def _widen_half(ptype, x):
    if ptype.name.startswith("bf16"):
        return rounding.from_bf16_bits(x).astype(np.float64)
    return np.asarray(x).astype(np.float64)


def _narrow_half(ptype, x, mode="rn"):
    if ptype.name.startswith("bf16"):
        return rounding.to_bf16_bits(x, mode)
    return rounding.round_exact(x, np.float16, mode)


def _half_op(ins, ptype, name, arity):
    """f16/bf16 (and packed x2) arithmetic: widened to f64, rounded once."""
    mode = _rounding_mode(ins)
    packed = ptype.name.endswith("x2")
    lane_type = TYPES[ptype.name[:-2]] if packed else ptype
    read = [reader(o, TYPES["b32"] if packed else TYPES["b16"], ins.line)
            for o in ins.operands[1:1 + arity]]
    ops = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y,
           "mul": lambda x, y: x * y, "fma": lambda x, y, z: x * y + z,
           "neg": lambda x: -x, "abs": np.abs,
           "min": np.fmin, "max": np.fmax}
    if name not in ops:
        raise _unsupported(ins, "this half-precision operation")
    out_type = TYPES["b32"] if packed else TYPES["b16"]
    sat = ins.has("sat")

    def compute(f):
        values = []
        for r in read:
            bits = np.asarray(r(f))
            halves = bits.view(np.uint16) if packed else bits
            values.append(_widen_half(lane_type, halves if lane_type.name == "bf16"
                                      else halves.view(np.float16)))
        result = ops[name](*values)
        if sat:
            result = np.where(np.isnan(result), 0.0, np.clip(result, 0.0, 1.0))
        bits = _narrow_half(lane_type, result, mode)
        bits = np.asarray(bits).view(np.uint16)
        return bits.view(np.uint32) if packed else bits
    return _plain(ins, compute, out_type)


def _int_binary(ins, ptype, ufunc):
    a, b = _sources(ins, ptype)[:2]
    if ins.has("sat"):
        if ptype.name != "s32":
            raise _unsupported(ins, ".sat applies to .s32 only")
        lo, hi = -(1 << 31), (1 << 31) - 1

        def saturated(f):
            return np.clip(ufunc(np.asarray(a(f), np.int64), np.asarray(b(f), np.int64)),
                           lo, hi)
        return _plain(ins, saturated, ptype)
    return _plain(ins, lambda f: ufunc(a(f), b(f)), ptype)


def compile_add_sub(ins):
    ptype = _one_type(ins)
    if ins.has("cc") or ins.opcode in ("addc", "subc"):
        return compile_carry(ins, ptype)
    if ptype.is_float:
        return _float_binary(ins, ptype, ins.opcode)
    return _int_binary(ins, ptype, np.add if ins.opcode == "add" else np.subtract)


def compile_carry(ins, ptype):
    """add.cc/addc, sub.cc/subc, mad.cc/madc: extended-precision arithmetic
    through the per-thread carry flag (.cc writes it, the *c forms read it)."""
    if ptype.bits not in (32, 64) or ptype.is_float:
        raise _unsupported(ins, "carry arithmetic on .%s" % ptype.name)
    unsigned = TYPES["u%d" % ptype.bits]
    sources = _sources(ins, unsigned)
    carry_in = ins.opcode in ("addc", "subc", "madc")
    carry_out = ins.has("cc")
    write = writer(ins.operands[0], unsigned, ins.line)
    subtract = ins.opcode.startswith("sub")
    multiply = ins.opcode.startswith("mad")
    high = ins.has("hi")
    dtype = unsigned.value_dtype

    def run(f, mask, full):
        values = [np.broadcast_to(np.asarray(g(f), dtype), (f.lanes,)) for g in sources]
        if multiply:
            a, b, c = values
            first = _mul_hi(a, b, unsigned).astype(dtype) if high else a * b
            second = c
        else:
            first, second = values
        flag = f.carry.astype(dtype) if carry_in else dtype.type(0)
        if subtract:
            partial = first - second
            result = partial - flag
            out = (first < second) | (partial < flag)
        else:
            partial = first + second
            result = partial + flag
            out = (partial < first) | (result < partial)
        write(f, result, mask, full)
        if carry_out:
            out = out.astype(np.uint8)
            f.carry = out if full else np.where(mask, out, f.carry)
    return Op(PLAIN, run)


def _mul_hi(x, y, ptype):
    if ptype.bits < 64:
        wide = np.int64 if ptype.is_signed else np.uint64
        return (np.asarray(x).astype(wide) * np.asarray(y).astype(wide)) >> ptype.bits
    return mul_hi64(x, y, ptype.is_signed)


def mul_hi64(x, y, signed):
    """High 64 bits of the 128-bit product of two 64-bit arrays."""
    xu = np.asarray(x).astype(np.uint64)
    yu = np.asarray(y).astype(np.uint64)
    m32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    x_lo, x_hi, y_lo, y_hi = xu & m32, xu >> s32, yu & m32, yu >> s32
    lo_lo = x_lo * y_lo
    hi_lo = x_hi * y_lo
    lo_hi = x_lo * y_hi
    cross = (lo_lo >> s32) + (hi_lo & m32) + lo_hi
    hi = x_hi * y_hi + (hi_lo >> s32) + (cross >> s32)
    if signed:
        hi = hi - np.where(np.asarray(x).astype(np.int64) < 0, yu, np.uint64(0)) \
            - np.where(np.asarray(y).astype(np.int64) < 0, xu, np.uint64(0))
        return hi.view(np.int64)
    return hi


def _wide_type(ptype):
    return TYPES["%s%d" % ("s" if ptype.is_signed else "u", ptype.bits * 2)]


def compile_mul(ins):
    ptype = _one_type(ins)
    if ptype.is_float:
        return _float_binary(ins, ptype, "mul")
    if ins.opcode == "mul24":
        raise _unsupported(ins, "mul24")
    a, b = _sources(ins, ptype)[:2]
    if ins.has("wide"):
        wide = _wide_type(ptype)
        dtype = wide.value_dtype
        return _plain(ins, lambda f: np.asarray(a(f)).astype(dtype) *
                      np.asarray(b(f)).astype(dtype), wide)
    if ins.has("hi"):
        return _plain(ins, lambda f: _mul_hi(a(f), b(f), ptype), ptype)
    return _plain(ins, lambda f: np.multiply(a(f), b(f)), ptype)


def compile_mad(ins):
    ptype = _one_type(ins)
    if ptype.is_float:
        return compile_fma(ins)
    if ins.opcode == "mad24":
        raise _unsupported(ins, "24-bit multiply-add")
    if ins.has("cc") or ins.opcode == "madc":
        return compile_carry(ins, ptype)
    a, b = _sources(ins, ptype)[:2]
    if ins.has("wide"):
        wide = _wide_type(ptype)
        c = reader(ins.operands[3], wide, ins.line)
        dtype = wide.value_dtype
        return _plain(ins, lambda f: np.asarray(a(f)).astype(dtype) *
                      np.asarray(b(f)).astype(dtype) + c(f), wide)
    c = reader(ins.operands[3], ptype, ins.line)
    if ins.has("hi"):
        if ins.has("sat"):
            raise _unsupported(ins, "mad.hi.sat")
        return _plain(ins, lambda f: (_mul_hi(a(f), b(f), ptype).astype(ptype.value_dtype)
                                      + c(f)), ptype)
    return _plain(ins, lambda f: np.multiply(a(f), b(f)) + c(f), ptype)


def compile_fma(ins):
    ptype = _one_type(ins)
    if ptype.name in ("f16", "bf16", "f16x2", "bf16x2"):
        return _half_op(ins, ptype, "fma", 3)
    a, b, c = _sources(ins, ptype)[:3]
    mode = _rounding_mode(ins)
    ftz, sat = ins.has("ftz"), ins.has("sat")
    if ptype.bits == 64:
        if mode != "rn":
            raise _unsupported(ins, "directed rounding of f64 arithmetic")
        def fma64(f):
            return rounding.f64_fma(*(np.asarray(g(f), np.float64) for g in (a, b, c)))
        return _plain(ins, fma64, ptype)

    def fma32(f):
        x, y, z = (np.asarray(g(f), np.float32) for g in (a, b, c))
        if ftz:
            x, y, z = (rounding.flush_subnormal(v) for v in (x, y, z))
        r = rounding.f32_fma(x, y, z, mode)
        if ftz:
            r = rounding.flush_subnormal(r)
        return _saturate_float(r) if sat else r
    return _plain(ins, fma32, ptype)


def _trunc_div(x, y, ptype):
    x = np.asarray(x)
    y = np.asarray(y)
    if not ptype.is_signed:
        safe = np.where(y == 0, 1, y).astype(x.dtype)
        return np.where(y == 0, x.dtype.type(-1 & ((1 << ptype.bits) - 1)), x // safe)
    safe = np.where(y == 0, 1, y).astype(x.dtype)
    floor = x // safe
    # Floor division rounds down; C and PTX round toward zero.
    inexact = (x - floor * safe != 0) & ((x < 0) != (safe < 0))
    q = np.where(inexact, floor + x.dtype.type(1), floor)
    return np.where(y == 0, x.dtype.type(-1), q).astype(ptype.value_dtype)


def compile_div(ins):
    ptype = _one_type(ins)
    if ptype.is_float:
        return _float_binary(ins, ptype, "div")
    a, b = _sources(ins, ptype)[:2]
    return _plain(ins, lambda f: _trunc_div(a(f), b(f), ptype), ptype)


def compile_rem(ins):
    ptype = _one_type(ins)
    a, b = _sources(ins, ptype)[:2]

    def rem(f):
        x, y = np.asarray(a(f)), np.asarray(b(f))
        q = _trunc_div(x, y, ptype)
        return np.where(y == 0, x, x - q * y)
    return _plain(ins, rem, ptype)


def _packed_min_max(ins, signed):
    """min/max.{s16x2,u16x2}: two 16-bit halves of a 32-bit register each."""
    b32 = TYPES["b32"]
    a, b = _sources(ins, b32)[:2]
    fn = np.minimum if ins.opcode == "min" else np.maximum
    half = np.int16 if signed else np.uint16

    def halves(value):
        value = np.asarray(value).astype(np.uint32)
        return ((value & 0xFFFF).astype(np.uint16).view(half),
                (value >> 16).astype(np.uint16).view(half))

    def packed(f):
        (a_lo, a_hi), (b_lo, b_hi) = halves(a(f)), halves(b(f))
        lo = fn(a_lo, b_lo).view(np.uint16).astype(np.uint32)
        hi = fn(a_hi, b_hi).view(np.uint16).astype(np.uint32)
        return lo | (hi << 16)
    return _plain(ins, packed, b32)


def compile_min_max(ins):
    if ins.has("s16x2") or ins.has("u16x2"):
        if ins.has("relu"):
            raise _unsupported(ins, "min/max.relu on packed halves")
        return _packed_min_max(ins, ins.has("s16x2"))
    ptype = _one_type(ins)
    if ptype.name in ("f16", "bf16", "f16x2", "bf16x2"):
        return _half_op(ins, ptype, ins.opcode, 2)
    a, b = _sources(ins, ptype)[:2]
    if ptype.is_float:
        ufunc = {"min": np.minimum, "max": np.maximum} if ins.has("NaN") else \
            {"min": np.fmin, "max": np.fmax}
    else:
        ufunc = {"min": np.minimum, "max": np.maximum}
    fn = ufunc[ins.opcode]
    return _plain(ins, lambda f: fn(a(f), b(f)), ptype)


def compile_unary_arith(ins):
    ptype = _one_type(ins)
    if ptype.name in ("f16", "bf16", "f16x2", "bf16x2"):
        return _half_op(ins, ptype, ins.opcode, 1)
    (a,) = _sources(ins, ptype)[:1]
    fn = np.abs if ins.opcode == "abs" else np.negative
    ftz = ins.has("ftz")
    if ptype.is_float and ftz:
        return _plain(ins, lambda f: fn(rounding.flush_subnormal(np.asarray(a(f)))), ptype)
    return _plain(ins, lambda f: fn(a(f)), ptype)


def compile_logic(ins):
    ptype = _one_type(ins)
    sources = _sources(ins, ptype)
    if ins.opcode == "not":
        (a,) = sources
        return _plain(ins, lambda f: np.invert(a(f)), ptype)
    if ins.opcode == "cnot":
        (a,) = sources
        return _plain(ins, lambda f: (np.asarray(a(f)) == 0).astype(ptype.value_dtype), ptype)
    a, b = sources[:2]
    fn = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[ins.opcode]
    return _plain(ins, lambda f: fn(a(f), b(f)), ptype)


def compile_lop3(ins):
    ptype = _one_type(ins)
    a, b, c = _sources(ins, ptype)[:3]
    lut = ins.operands[4].value & 0xFF

    def lop3(f):
        x, y, z = (np.asarray(g(f)) for g in (a, b, c))
        out = np.zeros(np.broadcast(x, y, z).shape, dtype=ptype.value_dtype)
        for minterm in range(8):
            if lut >> minterm & 1:
                term = (x if minterm & 4 else ~x) & (y if minterm & 2 else ~y) & \
                    (z if minterm & 1 else ~z)
                out = out | term
        return out
    return _plain(ins, lop3, ptype)


def compile_shift(ins):
    ptype = _one_type(ins)
    a = reader(ins.operands[1], ptype, ins.line)
    b = reader(ins.operands[2], TYPES["u32"], ins.line)
    bits = ptype.bits
    dtype = ptype.value_dtype
    signed_right = ins.opcode == "shr" and ptype.is_signed

    def shift(f):
        x = np.asarray(a(f))
        amount = np.asarray(b(f))
        clipped = np.minimum(amount, bits - 1).astype(dtype)
        if ins.opcode == "shl":
            return np.where(amount >= bits, dtype.type(0), x << clipped)
        if signed_right:
            return x >> clipped
        return np.where(amount >= bits, dtype.type(0), x >> clipped)
    return _plain(ins, shift, ptype)


def _bit_length(x, bits):
    x = np.asarray(x).astype(np.uint64)
    if bits <= 32:
        return np.frexp(x.astype(np.float64))[1].astype(np.uint32)
    high = x >> np.uint64(32)
    low = x & np.uint64(0xFFFFFFFF)
    return np.where(high != 0, 32 + np.frexp(high.astype(np.float64))[1],
                    np.frexp(low.astype(np.float64))[1]).astype(np.uint32)


_BYTE_REVERSED = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)],
                          dtype=np.uint8)


def compile_bit_count(ins):
    ptype = _one_type(ins)
    (a,) = _sources(ins, TYPES["b%d" % ptype.bits])[:1]
    bits = ptype.bits
    if ins.opcode == "popc":
        return _plain(ins, lambda f: np.bitwise_count(np.asarray(a(f))).astype(np.uint32),
                      TYPES["u32"])
    if ins.opcode == "clz":
        return _plain(ins, lambda f: np.uint32(bits) - _bit_length(a(f), bits), TYPES["u32"])
    raw = unsigned_dtype(bits)

    def brev(f):
        x = np.ascontiguousarray(np.broadcast_to(np.asarray(a(f), raw), (f.lanes,)))
        as_bytes = _BYTE_REVERSED[x.view(np.uint8)].reshape(-1, bits // 8)[:, ::-1]
        return np.ascontiguousarray(as_bytes).view(raw).reshape(-1)
    return _plain(ins, brev, ptype)


def _field_mask(length):
    length = np.asarray(length).astype(np.uint64)
    ones = np.uint64(0xFFFFFFFFFFFFFFFF)
    return np.where(length >= 64, ones,
                    (np.uint64(1) << np.minimum(length, 63)) - np.uint64(1))


def compile_bfe(ins):
    ptype = _one_type(ins)
    a = reader(ins.operands[1], TYPES["u%d" % ptype.bits], ins.line)
    b = reader(ins.operands[2], TYPES["u32"], ins.line)
    c = reader(ins.operands[3], TYPES["u32"], ins.line)
    bits = ptype.bits
    width_mask = np.uint64((1 << bits) - 1)

    def bfe(f):
        x = np.asarray(a(f)).astype(np.uint64)
        pos = (np.asarray(b(f)) & 0xFF).astype(np.uint64)
        length = (np.asarray(c(f)) & 0xFF).astype(np.uint64)
        pos_c = np.minimum(pos, np.uint64(bits))
        available = np.minimum(length, np.uint64(bits) - pos_c)
        shifted = np.where(pos_c >= bits, np.uint64(0), x >> np.minimum(pos_c,
                                                                        np.uint64(bits - 1)))
        field = shifted & _field_mask(available)
        if not ptype.is_signed:
            return field.astype(ptype.value_dtype)
        top = x >> np.uint64(bits - 1) & np.uint64(1)
        sign_pos = np.where(available > 0, available - np.uint64(1), np.uint64(0))
        sign = np.where(available > 0, field >> sign_pos & np.uint64(1), top)
        sign = np.where(length == 0, np.uint64(0), sign)
        extended = np.where(sign == 1, field | ~_field_mask(available), field) & width_mask
        return extended.astype(unsigned_dtype(bits)).view(ptype.value_dtype)
    return _plain(ins, bfe, ptype)


def compile_bfi(ins):
    ptype = _one_type(ins)
    a, b = (reader(o, TYPES["u%d" % ptype.bits], ins.line) for o in ins.operands[1:3])
    c, d = (reader(o, TYPES["u32"], ins.line) for o in ins.operands[3:5])
    bits = ptype.bits
    width_mask = np.uint64((1 << bits) - 1)

    def bfi(f):
        x, y = np.asarray(a(f)).astype(np.uint64), np.asarray(b(f)).astype(np.uint64)
        pos = (np.asarray(c(f)) & 0xFF).astype(np.uint64)
        length = (np.asarray(d(f)) & 0xFF).astype(np.uint64)
        pos_c = np.minimum(pos, np.uint64(bits - 1))
        mask = np.where(pos >= bits, np.uint64(0), (_field_mask(length) << pos_c)) & width_mask
        out = (y & ~mask) | ((x << pos_c) & mask)
        return out.astype(ptype.value_dtype)
    return _plain(ins, bfi, ptype)


def compile_bfind(ins):
    """Position of the most significant non-sign bit, 0xffffffff if none;
    .shiftamt: the left shift that would bring it to the top."""
    ptype = _one_type(ins)
    (a,) = _sources(ins, ptype)[:1]
    bits = ptype.bits
    raw = unsigned_dtype(bits)

    def bfind(f):
        x = np.asarray(a(f))
        if ptype.is_signed:  # for negative values, the most significant 0
            x = np.where(x < 0, ~x, x)
        length = _bit_length(np.asarray(x).astype(raw), bits).astype(np.int64)
        position = length - 1
        if ins.has("shiftamt"):
            position = np.where(length > 0, bits - length, -1)
        return np.where(length > 0, position, -1).astype(np.int64).astype(np.uint32)
    return _plain(ins, bfind, TYPES["u32"])


def compile_shf(ins):
    """Funnel shift of the 64 bits {b:a} by c: the upper (shf.l) or lower
    (shf.r) 32 bits; .wrap takes c modulo 32, .clamp at most 32."""
    u32 = TYPES["u32"]
    a, b, c = _sources(ins, u32)[:3]
    left, clamp = ins.has("l"), ins.has("clamp")

    def shf(f):
        pair = np.asarray(a(f)).astype(np.uint64) | \
            (np.asarray(b(f)).astype(np.uint64) << np.uint64(32))
        amount = np.asarray(c(f)).astype(np.uint64)
        amount = np.minimum(amount, np.uint64(32)) if clamp else amount & np.uint64(31)
        if left:
            return ((pair << amount) >> np.uint64(32)).astype(np.uint32)
        return ((pair >> amount) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return _plain(ins, shf, TYPES["b32"])


def compile_prmt(ins):
    if len(ins.modifiers) != 1:
        raise _unsupported(ins, "prmt modes other than the default byte selector")
    u32 = TYPES["u32"]
    a, b, c = _sources(ins, u32)[:3]

    def prmt(f):
        x = np.asarray(a(f)).astype(np.uint64)
        y = np.asarray(b(f)).astype(np.uint64)
        pool = x | (y << np.uint64(32))
        selector = np.asarray(c(f)).astype(np.uint64)
        out = np.zeros(np.broadcast(pool, selector).shape, dtype=np.uint64)
        for k in range(4):
            nibble = selector >> np.uint64(4 * k) & np.uint64(0xF)
            byte = pool >> ((nibble & np.uint64(7)) * np.uint64(8)) & np.uint64(0xFF)
            byte = np.where(nibble & np.uint64(8),
                            np.where(byte & np.uint64(0x80), np.uint64(0xFF), np.uint64(0)),
                            byte)
            out |= byte << np.uint64(8 * k)
        return out.astype(np.uint32)
    return _plain(ins, prmt, u32)


# -- comparisons and selection ---------------------------------------------------------

_ORDERED = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
            "gt": np.greater, "ge": np.greater_equal,
            "lo": np.less, "ls": np.less_equal, "hi": np.greater, "hs": np.greater_equal}


def _comparison(ins, cmp, ptype):
    a, b = (reader(o, ptype, ins.line) for o in ins.operands[1:3])
    if not ptype.is_float:
        fn = _ORDERED.get(cmp)
        if fn is None:
            raise _unsupported(ins, "comparison %s on integers" % cmp)
        return lambda f: fn(a(f), b(f))
    if ptype.name.endswith("x2"):
        raise _unsupported(ins, "packed half-precision comparisons")
    widen = (lambda v: np.asarray(v)) if ptype.bits > 16 else \
        (lambda v: _widen_half(ptype, np.asarray(v)))

    def compare(f):
        x, y = widen(a(f)), widen(b(f))
        unordered = np.isnan(x) | np.isnan(y)
        if cmp == "num":
            return ~unordered
        if cmp == "nan":
            return unordered
        base = cmp[:-1] if cmp.endswith("u") and cmp != "nu" else cmp
        result = _ORDERED[base](x, y) & ~unordered
        return result | unordered if cmp.endswith("u") else result
    return compare


_CMP_NAMES = set(_ORDERED) | {"equ", "neu", "ltu", "leu", "gtu", "geu", "num", "nan"}


def _compare_parts(ins):
    cmp = next((m for m in ins.modifiers if m in _CMP_NAMES), None)
    boolean = next((m for m in ins.modifiers if m in ("and", "or", "xor")), None)
    if cmp is None:
        raise _unsupported(ins, "no comparison operator")
    return cmp, boolean


def _combine(ins, boolean, index):
    if boolean is None:
        return None
    c = reader(ins.operands[index], TYPES["pred"], ins.line)
    fn = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}[boolean]
    return lambda f, value: fn(value, c(f))


def compile_setp(ins):
    cmp, boolean = _compare_parts(ins)
    ptype = _one_type(ins)
    compare = _comparison(ins, cmp, ptype)
    combine = _combine(ins, boolean, 3)
    dest = ins.operands[0]
    pred = TYPES["pred"]
    first = writer(dest.first if isinstance(dest, Pair) else dest, pred, ins.line)
    second = writer(dest.second, pred, ins.line) if isinstance(dest, Pair) else None

    def setp(f, mask, full):
        value = compare(f)
        if combine is None:
            first(f, value, mask, full)
            if second is not None:
                second(f, ~value, mask, full)
        else:
            first(f, combine(f, value), mask, full)
            if second is not None:
                second(f, combine(f, ~value), mask, full)
    return Op(PLAIN, setp)


def compile_set(ins):
    cmp, boolean = _compare_parts(ins)
    types = instruction_types(ins)
    out_type, in_type = types[0], types[-1]
    compare = _comparison(ins, cmp, in_type)
    combine = _combine(ins, boolean, 3)
    if out_type.is_float:
        true, false = out_type.value_dtype.type(1.0), out_type.value_dtype.type(0.0)
    else:
        true = immediate(-1, out_type)
        false = immediate(0, out_type)

    def compute(f):
        value = compare(f)
        if combine is not None:
            value = combine(f, value)
        return np.where(value, true, false)
    return _plain(ins, compute, out_type)


def compile_selp(ins):
    ptype = _one_type(ins)
    a, b = (reader(o, ptype, ins.line) for o in ins.operands[1:3])
    c = reader(ins.operands[3], TYPES["pred"], ins.line)
    return _plain(ins, lambda f: np.where(c(f), a(f), b(f)), ptype)


def compile_slct(ins):
    types = instruction_types(ins)
    ptype, ctype = types[0], types[-1]
    a, b = (reader(o, ptype, ins.line) for o in ins.operands[1:3])
    c = reader(ins.operands[3], ctype, ins.line)
    return _plain(ins, lambda f: np.where(np.asarray(c(f)) >= 0, a(f), b(f)), ptype)


def compile_testp(ins):
    ptype = _one_type(ins)
    (a,) = _sources(ins, ptype)[:1]
    tiny = np.finfo(ptype.value_dtype).tiny
    tests = {
        "finite": np.isfinite, "infinite": np.isinf, "number": lambda x: ~np.isnan(x),
        "notanumber": np.isnan,
        "normal": lambda x: np.isfinite(x) & (np.abs(x) >= tiny),
        "subnormal": lambda x: (x != 0) & (np.abs(x) < tiny),
    }
    test = next((tests[m] for m in ins.modifiers if m in tests), None)
    if test is None:
        raise _unsupported(ins, "testp without a test")
    return _plain(ins, lambda f: test(np.asarray(a(f))), TYPES["pred"])


def compile_copysign(ins):
    ptype = _one_type(ins)
    a, b = _sources(ins, ptype)[:2]
    return _plain(ins, lambda f: np.copysign(b(f), a(f)), ptype)


# -- conversions -----------------------------------------------------------------

def _int_range(ptype):
    if ptype.is_signed:
        return -(1 << (ptype.bits - 1)), (1 << (ptype.bits - 1)) - 1
    return 0, (1 << ptype.bits) - 1


def compile_cvt(ins):
    types = instruction_types(ins)
    if len(types) != 2:
        raise _unsupported(ins, "cvt needs a destination and a source type")
    dest, src = types
    if dest.name in ("f16x2", "bf16x2") and src.name == "f32" and len(ins.operands) == 3:
        return _compile_cvt_pack(ins, dest)
    if dest.name.endswith("x2") or src.name.endswith("x2"):
        raise _unsupported(ins, "packed conversions other than f16x2/bf16x2 from two f32")
    read_type = TYPES["b16"] if src.name == "bf16" else src
    a = reader(ins.operands[1], read_type, ins.line)
    sat, ftz = ins.has("sat"), ins.has("ftz")
    int_mode = next((m[:2] for m in ins.modifiers if m in ("rni", "rzi", "rmi", "rpi")), None)
    float_mode = _rounding_mode(ins)

    def source(f):
        x = np.asarray(a(f))
        if src.name == "bf16":
            x = rounding.from_bf16_bits(x)
        if ftz and src.name == "f32":
            x = rounding.flush_subnormal(x)
        return x

    if not dest.is_float:
        lo, hi = _int_range(dest)
        if src.is_float:
            rounder = {"rn": np.rint, "rz": np.trunc, "rm": np.floor, "rp": np.ceil}[
                int_mode or "rz"]

            def float_to_int(f):
                x = rounder(np.asarray(source(f), np.float64))
                x = np.where(np.isnan(x), 0, np.clip(x, lo, hi))
                if dest.bits == 64:
                    # Past 2**63 an f64 is not exact as int64: clip in Python ints.
                    big = x >= 2.0 ** 63
                    out = np.where(big, 0, x).astype(np.int64 if dest.is_signed else
                                                     np.uint64)
                    if not dest.is_signed and np.any(big):
                        out = np.where(big, np.asarray(x).astype(np.uint64), out)
                    return np.where(x >= hi, dest.value_dtype.type(hi), out)
                return x.astype(np.int64).astype(dest.value_dtype)
            return _plain(ins, float_to_int, dest)

        def int_to_int(f):
            x = source(f)
            if sat:
                wide = np.asarray(x).astype(np.int64 if src.is_signed else np.uint64)
                if src.is_signed:
                    wide = np.clip(wide, max(lo, -(1 << 63)), min(hi, (1 << 63) - 1))
                else:
                    wide = np.minimum(wide, np.uint64(min(hi, (1 << 64) - 1)))
                return wide.astype(dest.value_dtype)
            if src.is_signed:
                return np.asarray(x).astype(np.int64).astype(unsigned_dtype(64)).astype(
                    unsigned_dtype(dest.bits)).view(dest.value_dtype)
            return np.asarray(x).astype(unsigned_dtype(dest.bits)).view(dest.value_dtype)
        return _plain(ins, int_to_int, dest)

    out_type = TYPES["b16"] if dest.name == "bf16" else dest

    def to_float(f):
        x = source(f)
        if src.is_float and int_mode is not None:
            rounder = {"rn": np.rint, "rz": np.trunc, "rm": np.floor, "rp": np.ceil}[int_mode]
            x = rounder(x)
        exact = np.asarray(x).astype(np.longdouble)
        if dest.name == "bf16":
            out = rounding.to_bf16_bits(exact, float_mode)
        else:
            out = rounding.round_exact(exact, dest.value_dtype, float_mode)
            if ftz and dest.name == "f32":
                out = rounding.flush_subnormal(out)
        if sat:
            if dest.name == "bf16":
                value = rounding.from_bf16_bits(out)
                out = rounding.to_bf16_bits(_saturate_float(value))
            else:
                out = _saturate_float(out)
        return out
    return _plain(ins, to_float, out_type)


def _compile_cvt_pack(ins, dest):
    """cvt.rn.f16x2.f32 d, a, b: a rounded into d's upper half, b the lower."""
    high, low = (reader(o, TYPES["f32"], ins.line) for o in ins.operands[1:3])
    half = TYPES[dest.name[:-2]]
    mode = _rounding_mode(ins)
    sat = ins.has("sat")

    def pack(f):
        halves = []
        for read in (high, low):
            value = np.asarray(read(f), np.float32)
            if sat:
                value = _saturate_float(value)
            halves.append(np.asarray(_narrow_half(half, value.astype(np.longdouble), mode))
                          .view(np.uint16).astype(np.uint32))
        return (halves[0] << np.uint32(16)) | halves[1]
    return _plain(ins, pack, TYPES["b32"])


def compile_special_float(ins):
    """sqrt, rsqrt, rcp, ex2, lg2, sin, cos, tanh: computed in f64 and
    rounded once, at least as accurate as the hardware's approximations."""
    ptype = _one_type(ins)
    if ptype.bits == 16:
        raise _unsupported(ins, "half-precision special functions")
    (a,) = _sources(ins, ptype)[:1]
    mode = _rounding_mode(ins)
    ftz = ins.has("ftz")
    fns = {"sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x), "rcp": lambda x: 1.0 / x,
           "ex2": np.exp2, "lg2": np.log2, "sin": np.sin, "cos": np.cos, "tanh": np.tanh}
    fn = fns[ins.opcode]
    directed = mode != "rn" and not ins.has("approx")
    if directed and ptype.bits == 64:
        raise _unsupported(ins, "directed rounding of f64 arithmetic")
    if directed and ins.opcode not in ("sqrt", "rcp"):
        raise _unsupported(ins, "rounding mode on %s" % ins.opcode)

    def compute(f):
        x = np.asarray(a(f), ptype.value_dtype)
        if ftz:
            x = rounding.flush_subnormal(x)
        if directed and ins.opcode == "sqrt":
            r = rounding.f32_sqrt(x, mode)
        elif directed:
            r = rounding.f32_div(np.ones_like(x), x, mode)
        else:
            r = fn(x.astype(np.float64)).astype(ptype.value_dtype)
        return rounding.flush_subnormal(r) if ftz else r
    return _plain(ins, compute, ptype)


# -- moves ----------------------------------------------------------------------

def compile_mov(ins):
    ptype = _one_type(ins)
    dest, src = ins.operands[0], ins.operands[1]
    if isinstance(src, Vector):  # pack: mov.b64 %rd, {%r1, %r2}
        part_bits = ptype.bits // len(src.elements)
        parts = [reader(e, TYPES["b%d" % part_bits], ins.line) for e in src.elements]
        raw = unsigned_dtype(ptype.bits)

        def pack(f):
            out = np.zeros(f.lanes, dtype=raw)
            for k, part in enumerate(parts):
                out = out | (np.asarray(part(f)).astype(raw) << raw.type(k * part_bits))
            return out
        return _plain(ins, pack, TYPES["b%d" % ptype.bits])
    if isinstance(dest, Vector):  # unpack: mov.b64 {%r1, %r2}, %rd
        part_bits = ptype.bits // len(dest.elements)
        whole = reader(src, TYPES["b%d" % ptype.bits], ins.line)
        part_type = TYPES["b%d" % part_bits]
        writes = [writer(e, part_type, ins.line) for e in dest.elements]
        raw = unsigned_dtype(ptype.bits)
        part_raw = unsigned_dtype(part_bits)
        mask_bits = raw.type((1 << part_bits) - 1)

        def unpack(f, mask, full):
            value = np.asarray(whole(f)).astype(raw)
            for k, write in enumerate(writes):
                write(f, ((value >> raw.type(k * part_bits)) & mask_bits).astype(part_raw),
                      mask, full)
        return Op(PLAIN, unpack)
    return _plain(ins, reader(src, ptype, ins.line), ptype)


def compile_cvta(ins):
    ptype = _one_type(ins)
    a = reader(ins.operands[1], ptype, ins.line)
    space = next((m for m in ins.modifiers if m in ("global", "shared", "local", "const",
                                                    "param")), None)
    if space == "param":
        raise _unsupported(ins, "generic addresses of kernel parameters")
    if space == "global":
        return _plain(ins, a, ptype)
    base = ptype.value_dtype.type(memory_ops.WINDOWS[space])
    if ins.has("to"):
        return _plain(ins, lambda f: np.asarray(a(f)) - base, ptype)
    return _plain(ins, lambda f: np.asarray(a(f)) + base, ptype)


def compile_nop(ins):
    return Op(PLAIN, lambda f, mask, full: None)


def compile_trap(ins):
    def trap(f, mask, full):
        raise faults.KernelFault(faults.LAUNCH_FAILED,
                                 "%s: the kernel executed trap" % f.where(ins))
    return Op(PLAIN, trap)


def compile_barrier(ins):
    if ins.has("red"):
        return _compile_barrier_reduction(ins)
    if ins.opcode == "bar" and not (ins.has("sync") or ins.has("warp") or
                                    len(ins.modifiers) == 0):
        raise _unsupported(ins, "barrier forms other than bar.sync / barrier.sync")
    # Lanes run lowest program counter first, so when one reaches a barrier
    # every lane that will reach it is there: it holds with nothing to do.
    return Op(PLAIN, lambda f, mask, full: None)


def _compile_barrier_reduction(ins):
    """bar.red.popc/and/or (__syncthreads_count/_and/_or): a barrier whose
    result is the reduction of a predicate over the block's threads."""
    operation = next((m for m in ins.modifiers if m in ("popc", "and", "or")), None)
    if operation is None:
        raise _unsupported(ins, "barrier reduction without popc, and or or")
    predicate = reader(ins.operands[-1], TYPES["pred"], ins.line)
    out_type = TYPES["u32"] if operation == "popc" else TYPES["pred"]
    write = writer(ins.operands[0], out_type, ins.line)

    def reduce(f, mask, full):
        block = f.block
        votes = np.broadcast_to(np.asarray(predicate(f), dtype=bool), (f.lanes,)) & mask
        blocks = int(block.block_of_lane[-1]) + 1
        yes = np.bincount(block.block_of_lane, weights=votes, minlength=blocks)
        present = np.bincount(block.block_of_lane, weights=mask, minlength=blocks)
        if operation == "popc":
            result = yes.astype(np.uint32)
        elif operation == "and":
            result = yes == present
        else:
            result = yes > 0
        write(f, result[block.block_of_lane], mask, full)
    return Op(PLAIN, reduce)


_COMPILERS = {
    "add": compile_add_sub, "sub": compile_add_sub, "addc": compile_add_sub,
    "subc": compile_add_sub,
    "mul": compile_mul, "mul24": compile_mul, "mad": compile_mad, "madc": compile_mad,
    "mad24": compile_mad, "fma": compile_fma, "div": compile_div, "rem": compile_rem,
    "min": compile_min_max, "max": compile_min_max, "abs": compile_unary_arith,
    "neg": compile_unary_arith, "and": compile_logic, "or": compile_logic,
    "xor": compile_logic, "not": compile_logic, "cnot": compile_logic, "lop3": compile_lop3,
    "shl": compile_shift, "shr": compile_shift, "popc": compile_bit_count,
    "clz": compile_bit_count, "brev": compile_bit_count, "bfe": compile_bfe,
    "bfi": compile_bfi, "bfind": compile_bfind, "shf": compile_shf, "prmt": compile_prmt,
    "setp": compile_setp, "set": compile_set,
    "selp": compile_selp, "slct": compile_slct, "testp": compile_testp,
    "copysign": compile_copysign, "cvt": compile_cvt, "cvta": compile_cvta,
    "mov": compile_mov, "sqrt": compile_special_float, "rsqrt": compile_special_float,
    "rcp": compile_special_float, "ex2": compile_special_float,
    "lg2": compile_special_float, "sin": compile_special_float,
    "cos": compile_special_float, "tanh": compile_special_float,
    "membar": compile_nop, "fence": compile_nop, "nanosleep": compile_nop,
    "prefetch": compile_nop, "prefetchu": compile_nop, "pmevent": compile_nop,
    "trap": compile_trap, "brkpt": compile_trap,
    "bar": compile_barrier, "barrier": compile_barrier,
    "cp": lambda ins: (mbarrier_ops.compile_cp_async_arrive(ins) if ins.has("mbarrier")
                       else memory_ops.compile_cp_async(ins)),
    "mbarrier": mbarrier_ops.compile_mbarrier,
    "ld": memory_ops.compile_ld, "ldu": memory_ops.compile_ld, "st": memory_ops.compile_st,
    "atom": memory_ops.compile_atom, "red": memory_ops.compile_atom,
    "shfl": warp_ops.compile_shfl, "vote": warp_ops.compile_vote,
    "match": warp_ops.compile_match, "activemask": warp_ops.compile_activemask,
    "redux": warp_ops.compile_redux,
}


def compile_instruction(ins):
    """The :class:`Op` of one instruction; PtxError if it cannot run here."""
    if ins.opcode == "bra" or ins.opcode == "brx":
        if ins.opcode == "brx":
            raise _unsupported(ins, "indirect branches")
        return Op(BRANCH, target=ins.operands[0].target, instruction=ins)
    if ins.opcode == "call":
        return Op(CALL, instruction=ins)
    if ins.opcode == "ret":
        return Op(RET, instruction=ins)
    if ins.opcode == "exit":
        return Op(EXIT, instruction=ins)
    compiler = _COMPILERS.get(ins.opcode)
    if compiler is None:
        raise PtxError("line %d: instruction %s is not supported by the simulated GPU (%s)"
                       % (ins.line, ins.opcode, ins.text))
    try:
        op = compiler(ins)
    except PtxError:
        raise
    except (IndexError, KeyError, AttributeError, TypeError, ValueError) as exc:
        raise PtxError("line %d: %s cannot be run by the simulated GPU (%s: %s)"
                       % (ins.line, ins.text, type(exc).__name__, exc)) from None
    op.instruction = ins
    if ins.guard is not None:
        op.run = _guarded(op.run, ins.guard.index, ins.guard_negated)
    return op


def _guarded(run, guard_index, negated):
    def guarded(f, mask, full):
        predicate = f.regs[guard_index]
        run(f, mask & (~predicate if negated else predicate), False)
    return guarded


__all__ = ["BRANCH", "CALL", "EXIT", "PLAIN", "RET", "compile_instruction"]
