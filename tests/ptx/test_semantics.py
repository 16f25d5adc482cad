"""Property tests: integer and float instructions against reference arithmetic
(Python integers, exact fractions), every rounding mode included."""

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ptx.harness import run_instruction

SETTINGS = settings(max_examples=40, deadline=None)
MODES = ("rn", "rz", "rm", "rp")


def ints(bits, signed):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return st.integers(lo, hi)


def lists_of(strategy, size=32):
    return st.lists(strategy, min_size=size, max_size=size)


def wrap(value, bits, signed):
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def trunc_div(a, b):
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


INT_TYPES = [(bits, signed) for bits in (32, 64) for signed in (False, True)]

INT_BINARY = {
    "add": lambda a, b, bits: a + b,
    "sub": lambda a, b, bits: a - b,
    "mul.lo": lambda a, b, bits: a * b,
    "mul.hi": lambda a, b, bits: (a * b) >> bits,
    "min": lambda a, b, bits: min(a, b),
    "max": lambda a, b, bits: max(a, b),
}


def _type_name(bits, signed):
    return "%s%d" % ("s" if signed else "u", bits)


@SETTINGS
@given(st.data())
def test_integer_binary_operations(data):
    bits, signed = data.draw(st.sampled_from(INT_TYPES))
    name = data.draw(st.sampled_from(sorted(INT_BINARY)))
    a = data.draw(lists_of(ints(bits, signed)))
    b = data.draw(lists_of(ints(bits, signed)))
    t = _type_name(bits, signed)
    got = run_instruction("%s.%s %%d, %%a, %%b" % (name, t), t, [t, t], [a, b])
    want = [wrap(INT_BINARY[name](x, y, bits), bits, signed) for x, y in zip(a, b, strict=True)]
    assert [int(v) for v in got] == want, (name, t)


@SETTINGS
@given(st.data())
def test_division_and_remainder_truncate_toward_zero(data):
    bits, signed = data.draw(st.sampled_from(INT_TYPES))
    t = _type_name(bits, signed)
    a = data.draw(lists_of(ints(bits, signed)))
    b = data.draw(lists_of(ints(bits, signed).filter(lambda v: v != 0)))
    if signed:  # the one overflowing quotient is undefined in PTX
        b = [(2 if x == -(1 << (bits - 1)) and y == -1 else y) for x, y in zip(a, b,
                                                                            strict=True)]
    quotient = run_instruction("div.%s %%d, %%a, %%b" % t, t, [t, t], [a, b])
    remainder = run_instruction("rem.%s %%d, %%a, %%b" % t, t, [t, t], [a, b])
    for x, y, q, r in zip(a, b, quotient, remainder, strict=True):
        assert int(q) == wrap(trunc_div(x, y), bits, signed)
        assert int(r) == wrap(x - trunc_div(x, y) * y, bits, signed)


@SETTINGS
@given(lists_of(ints(32, True)), lists_of(ints(32, True)))
def test_mul_wide_and_mad_wide(a, b):
    got = run_instruction("mul.wide.s32 %d, %a, %b", "s64", ["s32", "s32"], [a, b])
    assert [int(v) for v in got] == [x * y for x, y in zip(a, b, strict=True)]
    got = run_instruction("mad.lo.s32 %d, %a, %b, %a", "s32", ["s32", "s32"], [a, b])
    assert [int(v) for v in got] == [wrap(x * y + x, 32, True) for x, y in zip(a, b,
                                                                              strict=True)]


@SETTINGS
@given(st.data())
def test_shifts_clamp_the_shift_amount(data):
    bits, signed = data.draw(st.sampled_from(INT_TYPES))
    t = _type_name(bits, signed)
    a = data.draw(lists_of(ints(bits, signed)))
    amount = data.draw(lists_of(st.integers(0, 80)))
    left = run_instruction("shl.b%d %%d, %%a, %%b" % bits, "b%d" % bits,
                           ["b%d" % bits, "u32"], [[wrap(x, bits, False) for x in a], amount])
    right = run_instruction("shr.%s %%d, %%a, %%b" % t, t, [t, "u32"], [a, amount])
    for x, n, lft, rgt in zip(a, amount, left, right, strict=True):
        assert int(lft) == wrap(x << n, bits, False) if n < bits else int(lft) == 0
        assert int(rgt) == (x >> min(n, bits - 1 if signed else bits)
                            if signed or n < bits else 0)


@SETTINGS
@given(lists_of(ints(32, False)), lists_of(st.integers(0, 40)), lists_of(st.integers(0, 40)))
def test_bit_operations(a, position, length):
    popc = run_instruction("popc.b32 %d, %a", "u32", ["b32"], [a])
    clz = run_instruction("clz.b32 %d, %a", "u32", ["b32"], [a])
    brev = run_instruction("brev.b32 %d, %a", "b32", ["b32"], [a])
    bfe = run_instruction("bfe.u32 %d, %a, %b, %c", "u32", ["u32", "u32", "u32"],
                          [a, position, length])
    for x, p, n, got_popc, got_clz, got_brev, got_bfe in zip(a, position, length, popc, clz,
                                                           brev, bfe, strict=True):
        assert int(got_popc) == bin(x).count("1")
        assert int(got_clz) == 32 - x.bit_length()
        assert int(got_brev) == int(f"{x:032b}"[::-1], 2)
        assert int(got_bfe) == (x >> p) & ((1 << n) - 1) if p < 32 else int(got_bfe) == 0


def _f32_candidates(q):
    """f32 values bracketing the exact rational ``q``."""
    near = np.float32(float(q)) if abs(q) < 2 ** 128 else np.float32(math.copysign(np.inf,
                                                                                   float(q)))
    out = {near}
    for _ in range(2):
        out |= {np.nextafter(v, np.float32(np.inf)) for v in out}
        out |= {np.nextafter(v, np.float32(-np.inf)) for v in out}
    return sorted(v for v in out if np.isfinite(v))


def round_to_f32(q, mode):
    """The f32 value of exact ``q`` in rounding ``mode`` (finite results only)."""
    candidates = _f32_candidates(q)
    below = max(v for v in candidates if Fraction(float(v)) <= q)
    above = min(v for v in candidates if Fraction(float(v)) >= q)
    if below == above or mode == "rm":
        return below
    if mode == "rp":
        return above
    if mode == "rz":
        return below if q > 0 else above
    d_below, d_above = q - Fraction(float(below)), Fraction(float(above)) - q
    if d_below != d_above:
        return below if d_below < d_above else above
    return below if int(np.float32(below).view(np.uint32)) % 2 == 0 else above


MODERATE_F32 = st.one_of(
    st.just(0.0),
    st.floats(2.0 ** -33, 2.0 ** 33, width=32),
    st.floats(-(2.0 ** 33), -(2.0 ** -33), width=32))

EXACT = {
    "add": lambda a, b, c: a + b,
    "sub": lambda a, b, c: a - b,
    "mul": lambda a, b, c: a * b,
    "div": lambda a, b, c: a / b,
    "fma": lambda a, b, c: a * b + c,
}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_f32_arithmetic_in_every_rounding_mode(data):
    name = data.draw(st.sampled_from(sorted(EXACT)))
    mode = data.draw(st.sampled_from(MODES))
    a = data.draw(lists_of(MODERATE_F32, 16))
    b = data.draw(lists_of(MODERATE_F32.filter(lambda v: v != 0) if name == "div" else
                           MODERATE_F32, 16))
    c = data.draw(lists_of(MODERATE_F32, 16))
    if name == "fma":
        got = run_instruction("fma.%s.f32 %%d, %%a, %%b, %%c" % mode, "f32",
                              ["f32", "f32", "f32"], [a, b, c])
    else:
        got = run_instruction("%s.%s.f32 %%d, %%a, %%b" % (name, mode), "f32",
                              ["f32", "f32"], [a, b])
    for x, y, z, value in zip(a, b, c, got, strict=True):
        exact = EXACT[name](Fraction(float(np.float32(x))), Fraction(float(np.float32(y))),
                            Fraction(float(np.float32(z))))
        if exact == 0:
            assert value == 0
            continue
        assert value == round_to_f32(exact, mode), (name, mode, x, y, z, value)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_sqrt_in_every_rounding_mode(data):
    mode = data.draw(st.sampled_from(MODES))
    a = data.draw(lists_of(st.floats(2.0 ** -33, 2.0 ** 33, width=32), 16))
    got = run_instruction("sqrt.%s.f32 %%d, %%a" % mode, "f32", ["f32"], [a])
    for x, value in zip(a, got, strict=True):
        # Fraction has no sqrt: check that value is the right neighbour of it.
        q = Fraction(float(np.float32(x)))
        v = Fraction(float(value))
        up = Fraction(float(np.nextafter(value, np.float32(np.inf))))
        down = Fraction(float(np.nextafter(value, np.float32(-np.inf))))
        if mode in ("rz", "rm"):
            assert v * v <= q < up * up
        elif mode == "rp":
            assert down * down < q <= v * v
        else:
            assert ((v + down) / 2) ** 2 <= q <= ((v + up) / 2) ** 2


@SETTINGS
@given(st.data())
def test_float_to_int_conversions_round_and_saturate(data):
    mode = data.draw(st.sampled_from(("rni", "rzi", "rmi", "rpi")))
    values = st.floats(-(2.0 ** 40), 2.0 ** 40, width=32) | st.just(float("nan"))
    a = data.draw(lists_of(values, 16))
    got = run_instruction("cvt.%s.s32.f32 %%d, %%a" % mode, "s32", ["f32"], [a])
    rounders = {"rni": round, "rzi": math.trunc, "rmi": math.floor, "rpi": math.ceil}
    for x, value in zip(a, got, strict=True):
        if math.isnan(x):
            assert value == 0
            continue
        want = rounders[mode](float(np.float32(x)))
        assert int(value) == max(-(1 << 31), min((1 << 31) - 1, want))


@SETTINGS
@given(st.data())
def test_narrowing_float_conversions(data):
    mode = data.draw(st.sampled_from(MODES))
    a = data.draw(lists_of(st.floats(-1e30, 1e30), 16))
    got = run_instruction("cvt.%s.f32.f64 %%d, %%a" % mode, "f32", ["f64"], [a])
    for x, value in zip(a, got, strict=True):
        if x == 0:
            continue
        assert value == round_to_f32(Fraction(x), mode)
    halves = data.draw(lists_of(st.floats(-60000.0, 60000.0, width=32), 16))
    got = run_instruction("cvt.rn.f16.f32 %d, %a", "f16", ["f32"], [halves])
    np.testing.assert_array_equal(got, np.array(halves, dtype=np.float32).astype(np.float16))


@SETTINGS
@given(st.data())
def test_comparisons_ordered_and_unordered(data):
    values = st.floats(-10.0, 10.0, width=32) | st.just(float("nan"))
    a, b = data.draw(lists_of(values, 16)), data.draw(lists_of(values, 16))
    reference = {
        "eq": lambda x, y: x == y, "ne": lambda x, y: x != y and not math.isnan(x + y),
        "lt": lambda x, y: x < y, "ge": lambda x, y: x >= y,
        "equ": lambda x, y: x == y or math.isnan(x + y),
        "ltu": lambda x, y: x < y or math.isnan(x + y),
        "num": lambda x, y: not math.isnan(x + y), "nan": lambda x, y: math.isnan(x + y),
    }
    cmp = data.draw(st.sampled_from(sorted(reference)))
    got = run_instruction("setp.%s.f32 %%d, %%a, %%b" % cmp, "pred", ["f32", "f32"], [a, b])
    assert list(got) == [reference[cmp](x, y) for x, y in zip(a, b, strict=True)], cmp


@SETTINGS
@given(st.data())
def test_f64_fma_rounds_once(data):
    values = st.floats(-1e100, 1e100, allow_nan=False, allow_infinity=False)
    a, b = data.draw(lists_of(values, 16)), data.draw(lists_of(values, 16))
    # c near -a*b too: the cancellation argument reductions depend on.
    c = [(-x * y if data.draw(st.booleans()) else z) for x, y, z in
         zip(a, b, data.draw(lists_of(values, 16)), strict=True)]
    got = run_instruction("fma.rn.f64 %d, %a, %b, %c", "f64", ["f64", "f64", "f64"],
                          [a, b, c])
    for x, y, z, value in zip(a, b, c, got, strict=True):
        exact = Fraction(x) * Fraction(y) + Fraction(z)
        if not math.isfinite(x * y) or abs(exact) > 1e300:
            continue
        # Correctly rounded, or (in rare double-rounding ties) the neighbour.
        assert abs(Fraction(float(value)) - exact) <= abs(Fraction(
            float(np.nextafter(value, np.inf))) - Fraction(float(value))), (x, y, z)


@SETTINGS
@given(lists_of(st.floats(-60000.0, 60000.0, width=32), 16),
       lists_of(st.floats(-60000.0, 60000.0, width=32), 16))
def test_packing_two_floats_into_half2(high, low):
    got = run_instruction("cvt.rn.f16x2.f32 %d, %a, %b", "b32", ["f32", "f32"], [high, low])
    halves = np.array(got, dtype=np.uint32)
    np.testing.assert_array_equal((halves >> 16).astype(np.uint16),
                                  np.array(high, np.float32).astype(np.float16).view(np.uint16))
    np.testing.assert_array_equal((halves & 0xFFFF).astype(np.uint16),
                                  np.array(low, np.float32).astype(np.float16).view(np.uint16))


@SETTINGS
@given(lists_of(ints(32, False)), lists_of(ints(32, False)), lists_of(st.integers(0, 40)),
       lists_of(ints(32, True)))
def test_funnel_shifts_and_bfind(a, b, amount, signed):
    wrap = run_instruction("shf.l.wrap.b32 %d, %a, %b, %c", "b32", ["b32", "b32", "u32"],
                           [a, b, amount])
    clamp = run_instruction("shf.r.clamp.b32 %d, %a, %b, %c", "b32", ["b32", "b32", "u32"],
                            [a, b, amount])
    found = run_instruction("bfind.s32 %d, %a", "u32", ["s32"], [signed])
    for x, y, n, s, got_wrap, got_clamp, got_found in zip(a, b, amount, signed, wrap, clamp,
                                                          found, strict=True):
        pair = x | (y << 32)
        assert int(got_wrap) == ((pair << (n % 32)) >> 32) & 0xFFFFFFFF
        assert int(got_clamp) == (pair >> min(n, 32)) & 0xFFFFFFFF
        magnitude = ~s if s < 0 else s
        assert int(got_found) == (magnitude.bit_length() - 1 if magnitude else 0xFFFFFFFF)
