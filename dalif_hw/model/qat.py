"""Quantization-aware training: the forward pass computes what the integer twin computes.

With ``QAT(WB, DB, VB)`` a layer's weights and bias become integers in units of the layer
scale ``s = max|w| / (2**(WB-1) - 1)`` (as packing makes them), decays become multiples of
``2**-DB``, thresholds integers; the neuron applies SPEC 2's rounding ``rnd`` and saturation
``sat`` in float64 (exact for these integers). Rounding is a straight-through estimator: the
forward pass rounds, the backward pass sees the identity. Packing such a model gives the
integers the forward pass used, so the float model and the integer twin agree (up to ties
of float32 versus float64 scales, a measure-zero event).
"""

from __future__ import annotations

import dataclasses

import torch

from ..core.config import ArrayConfig

__all__ = ["QAT", "round_ste", "floor_ste", "layer_scale_t", "quantized", "readout_logits"]


@dataclasses.dataclass(frozen=True)
class QAT:
    """The widths training rounds to (those packing will use)."""

    WB: int = 8
    DB: int = 8
    VB: int = 16

    def __post_init__(self):
        ArrayConfig(1, 1, 1, self.WB, self.DB, self.VB)  # the same checks as the hardware's

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half to even (as numpy and packing do) forward, identity backward."""
    return x + (torch.round(x) - x).detach()


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.floor(x) - x).detach()


def layer_scale_t(weight: torch.Tensor, WB: int) -> torch.Tensor:
    """The packing scale of ``weight`` (float64, no gradient)."""
    peak = weight.detach().double().abs().max()
    return torch.where(peak > 0, peak / ((1 << (WB - 1)) - 1), torch.ones_like(peak))


def quantized(value: torch.Tensor | None, scale: torch.Tensor, bits: int | None = None):
    """``round(value / scale)`` in float64 with a straight-through gradient, clamped to
    ``bits`` signed bits where given."""
    if value is None:
        return None
    q = round_ste(value.double() / scale)
    if bits is not None:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        q = q + (q.clamp(lo, hi) - q).detach()
    return q


def rnd_sat(beta_h: torch.Tensor, alpha_i: torch.Tensor, qat: QAT, minus=0.0) -> torch.Tensor:
    """``sat(rnd(beta H) + rnd(alpha I) - minus)`` on integer-valued float64 tensors (decays
    already scaled by 2**DB; ``minus`` is the subtract reset's theta S[t-1])."""
    half, one = float(1 << (qat.DB - 1)), float(1 << qat.DB)
    v = floor_ste((beta_h + half) / one) + floor_ste((alpha_i + half) / one) - minus
    lo, hi = -(1 << (qat.VB - 1)), (1 << (qat.VB - 1)) - 1
    return v + (v.clamp(lo, hi) - v).detach()


def readout_logits(linear: torch.nn.Linear, x: torch.Tensor, qat: QAT | None) -> torch.Tensor:
    """The readout's logits [batch, classes], the mean over time of ``linear`` (with
    ``qat``: of its weights and bias rounded to the readout's scale, as packing does; the
    hardware sums instead of averaging, which has the same argmax)."""
    if qat is None:
        return linear(x).mean(0)
    s = layer_scale_t(linear.weight, qat.WB)
    w = quantized(linear.weight, s, qat.WB)
    b = quantized(linear.bias, s, qat.VB)
    logits = x.double() @ w.T + (0 if b is None else b)
    return (logits * s).mean(0).float()
