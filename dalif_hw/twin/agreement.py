"""What quantization costs: how closely the integer twin of a packed network follows the
float model it was packed from, on a calibration stimulus, layer by layer.

``agreement(model, network, stimulus)`` runs both on the same input (the stimulus as the
hardware takes it; the float model gets its values, counts times the encoding's step for
analog input) and returns, per layer with neurons, the fraction of its spikes (samples x
timesteps x neurons) that are equal, and for the output the fraction of samples whose class
is equal (a readout) or whose output spikes are all equal (none).

``narrowest_widths(...)`` picks per layer the narrowest weight width whose layer keeps a target
agreement, the layers before it already chosen (``pack --weight-width auto``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..core.config import ConfigError
from ..core.encoding import input_factor
from ..model import graph_of
from ..model.graph import SPIKING
from .graph import run_network

__all__ = ["Agreement", "Reference", "reference", "agreement", "narrowest_widths",
           "float_input", "WIDTHS"]

#: The weight widths ``narrowest_widths`` tries, narrowest first.
WIDTHS = tuple(range(2, 17))


@dataclasses.dataclass(frozen=True)
class Agreement:
    """``layers``: (name, fraction of equal spikes) per layer with neurons; ``output``: the
    fraction of samples with an equal class (``what == "classes"``) or equal output spikes
    (``what == "spikes"``)."""

    layers: list
    output: float
    what: str

    def lines(self) -> list[str]:
        out = [f"{name}: {value:.4f} of spikes as the float model's" for name, value in
               self.layers]
        return out + [f"output: {self.output:.4f} of samples with the float model's "
                      f"{'class' if self.what == 'classes' else 'output spikes'}"]


def float_input(stimulus: np.ndarray, encoding: dict, in_shape) -> torch.Tensor:
    """The float model's input [T, S, *in_shape] for a stimulus [S, T, M] as the hardware
    takes it (counts times the analog input's step)."""
    stimulus = np.asarray(stimulus)
    x = stimulus.astype(np.float64) * input_factor(encoding)
    x = x.reshape(*stimulus.shape[:2], *in_shape).swapaxes(0, 1)
    return torch.from_numpy(np.ascontiguousarray(x)).float()


@dataclasses.dataclass(frozen=True)
class Reference:
    """What the float model computes on a calibration stimulus: each spiking layer's spikes,
    bool [S, T, n], and the classes [S] of its readout (None without one)."""

    hidden: list
    classes: np.ndarray | None


@torch.no_grad()
def reference(model, encoding: dict, stimulus) -> Reference:
    """The float ``model`` on ``stimulus`` [S, T, M] as the hardware takes it (one forward
    pass, kept for every packing of the model that is compared with it)."""
    view = graph_of(model)
    x = float_input(stimulus, encoding, view.in_shape)
    outputs = view.outputs(x) if len(view.body) else []
    hidden = [y.flatten(2).numpy().swapaxes(0, 1) > 0 for module, y in zip(view.body, outputs)
              if isinstance(module, SPIKING)]
    if view.readout is None:
        return Reference(hidden, None)
    # The readout's current summed over the sample (by its integrator's gains if any), as
    # the hardware sums it.
    current = view.readout(outputs[-1] if outputs else x)
    if view.integrate is not None:
        current = current * view.integrate
    return Reference(hidden, current.sum(0).argmax(-1).numpy())


def agreement(model, network, stimulus, ref: Reference | None = None) -> Agreement:
    """The twin of ``network`` against ``model`` (the float model it was packed from) on
    ``stimulus`` [S, T, M] (bool spikes or int counts, as the hardware takes it); ``ref``, the
    model's :func:`reference` on it, if already computed."""
    ref = reference(model, network.encoding, stimulus) if ref is None else ref
    traces, logits = run_network(network, stimulus)
    names = [layer.name for layer in network.layers if layer.kind in ("dense", "conv2d")]
    if len(traces) != len(ref.hidden):
        raise ConfigError(f"the packed network has {len(traces)} layers with neurons, the "
                          f"model {len(ref.hidden)}")
    layers = [(name, float((t.spikes_out == h).mean())) for name, t, h in
              zip(names, traces, ref.hidden)]
    if logits is None:
        same = (traces[-1].spikes_out == ref.hidden[-1]).all(axis=(1, 2))
        return Agreement(layers, float(same.mean()), "spikes")
    return Agreement(layers, float((ref.classes == logits.argmax(-1)).mean()), "classes")


def narrowest_widths(pack, model, stimulus, target: float, layers: int,
                     rest: int) -> tuple[list, list]:
    """Per layer with neurons, the narrowest of :data:`WIDTHS` whose layer keeps ``target``
    of its spikes (the layers before it at their chosen widths, the ones after at ``rest``);
    the readout, whose agreement is the output's, likewise on the classes.
    ``pack(widths)`` packs the network with one weight width per layer. Returns the widths
    and, per layer, the agreement reached (below ``target`` where even the widest does not
    reach it)."""
    widths, reached = [], []
    ref = None
    for k in range(layers):
        best = None
        for wb in WIDTHS:
            candidate = widths + [wb] + [rest] * (layers - k - 1)
            try:
                network = pack(candidate)
                ref = ref or reference(model, network.encoding, stimulus)
                result = agreement(model, network, stimulus, ref)
            except ConfigError:
                continue          # too wide for the membrane, or too narrow to hold a value
            value = result.layers[k][1] if k < len(result.layers) else result.output
            best = (wb, value) if best is None or value > best[1] else best
            if value >= target:
                best = (wb, value)
                break
        if best is None:
            raise ConfigError(f"no weight width from {WIDTHS[0]} to {WIDTHS[-1]} packs layer "
                              f"{k}: widen the membrane (--membrane-width)")
        widths.append(best[0])
        reached.append(best[1])
    return widths, reached
