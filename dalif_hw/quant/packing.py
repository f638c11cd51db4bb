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

import dataclasses
import functools

import numpy as np
import torch

from ..core.config import DEFAULT_DB, DEFAULT_VB, DEFAULT_WB, ArrayConfig, ConfigError
from ..core.encoding import check_encoding, input_beats, input_factor
from ..core.params import ConvParams, IntParams, ReadoutParams, first_bad
from ..model import DALIFConv2d, DALIFLinear, Flatten, SpikeAdd, SpikePool2d, graph_of
from ..model import graph as model_graph
from .packed import INPUT, KINDS, Add, Conv2d, Dense, Network, Readout

__all__ = ["layer_scale", "quantize", "quantize_linear", "quantize_conv", "quantize_readout",
           "pack_network", "pack_module"]


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
                    weight_factor=1.0, beat_cap: int | None = None
                    ) -> tuple[IntParams, float]:
    """Convert a trained :class:`~dalif_hw.model.DALIFLinear` (see :func:`quantize`).

    Decays of any granularity become one per neuron; the layer's scalar threshold stays a
    per-layer threshold, a threshold tensor becomes one per neuron. ``weight_factor`` scales
    the weights first (a folded average pool): a number, or one per input column.
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
                  VB: int = DEFAULT_VB, weight_factor=1.0,
                  beat_cap: int | None = None) -> tuple[ConvParams, float]:
    """Convert a trained :class:`~dalif_hw.model.DALIFConv2d` with input ``in_shape``
    (C, H, W) to :class:`ConvParams`: decays per channel where the neuron learns them so (or
    per layer: repeated per channel), per neuron (flat) otherwise; the threshold per layer;
    the bias per channel. ``weight_factor`` scales the weights first (a folded average
    pool): a number, or one per input channel [C, 1, 1]. A threshold tensor stays per
    channel or per neuron."""
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
                    current_pool=layer.current_pool, strict=neuron.strict)


@torch.no_grad()
def quantize_readout(linear: torch.nn.Linear, *, WB: int = DEFAULT_WB, VB: int = DEFAULT_VB,
                     weight_factor: float = 1.0, row_gain: torch.Tensor | None = None,
                     beat_cap: int | None = None) -> tuple[ReadoutParams, float]:
    """Convert the readout ``nn.Linear``: one scale, ``w_int = round(w / s)``, likewise bias.
    ``row_gain`` [classes] scales each output's row and bias first (an integrator's gain);
    ``beat_cap`` as for the other layers (SPEC 7).

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
                         VB=VB, beat_cap=beat_cap), scale


@dataclasses.dataclass
class _Packing:
    """What packing knows as it walks a model's graph: per body index (and the model's
    input), the packed layer whose stream it is (``source``), the most beats that stream
    carries in a timestep (``beats``, SPEC 7: the next layer's beat cap takes them), and the
    factor its consumer's weights take (``factor``, a folded average pool); the layers made,
    and the lanes still to give out."""

    view: object
    T: int
    widths: dict
    weight_widths: list
    lanes: list
    acc_lanes: list
    second_set: list
    layers: list = dataclasses.field(default_factory=list)
    source: dict = dataclasses.field(default_factory=dict)
    beats: dict = dataclasses.field(default_factory=dict)
    factor: dict = dataclasses.field(default_factory=dict)
    counts: dict = dataclasses.field(default_factory=dict)

    def name(self, prefix: str) -> str:
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        return f"{prefix}{self.counts[prefix] - 1}"

    def config(self, params):
        return params.config(self.T, lanes=self.lanes.pop(0), acc_lanes=self.acc_lanes.pop(0),
                             second_set=self.second_set.pop(0))

    def next_widths(self) -> dict:
        """The widths of the next layer with neurons (its own WB where one per layer)."""
        return {**self.widths, "WB": self.weight_widths.pop(0)}

    def factors(self, given, per_input):
        """The weight factor of a layer's inputs: one number, or one per input column or
        channel where its inputs come through different average pools."""
        if len({self.factor[i] for i in given}) == 1:
            return self.factor[given[0]]
        return np.concatenate([np.full(per_input(i), self.factor[i]) for i in given])


@functools.singledispatch
def pack_module(module, k: int, given: tuple, state: _Packing) -> None:
    """Pack body module ``k`` of the model's graph, taking ``given`` (body indices): append
    its layer (if it makes one) to ``state.layers`` and set its stream's ``source``,
    ``beats`` and ``factor``. Registered per module type, as a layer kind's other stages."""
    raise ConfigError(f"no packing for {type(module).__name__}")


@pack_module.register
def _(module: Flatten, k, given, state):  # the flat order is the hardware's: no layer
    for what in (state.source, state.beats, state.factor):
        what[k] = what[given[0]]


@pack_module.register
def _(module: SpikePool2d, k, given, state):
    (i,) = given
    pool = module.shape(state.view.shape_of(i))
    label = state.name("pool")
    state.layers.append(KINDS[pool.kind](label, pool, inputs=(state.source[i],)))
    # A sum pool passes every beat of its input on, a max pool a pooled index once.
    state.beats[k] = state.beats[i] if pool.kind == "sumpool" else pool.outputs
    state.factor[k] = state.factor[i] / (module.window[0] * module.window[1]) \
        if module.kind == "avg" else state.factor[i]
    state.source[k] = label


@pack_module.register
def _(module: SpikeAdd, k, given, state):
    label = state.name("add")
    if len({state.factor[i] for i in given}) != 1:
        raise ConfigError(f"layer {label}: its inputs come through average pools of "
                          "different windows, which no integer add can sum (use sum pooling)")
    state.layers.append(Add(label, state.view.shape_of(given[0]),
                            inputs=tuple(state.source[i] for i in given)))
    state.beats[k] = sum(state.beats[i] for i in given)
    state.factor[k], state.source[k] = state.factor[given[0]], label


def _spiking(k, given, state, label, in_shape, quantize_layer, kind):
    """A dense or conv2d layer over ``given``, concatenated (SPEC 7)."""
    size, cap = int(np.prod(in_shape)), sum(state.beats[i] for i in given)
    try:
        params, scale = quantize_layer(cap if cap > size else None)
        config = state.config(params)
    except ConfigError as exc:
        raise ConfigError(f"layer {label}: {exc}") from None
    state.layers.append(kind(label, config, params, scale,
                             inputs=tuple(state.source[i] for i in given)))
    state.beats[k], state.factor[k], state.source[k] = params.neurons, 1.0, label


@pack_module.register
def _(module: DALIFLinear, k, given, state):
    view = state.view
    in_shape = (sum(int(np.prod(view.shape_of(i))) for i in given),)
    factor = state.factors(given, lambda i: int(np.prod(view.shape_of(i))))
    _spiking(k, given, state, state.name("hidden"), in_shape, lambda cap: quantize_linear(
        module, **state.next_widths(), weight_factor=factor, beat_cap=cap), Dense)


@pack_module.register
def _(module: DALIFConv2d, k, given, state):
    view = state.view
    shape = view.shape_of(given[0])
    in_shape = (sum(view.shape_of(i)[0] for i in given), *shape[1:])
    factor = state.factors(given, lambda i: view.shape_of(i)[0])
    factor = np.reshape(factor, (-1, 1, 1)) if np.ndim(factor) else factor
    _spiking(k, given, state, state.name("conv"), in_shape, lambda cap: quantize_conv(
        module, in_shape, **state.next_widths(), weight_factor=factor, beat_cap=cap), Conv2d)


def pack_network(model, *, T: int, encoding: dict, WB=DEFAULT_WB, DB: int = DEFAULT_DB,
                 VB: int = DEFAULT_VB, lanes=None, acc_lanes=None, second_set=None) -> Network:
    """Pack a trained model (:class:`~dalif_hw.model.DALIFMLP`,
    :class:`~dalif_hw.model.DALIFConvNet`, :class:`~dalif_hw.model.DALIFGraph`, with or
    without a readout) into a :class:`Network`, walking its graph
    (:func:`~dalif_hw.model.graph_of`) module by module (:func:`pack_module`): a spiking
    layer of several inputs packs as one layer over them (SPEC 7), an add as an ``add``
    stage, a flatten as nothing (the flat order is the hardware's).

    ``lanes``, ``acc_lanes``, ``second_set``: one per layer with neurons (dense, conv2d,
    readout; not pooling), or None for each layer's default (``acc_lanes``: the layer's
    lanes; ``second_set``: :class:`~dalif_hw.core.config.ArrayConfig`'s rule). ``WB``:
    one weight width for all, or one per layer with neurons.

    Raises
    ------
    ConfigError
        If a converted value does not fit its width, ``lanes`` does not fit the layers, or an
        add takes inputs behind average pools of different windows.
    """
    view = graph_of(model)
    n_layers = len(view.spiking) + (view.readout is not None)
    counts_per_layer = []
    weight_widths = [WB] * n_layers if isinstance(WB, (int, np.integer)) else list(WB)
    if len(weight_widths) != n_layers:
        raise ConfigError(f"WB needs one width per layer with neurons ({n_layers}), not "
                          f"{weight_widths}")
    for what, given in (("lanes", lanes), ("acc_lanes", acc_lanes), ("second_set", second_set)):
        given = [None] * n_layers if given is None else list(given)
        if len(given) != n_layers:
            raise ConfigError(f"{what} needs one value per layer with neurons ({n_layers}), "
                              f"not {given}")
        counts_per_layer.append(given)
    state = _Packing(view, T, {"DB": DB, "VB": VB}, weight_widths, *counts_per_layer)
    net_input = model_graph.INPUT
    check_encoding(encoding, T)
    state.source[net_input], state.factor[net_input] = INPUT, input_factor(encoding)
    state.beats[net_input] = int(np.prod(view.in_shape)) * input_beats(encoding)
    for k, (module, given) in enumerate(zip(view.body, view.inputs)):
        pack_module(module, k, given, state)
    if view.readout is None:
        return Network(T=T, encoding=encoding, layers=state.layers)
    last = len(view.body) - 1 if view.body else net_input
    size, beats = int(np.prod(view.shape_of(last))), state.beats[last]
    try:
        params, scale = quantize_readout(view.readout, WB=state.weight_widths.pop(0), VB=VB,
                                         weight_factor=state.factor[last],
                                         row_gain=view.integrate,
                                         beat_cap=beats if beats > size else None)
        config = state.config(params)
    except ConfigError as exc:
        raise ConfigError(f"layer readout: {exc}") from None
    return Network(T=T, encoding=encoding, layers=[*state.layers, Readout(
        "readout", config, params, scale, inputs=(state.source[last],))])
