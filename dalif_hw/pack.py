"""Float to integer: a trained layer becomes the integer parameters of a neuron array.

One scale ``s`` per layer, ``s = max|w| / (2**(WB-1) - 1)``; the membrane then lives in units
of ``s``::

    w_int = round(w / s)      bias_int = round(b / s)      theta_int = round(theta / s)
    alpha_int = clamp(round(alpha * 2**DB), 0, 2**DB)      (likewise beta)

``round`` is numpy's (halves to even).
"""

from __future__ import annotations

import numpy as np
import torch

from .config import DEFAULT_DB, DEFAULT_VB, DEFAULT_WB, ArrayConfig, ConfigError
from .model import DALIFLinear
from .params import IntParams

__all__ = ["layer_scale", "quantize", "quantize_linear"]


def layer_scale(weight: np.ndarray, WB: int) -> float:
    """The scale ``max|w| / (2**(WB-1) - 1)`` of a layer (1.0 for an all-zero layer).

    With WB = 1 the only positive weight is 0; such a layer cannot carry weights.
    """
    peak = float(np.max(np.abs(weight))) if weight.size else 0.0
    if peak == 0.0:
        return 1.0
    if WB < 2:
        raise ConfigError(f"WB={WB} has no positive weight to scale {peak:g} to; use WB >= 2")
    return peak / ((1 << (WB - 1)) - 1)


def quantize_decay(decay: np.ndarray, DB: int) -> np.ndarray:
    """``clamp(round(decay * 2**DB), 0, 2**DB)`` as int64."""
    return np.clip(np.round(np.asarray(decay, np.float64) * (1 << DB)), 0, 1 << DB
                   ).astype(np.int64)


def quantize(weight, alpha, beta, threshold, bias=None, *, reset: str = "hard",
             WB: int = DEFAULT_WB, DB: int = DEFAULT_DB, VB: int = DEFAULT_VB,
             scale: float | None = None) -> tuple[IntParams, float]:
    """Convert float parameters of one layer to :class:`IntParams`.

    Parameters
    ----------
    weight : [N, M]
    alpha, beta : [N], decays in [0, 1]
    threshold : scalar or [N]
    bias : [N] or None
    reset, WB, DB, VB : as in :class:`IntParams`
    scale : float, optional
        The layer scale; by default :func:`layer_scale`.

    Returns
    -------
    (IntParams, scale)

    Raises
    ------
    ConfigError
        If a converted value does not fit its width (say which, and the value).
    """
    ArrayConfig(1, 1, 1, WB, DB, VB, reset)  # widths first, for a clear message
    weight = np.asarray(weight, np.float64)
    if scale is None:
        scale = layer_scale(weight, WB)
    elif not scale > 0:
        raise ConfigError(f"scale must be positive, not {scale!r}")

    def to_int(x):
        return None if x is None else np.round(np.asarray(x, np.float64) / scale).astype(np.int64)

    params = IntParams(weight=to_int(weight), alpha=quantize_decay(alpha, DB),
                       beta=quantize_decay(beta, DB), threshold=to_int(threshold),
                       bias=to_int(bias), WB=WB, DB=DB, VB=VB, reset=reset)
    return params, scale


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy()


@torch.no_grad()
def quantize_linear(layer: DALIFLinear, *, WB: int = DEFAULT_WB, DB: int = DEFAULT_DB,
                    VB: int = DEFAULT_VB, scale: float | None = None
                    ) -> tuple[IntParams, float]:
    """Convert a trained :class:`~dalif_hw.model.DALIFLinear` (see :func:`quantize`).

    Decays of any granularity become one per neuron; the layer's scalar threshold stays a
    per-layer threshold.
    """
    neuron = layer.neuron
    bias = None if layer.linear.bias is None else _numpy(layer.linear.bias)
    return quantize(_numpy(layer.linear.weight), _numpy(neuron.per_neuron(neuron.alpha)),
                    _numpy(neuron.per_neuron(neuron.beta)), _numpy(neuron.threshold), bias,
                    reset=neuron.reset, WB=WB, DB=DB, VB=VB, scale=scale)
