"""Float to integer: trained layers become the integer parameters of the hardware.

One scale ``s`` per layer, ``s = max|w| / (2**(WB-1) - 1)``; the membrane then lives in units
of ``s``::

    w_int = round(w / s)      bias_int = round(b / s)      theta_int = round(theta / s)
    alpha_int = clamp(round(alpha * 2**DB), 0, 2**DB)      (likewise beta)

``round`` is numpy's (halves to even). A convolution packs the same way (its kernel is its
weights); average pooling becomes sum pooling with 1 / (PKH PKW) folded into the next
layer's weights before they are scaled; the layer behind a sum pool gets the beat cap
PKH PKW M (SPEC 6).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.config import DEFAULT_DB, DEFAULT_VB, DEFAULT_WB, ArrayConfig, ConfigError
from ..core.params import ConvParams, IntParams, ReadoutParams, first_bad
from ..model import (
    DALIFMLP,
    DALIFConv2d,
    DALIFConvNet,
    DALIFLinear,
    DALIFSequential,
    Flatten,
    SEWBlock,
    SpikePool2d,
)
from .packed import INPUT, KINDS, Add, Conv2d, Dense, Network, Readout

__all__ = ["layer_scale", "quantize", "quantize_linear", "quantize_conv", "quantize_readout",
           "pack_network"]


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


def check_finite(name: str, values) -> None:
    """Raise :class:`ConfigError` naming the first NaN or infinity in ``values``."""
    if values is None:
        return
    values = np.asarray(values, np.float64)
    found = first_bad(name, ~np.isfinite(values))
    if found:
        where, pos = found
        raise ConfigError(f"{where} is {values[pos]} (NaN or infinite): the trained model is "
                          f"broken, nothing to pack")


def quantize_decay(decay: np.ndarray, DB: int) -> np.ndarray:
    """``clamp(round(decay * 2**DB), 0, 2**DB)`` as int64."""
    return np.clip(np.round(np.asarray(decay, np.float64) * (1 << DB)), 0, 1 << DB
                   ).astype(np.int64)


def quantize(weight, alpha, beta, threshold, bias=None, *, reset: str = "hard",
             WB: int = DEFAULT_WB, DB: int = DEFAULT_DB, VB: int = DEFAULT_VB,
             scale: float | None = None, strict: bool = False,
             **conv) -> tuple[IntParams | ConvParams, float]:
    """Convert float parameters of one layer to :class:`IntParams` (or, given the keys
    ``in_shape``, ``stride`` and ``padding``, :class:`ConvParams`); ``beat_cap`` passes on.

    Parameters
    ----------
    weight : [N, M] (or [K, C, KH, KW])
    alpha, beta : [N] (or [K] or [N]), decays in [0, 1]
    threshold : scalar or [N] (or [K])
    bias : [N] (or [K]) or None
    reset, WB, DB, VB : as in :class:`IntParams`
    scale : float, optional
        The layer scale; by default :func:`layer_scale`.
    strict : bool
        The float neuron fires on ``V > theta`` (NIR): ``theta_int = floor(theta / s) + 1``,
        so that the hardware's ``V >= theta_int`` fires on exactly the same integers.

    Returns
    -------
    (IntParams or ConvParams, scale)

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

    for name, value in (("weight", weight), ("alpha", alpha), ("beta", beta),
                        ("threshold", threshold), ("bias", bias)):
        check_finite(name, value)

    def to_int(x):
        return None if x is None else np.round(np.asarray(x, np.float64) / scale).astype(np.int64)

    theta = to_int(threshold) if not strict else \
        np.floor(np.asarray(threshold, np.float64) / scale).astype(np.int64) + 1
    kind = ConvParams if "in_shape" in conv else IntParams
    params = kind(weight=to_int(weight), alpha=quantize_decay(alpha, DB),
                  beta=quantize_decay(beta, DB), threshold=theta,
                  bias=to_int(bias), WB=WB, DB=DB, VB=VB, reset=reset, **conv)
    return params, scale


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy()


@torch.no_grad()
def quantize_linear(layer: DALIFLinear, *, WB: int = DEFAULT_WB, DB: int = DEFAULT_DB,
                    VB: int = DEFAULT_VB, scale: float | None = None,
                    weight_factor: float = 1.0, beat_cap: int | None = None
                    ) -> tuple[IntParams, float]:
    """Convert a trained :class:`~dalif_hw.model.DALIFLinear` (see :func:`quantize`).

    Decays of any granularity become one per neuron; the layer's scalar threshold stays a
    per-layer threshold, a threshold tensor becomes one per neuron. ``weight_factor`` scales
    the weights first (a folded average pool).
    """
    neuron = layer.neuron
    bias = None if layer.linear.bias is None else _numpy(layer.linear.bias)
    threshold = _numpy(neuron.threshold)
    if threshold.ndim:
        threshold = _numpy(neuron.per_neuron(neuron.threshold))
    return quantize(_numpy(layer.linear.weight) * weight_factor,
                    _numpy(neuron.per_neuron(neuron.alpha)),
                    _numpy(neuron.per_neuron(neuron.beta)), threshold, bias,
                    reset=neuron.reset, WB=WB, DB=DB, VB=VB, scale=scale, beat_cap=beat_cap,
                    strict=neuron.strict)


@torch.no_grad()
def quantize_conv(layer: DALIFConv2d, in_shape, *, WB: int = DEFAULT_WB, DB: int = DEFAULT_DB,
                  VB: int = DEFAULT_VB, weight_factor: float = 1.0,
                  beat_cap: int | None = None) -> tuple[ConvParams, float]:
    """Convert a trained :class:`~dalif_hw.model.DALIFConv2d` with input ``in_shape``
    (C, H, W) to :class:`ConvParams`: decays per channel where the neuron learns them so (or
    per layer: repeated per channel), per neuron (flat) otherwise; the threshold per layer;
    the bias per channel. ``weight_factor`` scales the weights first (a folded average
    pool). A threshold tensor stays per channel or per neuron."""
    neuron, conv = layer.neuron, layer.conv
    K = conv.out_channels

    def decay(value):
        value = _numpy(value)
        return np.full(K, float(value)) if value.ndim == 0 else value.reshape(-1)

    bias = None if conv.bias is None else _numpy(conv.bias)
    threshold = _numpy(neuron.threshold)
    return quantize(_numpy(conv.weight) * weight_factor, decay(neuron.alpha),
                    decay(neuron.beta), threshold.reshape(-1) if threshold.ndim else threshold,
                    bias, reset=neuron.reset, WB=WB, DB=DB, VB=VB, in_shape=tuple(in_shape),
                    stride=conv.stride, padding=conv.padding, beat_cap=beat_cap,
                    strict=neuron.strict)


@torch.no_grad()
def quantize_readout(linear: torch.nn.Linear, *, WB: int = DEFAULT_WB, VB: int = DEFAULT_VB,
                     weight_factor: float = 1.0, row_gain: torch.Tensor | None = None
                     ) -> tuple[ReadoutParams, float]:
    """Convert the readout ``nn.Linear``: one scale, ``w_int = round(w / s)``, likewise bias.
    ``row_gain`` [classes] scales each output's row and bias first (an integrator's gain).

    The float readout averages over T timesteps and the integer one sums, in units of the
    scale: the same argmax.
    """
    ArrayConfig(1, 1, 1, WB, 1, VB)
    gain = np.ones(linear.out_features) if row_gain is None else _numpy(row_gain)
    weight = _numpy(linear.weight) * weight_factor * gain[:, None]
    check_finite("weight", weight)
    check_finite("bias", None if linear.bias is None else _numpy(linear.bias))
    scale = layer_scale(weight, WB)
    bias = None if linear.bias is None else \
        np.round(_numpy(linear.bias) * gain / scale).astype(np.int64)
    return ReadoutParams(weight=np.round(weight / scale).astype(np.int64), bias=bias, WB=WB,
                         VB=VB), scale


def pack_network(model: DALIFMLP | DALIFConvNet | DALIFSequential, *, T: int, encoding: dict,
                 WB: int = DEFAULT_WB, DB: int = DEFAULT_DB, VB: int = DEFAULT_VB,
                 lanes=None, acc_lanes=None) -> Network:
    """Pack a trained :class:`~dalif_hw.model.DALIFMLP`,
    :class:`~dalif_hw.model.DALIFConvNet` or :class:`~dalif_hw.model.DALIFSequential` (with
    or without a readout) into a :class:`Network`.

    ``lanes``, ``acc_lanes``: one per layer with neurons (dense, conv2d, readout; not
    pooling), or None for each layer's default (``acc_lanes``: the layer's lanes).

    Raises
    ------
    ConfigError
        If a converted value does not fit its width, or ``lanes`` does not fit the layers.
    """
    if isinstance(model, (DALIFConvNet, DALIFSequential)):
        modules, shape = list(model.body), model.in_shape
    else:
        modules, shape = list(model.hidden), (model.sizes[0],)
    readout = model.readout
    n_layers = sum(1 if isinstance(m, (DALIFLinear, DALIFConv2d)) else
                   len(m.convs) if isinstance(m, SEWBlock) else 0 for m in modules) + \
        (readout is not None)
    counts_per_layer = []
    for what, given in (("lanes", lanes), ("acc_lanes", acc_lanes)):
        given = [None] * n_layers if given is None else list(given)
        if len(given) != n_layers:
            raise ConfigError(f"{what} needs one value per layer with neurons ({n_layers}), "
                              f"not {given}")
        counts_per_layer.append(given)
    lanes, acc_lanes = counts_per_layer
    # ``source``: the layer whose output the next one takes; ``beats``: the most beats that
    # stream carries in a timestep (SPEC 7), which the next layer's beat cap must take.
    layers, factor, source, beats = [], 1.0, INPUT, int(np.prod(shape))
    counts = {"dense": 0, "conv2d": 0, "pool": 0, "add": 0}

    def name(kind):
        counts[kind] += 1
        prefix = {"dense": "hidden", "conv2d": "conv", "pool": "pool", "add": "add"}[kind]
        return prefix + str(counts[kind] - 1)

    def spiking(module):
        nonlocal shape, factor, source, beats
        label = name("conv2d" if isinstance(module, DALIFConv2d) else "dense")
        inputs = int(np.prod(shape))
        cap = beats if beats > inputs else None
        try:
            if isinstance(module, DALIFConv2d):
                params, scale = quantize_conv(module, shape, WB=WB, DB=DB, VB=VB,
                                              weight_factor=factor, beat_cap=cap)
                shape, kind = params.shape.out_shape, Conv2d
            else:
                params, scale = quantize_linear(module, WB=WB, DB=DB, VB=VB,
                                                weight_factor=factor, beat_cap=cap)
                shape, kind = (params.neurons,), Dense
            config = params.config(T, lanes=lanes.pop(0), acc_lanes=acc_lanes.pop(0))
        except ConfigError as exc:
            raise ConfigError(f"layer {label}: {exc}") from None
        layers.append(kind(label, config, params, scale, inputs=(source,)))
        factor, source, beats = 1.0, label, params.neurons

    for module in modules:
        if isinstance(module, Flatten):
            shape = (int(np.prod(shape)),)
        elif isinstance(module, SpikePool2d):
            pool = module.shape(shape)
            label = name("pool")
            layers.append(KINDS[pool.kind](label, pool, inputs=(source,)))
            if module.kind == "avg":
                factor /= module.window[0] * module.window[1]
            # A sum pool passes every beat of its input on, a max pool a pooled index once.
            beats = beats if pool.kind == "sumpool" else pool.outputs
            source, shape = label, pool.out_shape
        elif isinstance(module, SEWBlock):
            # conv, conv, then the block's input added to the second one's spikes.
            shortcut, block_beats, block_shape = source, beats, shape
            for conv in module.convs:
                spiking(conv)
            label = name("add")
            layers.append(Add(label, block_shape, inputs=(shortcut, source)))
            source, beats = label, block_beats + beats
        else:
            spiking(module)
    if readout is None:
        return Network(T=T, encoding=encoding, layers=layers)
    try:
        params, scale = quantize_readout(readout, WB=WB, VB=VB, weight_factor=factor,
                                         row_gain=getattr(model, "integrate", None))
        config = params.config(T, lanes=lanes.pop(0), acc_lanes=acc_lanes.pop(0))
    except ConfigError as exc:
        raise ConfigError(f"layer readout: {exc}") from None
    layers.append(Readout("readout", config, params, scale, inputs=(source,)))
    return Network(T=T, encoding=encoding, layers=layers)
