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
from .model import DALIFLinear, DALIFMLP
from .network import Layer, Network
from .params import IntParams, ReadoutParams, first_bad

__all__ = ["layer_scale", "quantize", "quantize_linear", "quantize_readout", "pack_network",
           "load_checkpoint", "CHECKPOINT_FORMAT"]

#: The ``format`` of checkpoints that :func:`load_checkpoint` understands.
CHECKPOINT_FORMAT = "dalif-hw checkpoint 1"


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

    for name, value in (("weight", weight), ("alpha", alpha), ("beta", beta),
                        ("threshold", threshold), ("bias", bias)):
        check_finite(name, value)

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


@torch.no_grad()
def quantize_readout(linear: torch.nn.Linear, *, WB: int = DEFAULT_WB, VB: int = DEFAULT_VB
                     ) -> tuple[ReadoutParams, float]:
    """Convert the readout ``nn.Linear``: one scale, ``w_int = round(w / s)``, likewise bias.

    The float readout averages over T timesteps and the integer one sums, in units of the
    scale: the same argmax.
    """
    ArrayConfig(1, 1, 1, WB, 1, VB)
    weight = _numpy(linear.weight)
    check_finite("weight", weight)
    check_finite("bias", None if linear.bias is None else _numpy(linear.bias))
    scale = layer_scale(weight, WB)
    bias = None if linear.bias is None else np.round(_numpy(linear.bias) / scale).astype(np.int64)
    return ReadoutParams(weight=np.round(weight / scale).astype(np.int64), bias=bias, WB=WB,
                         VB=VB), scale


def pack_network(model: DALIFMLP, *, T: int, encoding: dict, WB: int = DEFAULT_WB,
                 DB: int = DEFAULT_DB, VB: int = DEFAULT_VB, lanes=None) -> Network:
    """Pack a trained :class:`~dalif_hw.model.DALIFMLP` into a :class:`Network`.

    ``lanes``: one per layer, or None for each layer's default, ``min(N, 16)``.

    Raises
    ------
    ConfigError
        If a converted value does not fit its width, or ``lanes`` does not fit the layers.
    """
    n_layers = len(model.hidden) + 1
    if lanes is None:
        lanes = [None] * n_layers
    if len(lanes) != n_layers:
        raise ConfigError(f"lanes needs one value per layer ({n_layers}), not {list(lanes)}")
    layers = []
    for k, (hidden, p) in enumerate(zip(model.hidden, lanes)):
        try:
            params, scale = quantize_linear(hidden, WB=WB, DB=DB, VB=VB)
        except ConfigError as exc:
            raise ConfigError(f"layer hidden{k}: {exc}") from None
        layers.append(Layer(f"hidden{k}", "dalif", params.config(T, lanes=p), params, scale))
    try:
        params, scale = quantize_readout(model.readout, WB=WB, VB=VB)
    except ConfigError as exc:
        raise ConfigError(f"layer readout: {exc}") from None
    layers.append(Layer("readout", "readout", params.config(T, lanes=lanes[-1]), params, scale))
    return Network(T=T, encoding=encoding, layers=layers)


def load_checkpoint(path) -> tuple[DALIFMLP, dict]:
    """Load a checkpoint written by :func:`dalif_hw.train.save_checkpoint`.

    Returns the model and the checkpoint dictionary (``T``, ``encoding``, ``metrics``, ...).

    Raises
    ------
    ConfigError
        If the file is missing, not a torch checkpoint, or not one this version understands.
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not its own
        raise ConfigError(f"checkpoint {str(path)!r} cannot be read by torch.load "
                          f"({_first_line(exc, 120)})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint)
        raise ConfigError(f"checkpoint {str(path)!r} is not a {CHECKPOINT_FORMAT!r} checkpoint "
                          f"(format: {found!r})")
    try:
        model = DALIFMLP(checkpoint["sizes"], **checkpoint["neuron"])
        model.load_state_dict(checkpoint["state_dict"])
        int(checkpoint["T"]), dict(checkpoint["encoding"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"checkpoint {str(path)!r} does not describe a DA-LIF network "
                          f"({_first_line(exc, 160)})") from None
    metrics = checkpoint.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ConfigError(f"checkpoint {str(path)!r}: metrics must be a mapping, not "
                          f"{type(metrics).__name__}")
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"checkpoint {str(path)!r}: metric {key!r} must be a number, "
                              f"not {value!r}")
    return model.eval(), checkpoint


def _first_line(exc: BaseException, limit: int) -> str:
    """``Type: first line of the message`` (the message may be empty)."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0][:limit]}" if lines else type(exc).__name__


def _lanes_arg(text: str) -> list[int]:
    try:
        lanes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--lanes must be comma-separated integers, one per layer, "
                          f"not {text!r}") from None
    if any(p < 1 for p in lanes):
        raise ConfigError(f"--lanes must be positive, not {text!r}")
    return lanes


def main(argv: list[str] | None = None) -> int:
    """``python -m dalif_hw.pack MODEL --out DIR``: a trained network to integer files."""
    import argparse
    import dataclasses
    import os
    from pathlib import Path

    from . import cli

    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.pack",
        description="Pack a trained DA-LIF network into integer parameters, block-RAM init "
                    "files and a network description.")
    parser.add_argument("checkpoint", metavar="MODEL", help="checkpoint, e.g. runs/digits/model.pt")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    cli.add_width_arguments(parser, "the checkpoint's")
    parser.add_argument("--lanes", metavar="P,P,...",
                        help="lanes per layer (default: min(N, 16) each)")
    args = parser.parse_args(argv)
    cli.check_positive(("--weight-width", args.weight_width), ("--decay-width", args.decay_width),
                       ("--membrane-width", args.membrane_width))
    lanes = _lanes_arg(args.lanes) if args.lanes else None
    model, checkpoint = load_checkpoint(args.checkpoint)
    widths = {"WB": DEFAULT_WB, "DB": DEFAULT_DB, "VB": DEFAULT_VB, **checkpoint.get("widths", {})}
    for key, value in (("WB", args.weight_width), ("DB", args.decay_width),
                       ("VB", args.membrane_width)):
        if value is not None:
            widths[key] = value
    network = pack_network(model, T=int(checkpoint["T"]), encoding=dict(checkpoint["encoding"]),
                           lanes=lanes, **widths)
    out = cli.output_folder(args.out)
    relative = os.path.relpath(Path(args.checkpoint).resolve(), out.resolve())
    network = dataclasses.replace(network, source={
        "checkpoint": relative, "metrics": {k: float(v) for k, v in
                                            checkpoint.get("metrics", {}).items()}})
    network.save(out)
    for layer in network.layers:
        c = layer.config
        print(f"{layer.name}: {c.inputs} -> {c.neurons}, {c.lanes} lanes, WB={c.WB} VB={c.VB}"
              + (f" DB={c.DB}" if layer.kind == "dalif" else "") + f", scale {layer.scale:.6g}")
    print(f"wrote {out / 'network.yaml'}")
    return 0


if __name__ == "__main__":
    import sys

    from . import cli

    sys.exit(cli.run(main))
