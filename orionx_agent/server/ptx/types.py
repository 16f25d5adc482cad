"""PTX's fundamental types: their width, their kind and the numpy dtype of a value.

Registers hold raw bits (an unsigned array of the register's width, or bool
for predicates); an instruction's type says how to read those bits, which
is a numpy ``view`` when the widths agree.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class PtxType:
    name: str        # "u32", "f16", "pred", ...
    bits: int
    kind: str        # "u" unsigned, "s" signed, "b" untyped bits, "f" float, "pred"
    value_dtype: np.dtype  # how the bits are read for arithmetic

    @property
    def bytes(self):
        return max(1, self.bits // 8)

    @property
    def raw_dtype(self):
        return RAW_DTYPES[self.bits]

    @property
    def is_float(self):
        return self.kind == "f"

    @property
    def is_signed(self):
        return self.kind == "s"


RAW_DTYPES = {1: np.dtype(bool), 8: np.dtype(np.uint8), 16: np.dtype(np.uint16),
              32: np.dtype(np.uint32), 64: np.dtype(np.uint64)}

_SIGNED = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}


def _build():
    table = {"pred": PtxType("pred", 1, "pred", np.dtype(bool))}
    for bits in (8, 16, 32, 64):
        table["u%d" % bits] = PtxType("u%d" % bits, bits, "u", RAW_DTYPES[bits])
        table["b%d" % bits] = PtxType("b%d" % bits, bits, "b", RAW_DTYPES[bits])
        table["s%d" % bits] = PtxType("s%d" % bits, bits, "s", np.dtype(_SIGNED[bits]))
    table["f16"] = PtxType("f16", 16, "f", np.dtype(np.float16))
    # bf16 has no numpy dtype: its bits are read as uint16 and widened by hand.
    table["bf16"] = PtxType("bf16", 16, "f", np.dtype(np.uint16))
    table["f32"] = PtxType("f32", 32, "f", np.dtype(np.float32))
    table["f64"] = PtxType("f64", 64, "f", np.dtype(np.float64))
    # Packed pairs: one 32-bit register holding two halves.
    table["f16x2"] = PtxType("f16x2", 32, "f", np.dtype(np.float16))
    table["bf16x2"] = PtxType("bf16x2", 32, "f", np.dtype(np.uint16))
    table["b128"] = PtxType("b128", 128, "b", np.dtype(np.uint64))
    return table


TYPES = _build()


def ptx_type(name):
    """The PtxType called ``name`` (without its dot), or None."""
    return TYPES.get(name)


def signed_dtype(bits):
    return np.dtype(_SIGNED[bits])


def unsigned_dtype(bits):
    return RAW_DTYPES[bits]
