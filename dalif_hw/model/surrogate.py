"""Surrogate gradients for the firing step ``S = (V - theta >= 0)``.

The forward pass is the exact Heaviside step (1 at 0, as the hardware compares with >=; with
``strict``, 0 at 0: ``V > theta`` as NIR and snnTorch fire).
The backward pass uses the derivative of a smooth stand-in. Every surrogate here has the
same scale parameter ``width``: its derivative peaks at ``1 / width`` at 0 and integrates to 1,
so ``width`` is how far from the threshold a membrane still gets gradient.

- ``arctan``: ``(1/w) / (1 + (pi x / w)^2)`` (SpikingJelly's ``ATan`` with alpha = 2/w)
- ``sigmoid``: ``k sig(k x)(1 - sig(k x))`` with ``k = 4/w`` (``Sigmoid`` with alpha = 4/w)
- ``rectangular``: ``1/w`` where ``|x| < w/2``, else 0
"""

from __future__ import annotations

import math

import torch

__all__ = ["SURROGATES", "spike"]


def _arctan(x, width):
    return (1.0 / width) / (1.0 + (math.pi * x / width) ** 2)


def _sigmoid(x, width):
    k = 4.0 / width
    sig = torch.sigmoid(k * x)
    return k * sig * (1.0 - sig)


def _rectangular(x, width):
    return (x.abs() < width / 2).to(x.dtype) / width


#: Surrogate derivatives by name.
SURROGATES = {"arctan": _arctan, "sigmoid": _sigmoid, "rectangular": _rectangular}


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, derivative, width, strict):
        ctx.save_for_backward(x)
        ctx.derivative = derivative
        ctx.width = width
        return ((x > 0) if strict else (x >= 0)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.derivative(x, ctx.width), None, None, None


def spike(x: torch.Tensor, surrogate: str = "arctan", width: float = 1.0,
          strict: bool = False) -> torch.Tensor:
    """Heaviside step of ``x`` (1 where ``x >= 0``; with ``strict``, where ``x > 0``) with a
    surrogate gradient.

    Raises
    ------
    ValueError
        If ``surrogate`` is unknown or ``width`` is not positive.
    """
    if surrogate not in SURROGATES:
        raise ValueError(f"Surrogate must be one of {', '.join(SURROGATES)}, not {surrogate!r}")
    if not width > 0:
        raise ValueError(f"Surrogate width must be positive, not {width!r}")
    return _Spike.apply(x, SURROGATES[surrogate], float(width), bool(strict))
