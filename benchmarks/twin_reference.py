"""The integer twin as it stood at commit b62675b (dalif_hw/twin.py there), kept as the
reference of ``python benchmarks/run.py --only twin``: one int64 matrix product per timestep
(numpy, no BLAS for integers) and the update with fresh arrays at every step.

Only what a dense layer on a spike stimulus needs; the arithmetic is core.config's.
"""

from __future__ import annotations

import numpy as np

from dalif_hw.core.config import rnd, sat


def step(params, h, current):
    v = sat(rnd(params.beta * h, params.DB) + rnd(params.alpha * current, params.DB), params.VB)
    spikes = v >= params.threshold
    if params.reset == "hard":
        after = np.zeros_like(v)
    else:
        after = sat(v - params.threshold, params.VB)
    return v, spikes, np.where(spikes, after, v)


def run(params, spikes: np.ndarray):
    """``(current, membrane, spikes_out)``, int64/bool [S, T, N], of a bool stimulus."""
    counts = spikes.astype(np.int64)
    if counts.sum(axis=2).max(initial=0) > params.inputs:
        raise ValueError("stimulus counts must be at most M per timestep")
    n_samples, T, _ = counts.shape
    shape = (n_samples, T, params.neurons)
    current = np.empty(shape, np.int64)
    membrane = np.empty(shape, np.int64)
    spikes_out = np.empty(shape, np.bool_)
    h = np.zeros((n_samples, params.neurons), np.int64)
    bias = params.biases()
    for t in range(T):
        current[:, t] = counts[:, t] @ params.weight.T + bias
        membrane[:, t], spikes_out[:, t], h = step(params, h, current[:, t])
    return current, membrane, spikes_out
