"""The integer twin of a packed network: any graph of SPEC 7, one layer kind at a time.

:func:`evaluate` is registered per layer kind (:mod:`dalif_hw.quant.kinds`): it takes what
the layer's inputs gave (spikes, bool [S, T, M], or beats per index, int [S, T, M]) and
returns what the layer gives. A layer with several inputs takes them concatenated (SPEC 7);
an add sums its inputs' beats; a pooling stage turns spikes into beats per pooled index.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ..quant.kinds import INPUT, Add, Pool, Readout, Spiking
from .layers import Trace, pool_step, readout, run, stimulus_counts

__all__ = ["Step", "evaluate", "walk", "run_network", "classify"]


def _joined(inputs: list) -> np.ndarray:
    """One stimulus from several: indices one after the other (channels, for a
    convolution's flat (C, H, W) order)."""
    if len(inputs) == 1:
        return inputs[0]
    return np.concatenate([np.asarray(x, np.int64) for x in inputs], axis=2)


class Step(NamedTuple):
    """What one layer did for S samples: ``counts`` [S, T, M], the beats it counted per
    input index (its inputs concatenated, capped; an add's summed); ``output``, what it gives
    (spikes bool or beats int [S, T, N]; a readout's logits [S, classes]); ``trace``, a layer
    with neurons' :class:`~.layers.Trace` (else None)."""

    counts: np.ndarray
    output: np.ndarray
    trace: Trace | None


@functools.singledispatch
def evaluate(layer, inputs: list) -> Step:
    """What ``layer`` does given its inputs' outputs (in the order of ``layer.inputs``).
    Registered per layer kind."""
    raise TypeError(f"the integer twin has no layer kind {type(layer).__name__}")


@evaluate.register
def _(layer: Spiking, inputs: list) -> Step:
    trace = run(layer.params, _joined(inputs))
    return Step(trace.counts_in, trace.spikes_out, trace)


@evaluate.register
def _(layer: Pool, inputs: list) -> Step:
    return Step(*pool_step(layer.pool, inputs[0]), None)


@evaluate.register
def _(layer: Add, inputs: list) -> Step:
    counts = sum(np.asarray(x, np.int64) for x in inputs)
    return Step(counts, counts, None)


@evaluate.register
def _(layer: Readout, inputs: list) -> Step:
    counts, _ = stimulus_counts(_joined(inputs), layer.in_size, layer.config.beat_cap)
    return Step(counts, readout(layer.params, counts), None)


def walk(network, spikes):
    """Each layer of ``network`` in order with its :class:`Step` on ``spikes`` [S, T, M]:
    ``(layer, step)``. What no later layer reads is let go as it goes."""
    outputs = {INPUT: spikes}
    for k, layer in enumerate(network.layers):
        step = evaluate(layer, [outputs[name] for name in layer.inputs])
        outputs[layer.name] = step.output
        for name in layer.inputs:
            if all(name not in later.inputs for later in network.layers[k + 1:]):
                outputs.pop(name, None)
        yield layer, step


def run_network(network, spikes) -> tuple[list, np.ndarray]:
    """The integer twin of ``network`` (a :class:`~dalif_hw.quant.packed.Network`):
    ``(traces of the layers with neurons, in network order; logits [S, classes])``; without
    a readout the logits are None and the output is the last trace's ``spikes_out``."""
    traces, last = [], None
    for _, step in walk(network, spikes):
        if step.trace is not None:
            traces.append(step.trace)
        last = step.output
    return traces, last if network.has_readout else None


def classify(network, spikes) -> np.ndarray:
    """Classes [S]: the argmax of the logits, the lowest index among equal maxima."""
    if not network.has_readout:
        raise ValueError("this network has no readout: its output is spikes, not classes")
    return run_network(network, spikes)[1].argmax(axis=1)
