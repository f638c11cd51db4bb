"""The integer twin of a packed network: its layers chained, pooling stages between them,
then the readout (if the network has one)."""

from __future__ import annotations

import numpy as np

from .layers import pool, readout, run

__all__ = ["run_network", "classify"]


def run_network(network, spikes) -> tuple[list, np.ndarray]:
    """The integer twin of ``network`` (a :class:`~dalif_hw.quant.packed.Network`):
    ``(traces of the spiking layers, logits [S, classes])``; without a readout the logits
    are None and the output is the last trace's ``spikes_out``. A pooling stage turns spikes
    into beats per pooled index (counts), which the next layer takes as they come."""
    traces, x = [], spikes
    for layer in network.layers:
        if layer.kind == "readout":
            return traces, readout(layer.params, x)
        if layer.pool is not None:
            x = pool(layer.pool, x)
        else:
            trace = run(layer.params, x)
            traces.append(trace)
            x = trace.spikes_out
    return traces, None


def classify(network, spikes) -> np.ndarray:
    """Classes [S]: the argmax of the logits, the lowest index among equal maxima."""
    if not network.has_readout:
        raise ValueError("this network has no readout: its output is spikes, not classes")
    return run_network(network, spikes)[1].argmax(axis=1)
