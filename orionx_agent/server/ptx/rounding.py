"""IEEE rounding to f16, bf16, f32 and f64 in PTX's four modes, on numpy arrays.

numpy rounds to nearest only. Each result here starts from numpy's nearest
value and is moved one step (``nextafter``) when the exact result lies on
the other side in a directed mode, or when a double rounding picked the
wrong neighbour of a tie. The exact result is known either as a longdouble
(x86's 64-bit mantissa holds every f32/f64 product and every int64) or as
an f64 value plus its exact error from an error-free sum.
"""

import math
from fractions import Fraction

import numpy as np

MODES = ("rn", "rz", "rm", "rp")
LD = np.longdouble


def _nudge(result, direction, mode):
    """Move ``result`` one step where the exact value lies in ``direction``
    (-1, 0, +1 relative to it) and ``mode`` asks for that side."""
    if mode == "rn":
        return result
    if mode == "rp":
        move = direction > 0
        toward = np.inf
    elif mode == "rm":
        move = direction < 0
        toward = -np.inf
    else:  # rz: toward zero when the exact value is nearer zero than the result
        move = ((direction < 0) & (result > 0)) | ((direction > 0) & (result < 0))
        toward = 0.0
    if not np.any(move):
        return result
    stepped = np.nextafter(result, result.dtype.type(toward))
    return np.where(move, stepped, result)


def _nearest_fix(result, exact_ld):
    """Round-to-nearest-even from a candidate that may be one step off."""
    exact_ld = np.asarray(exact_ld, dtype=LD)
    other = np.nextafter(result, np.where(exact_ld > result.astype(LD), np.inf,
                                          -np.inf).astype(result.dtype))
    d_result = np.abs(exact_ld - result.astype(LD))
    d_other = np.abs(exact_ld - other.astype(LD))
    bits = result.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[result.dtype.itemsize])
    tie_to_other = (d_other == d_result) & ((bits & 1) == 1)
    better = (d_other < d_result) | tie_to_other
    better &= np.isfinite(other) | np.isinf(exact_ld)
    return np.where(better & ~np.isnan(exact_ld), other, result)


def round_exact(exact_ld, dtype, mode):
    """``exact_ld`` (a longdouble array holding an exact value) to ``dtype``."""
    exact_ld = np.asarray(exact_ld, dtype=LD)
    with np.errstate(all="ignore"):
        result = exact_ld.astype(dtype)
        if dtype == np.float16:
            result = _nearest_fix(result, exact_ld)
        direction = np.sign(exact_ld - result.astype(LD))
        direction = np.where(np.isinf(result) & np.isfinite(exact_ld), -np.sign(result),
                             direction)
    return _nudge(result, direction, mode)


def round_f32_sum(s, e, mode):
    """An f32 result whose exact value is ``s + e`` (f64, ``s`` the nearest
    f64, ``e`` its exact error)."""
    with np.errstate(all="ignore"):
        result = s.astype(np.float32)
        back = result.astype(np.float64)
        gap = s - back
        direction = np.where(gap != 0, np.sign(gap), np.sign(e))
        direction = np.where(np.isinf(result) & np.isfinite(s), -np.sign(result), direction)
        if mode == "rn" and np.any(e != 0):
            # s exactly halfway between two f32 values: ties-to-even on s may
            # have picked the wrong one; the sign of the error decides.
            other = np.nextafter(result, np.where(gap > 0, np.inf, -np.inf)
                                 .astype(np.float32))
            halfway = (gap != 0) & (e != 0) & \
                (np.abs(other.astype(np.float64) - s) == np.abs(gap))
            upper, lower = np.maximum(result, other), np.minimum(result, other)
            result = np.where(halfway, np.where(e > 0, upper, lower), result)
    return _nudge(result, direction, mode)


def two_sum(a, b):
    """(s, e): s = fl(a + b) and e the exact error, for float64 arrays."""
    with np.errstate(all="ignore"):
        s = a + b
        bb = s - a
        e = (a - (s - bb)) + (b - bb)
        e = np.where(np.isfinite(s), e, 0.0)
    return s, e


def f32_add(a, b, mode):
    return round_f32_sum(*two_sum(a.astype(np.float64), b.astype(np.float64)), mode)


def f32_mul(a, b, mode):
    product = a.astype(np.float64) * b.astype(np.float64)  # exact: 48-bit significands
    return round_f32_sum(product, np.zeros_like(product), mode)


def f32_fma(a, b, c, mode):
    product = a.astype(np.float64) * b.astype(np.float64)
    return round_f32_sum(*two_sum(product, np.asarray(c, dtype=np.float64)), mode)


def _split(x):
    """Veltkamp: x = high + low, each half of the significand."""
    scaled = x * 134217729.0  # 2**27 + 1
    high = scaled - (scaled - x)
    return high, x - high


def f64_fma(a, b, c):
    """a * b + c for f64 arrays, rounded once: Dekker's exact product and a
    compensated sum, so the cancellations argument reductions rely on come
    out exact. Where the product's low half would underflow or overflow,
    the lane is computed with exact fractions."""
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                  np.asarray(c, np.float64))
    with np.errstate(all="ignore"):
        product = a * b
        a_high, a_low = _split(a)
        b_high, b_low = _split(b)
        product_low = ((a_high * b_high - product) + a_high * b_low + a_low * b_high) + \
            a_low * b_low
        total, error = two_sum(product, c)
        result = total + (product_low + error)
        finite_inputs = np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
        result = np.where(finite_inputs, result, product + c)
        exact_needed = finite_inputs & (product != 0) & (
            ~np.isfinite(result) | ~np.isfinite(product_low) |
            (np.abs(product) < 2.0 ** -960) | (np.abs(product) > 2.0 ** 995))
    if np.any(exact_needed):
        result = result.copy()
        for i in np.flatnonzero(exact_needed):
            exact = Fraction(float(a.flat[i])) * Fraction(float(b.flat[i])) + \
                Fraction(float(c.flat[i]))
            try:
                result.flat[i] = float(exact)  # int / int: correctly rounded
            except OverflowError:
                result.flat[i] = math.copysign(math.inf, exact)
    return result


def f32_div(a, b, mode):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(all="ignore"):
        result = (a64 / b64).astype(np.float32)  # f64 then f32: innocuous double rounding
        # Sign of (exact - result) from the exact residual a - result * b.
        direction = np.sign(a64 - result.astype(np.float64) * b64) * np.sign(b64)
        direction = np.where(np.isinf(result) & np.isfinite(a64 / b64), -np.sign(result),
                             direction)
    return _nudge(result, np.nan_to_num(direction), mode)


def f32_sqrt(a, mode):
    a64 = a.astype(np.float64)
    with np.errstate(all="ignore"):
        result = np.sqrt(a64).astype(np.float32)
        direction = np.sign(a64 - result.astype(np.float64) ** 2)
    return _nudge(result, np.nan_to_num(direction), mode)


def to_bf16_bits(exact, mode="rn"):
    """uint16 bf16 bits of ``exact`` (any float array), rounded in ``mode``."""
    exact_ld = np.asarray(exact, dtype=LD)
    with np.errstate(all="ignore"):
        f32 = round_exact(exact_ld, np.float32, "rz")  # truncation keeps the sign of the gap
        bits = f32.view(np.uint32)
        low = (bits >> 16).astype(np.uint16)
        high = np.where((low & 0x7F80) == 0x7F80, low, low + 1).astype(np.uint16)
        low_v = (low.astype(np.uint32) << 16).view(np.float32).astype(LD)
        high_v = (high.astype(np.uint32) << 16).view(np.float32).astype(LD)
        magnitude = np.abs(exact_ld)
        d_low = magnitude - np.abs(low_v)
        d_high = np.abs(high_v) - magnitude
        negative = exact_ld < 0
        if mode == "rn":
            up = (d_high < d_low) | ((d_high == d_low) & ((low & 1) == 1))
        elif mode == "rz":
            up = np.zeros(np.shape(low), dtype=bool)
        elif mode == "rp":
            up = (d_low > 0) & ~negative
        else:
            up = (d_low > 0) & negative
        out = np.where(up & (d_low > 0), high, low).astype(np.uint16)
        out = np.where(np.isnan(exact_ld), np.uint16(0x7FFF), out)
    return out


def from_bf16_bits(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def flush_subnormal(x):
    """.ftz: f32 subnormals become zero of the same sign."""
    tiny = np.abs(x) < np.float32(1.1754944e-38)
    if not np.any(tiny & (x != 0)):
        return x
    return np.where(tiny, np.copysign(np.float32(0), x), x)
