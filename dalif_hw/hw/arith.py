"""The DA-LIF saturation on Amaranth values, from the ranges of :mod:`dalif_hw.core.config`.

(The rounding ``config.rnd`` needs nothing of its own: its shift works on Amaranth values.)
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value

from ..core.config import signed_range

__all__ = ["sat", "sat_flags"]


def sat(x, VB: int):
    """``config.sat`` for a signed Amaranth value: clamp ``x`` to the signed ``VB``-bit range,
    deciding from its top bits (:func:`sat_flags`), no comparator."""
    lo, hi = signed_range(VB)
    over, under = sat_flags(x, VB)
    return Mux(over, hi, Mux(under, lo, x[:VB].as_signed())).as_signed()[:VB].as_signed()


def sat_flags(x, VB: int):
    """For a signed Amaranth value ``x``: ``(over, under)``, whether it lies above or below
    the signed ``VB``-bit range. From its top bits (in range: bits VB-1 up all equal), so
    that no comparator (a carry chain on an FPGA) is needed."""
    x = Value.cast(x)
    if not x.shape().signed:
        x = Cat(x, Const(0, 1)).as_signed()
    if len(x) <= VB:
        return Const(0, 1), Const(0, 1)
    top, sign = x[VB - 1:], x[-1]
    return ~sign & top.any(), sign & ~top.all()
