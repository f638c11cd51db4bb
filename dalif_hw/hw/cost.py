"""The cost model: cycles per timestep of each layer kind, from what its hardware does.

One function per layer kind, each from the component it describes: an accumulator's
operations per counted beat (:meth:`SpikeAccumulator.beat_operations
<dalif_hw.hw.accumulate.SpikeAccumulator.beat_operations>`, a dense layer's or readout's
words; :func:`~dalif_hw.hw.conv_accumulate.beat_operations`, a convolution's runs), its update
pass (one operation per group), the serializer's beat per spike and eot, a pooling stage's
beat a cycle. Behind a counting sum pool (:func:`~dalif_hw.hw.pool.counted_pools`) a layer
takes one beat per bit set in each pooled index's count (:func:`counted_beats`), and the pool
takes a cycle more for each beat it sends. The benches check their cycle bounds from here,
``explore`` and the benchmarks model networks with it, and ``verify`` sets its time-outs
from its worst case.

A layer's timestep takes about ``max(accumulate + pass, spikes + 1)`` cycles in steady state
where accumulation and the pass follow each other, ``max(accumulate, pass, spikes + 1)`` where
the next timestep accumulates during the pass (a layer with two sets of accumulators); the output
is sent while the next timestep accumulates; plus at most :data:`PIPELINE` for the pipelines
between them.
"""

from __future__ import annotations

import functools

import numpy as np

from ..core.layout import conv_pass_groups
from ..quant.kinds import Add, Conv2d, Dense, Pool, Readout, Spiking, Weighted
from .accumulate import SpikeAccumulator
from .conv_accumulate import ConvAccumulator, beat_operations

__all__ = ["PIPELINE", "operations", "pass_operations", "overlaps", "layer_cycles",
           "dropped_beats", "pool_cycles", "counted_beats", "timestep_cycles",
           "worst_timestep_cycles"]

#: Cycles a timestep may take beyond the model's, for the pipelines (the benches of sim/
#: check every layer within it).
PIPELINE = 8


@functools.singledispatch
def operations(layer) -> np.ndarray:
    """Accumulator operations (cycles) of one counted beat at each input index of ``layer``
    (a :class:`~dalif_hw.quant.packed.Layer` with neurons), [M]: a dense layer's or
    readout's words; registered per kind where it differs."""
    c = layer.config
    return np.full(c.inputs, SpikeAccumulator.beat_operations(c), np.int64)


@operations.register
def _(layer: Conv2d) -> np.ndarray:
    c = layer.config
    return beat_operations(*layer.params.shape.accumulator(c.lanes, c.acc_lanes))


@functools.singledispatch
def pass_operations(layer) -> int:
    """Operations of the update pass (a readout's, once a sample): one per group."""
    return layer.config.groups


@pass_operations.register
def _(layer: Conv2d) -> int:
    return conv_pass_groups(layer.params.shape, layer.config.lanes, layer.config.acc_lanes)


@functools.singledispatch
def overlaps(layer) -> bool:
    """Whether the layer's accumulator takes the next timestep's beats during the update
    pass (with two sets of accumulators, where they are cheap: :func:`.accumulate.second_set`)
    or after it; registered per kind (a readout passes once a sample: not modelled)."""
    return False


@overlaps.register
def _(layer: Dense) -> bool:
    c = layer.config
    return SpikeAccumulator.overlaps(c.acc_groups, c.acc_lanes, c.current_width, c.second_set)


@overlaps.register
def _(layer: Conv2d) -> bool:
    c = layer.config
    return ConvAccumulator.overlaps(*layer.params.shape.accumulator(c.lanes, c.acc_lanes),
                                    c.current_width, c.second_set)


def layer_cycles(layer, counts: np.ndarray, spikes_out: np.ndarray | None,
                 dropped: np.ndarray | int = 0) -> np.ndarray:
    """Cycles of each timestep, [S, T], of ``layer`` counting ``counts`` [S, T, M] beats
    (already capped), taking ``dropped`` [S, T] beats more that it does not count (out of
    range or past the beat cap: a cycle each, :func:`dropped_beats`) and sending
    ``spikes_out`` [S, T, N] (None for a readout, which passes once a sample and sends its
    logits)."""
    accumulate = counts @ operations(layer) + dropped
    if spikes_out is None:
        passes = np.zeros_like(accumulate)
        passes[:, -1] = pass_operations(layer) + layer.config.neurons
        return accumulate + passes + PIPELINE
    work = np.maximum(accumulate, pass_operations(layer)) if overlaps(layer) else \
        accumulate + pass_operations(layer)
    return np.maximum(work, spikes_out.sum(axis=2) + 1) + PIPELINE


def dropped_beats(events, counts: np.ndarray) -> np.ndarray:
    """Beats of each timestep, [S, T], that ``events`` (per sample, per timestep, the indices
    sent) offers and ``counts`` [S, T, M] (the twin's, capped) does not count."""
    offered = np.array([[len(beats) for beats in sample] for sample in events], np.int64)
    return offered - counts.sum(axis=2)


def pool_cycles(counts_in: np.ndarray) -> np.ndarray:
    """A pooling stage's cycles per timestep, [S, T]: a beat a cycle, and the eot."""
    return counts_in.sum(axis=2) + 1


def counted_beats(counts: np.ndarray) -> np.ndarray:
    """The beats of a counting pool's stream, per index, from its counts [..., M]: one per
    bit set in each count (:mod:`dalif_hw.hw.pool`; its input in ascending order, as a layer
    with neurons sends it)."""
    counts = np.asarray(counts, np.int64)
    beats = np.zeros_like(counts)
    for b in range(max(1, int(counts.max(initial=0)).bit_length())):
        beats += counts >> b & 1
    return beats


@functools.singledispatch
def timestep_cycles(layer, counts: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Cycles of each timestep of ``layer``, [S, T], given the beats it takes, ``counts``
    [S, T, M] (its inputs' beats concatenated, capped at its beat cap), and what it gives,
    ``output`` (spikes [S, T, N]; a readout's logits). Registered per layer kind."""
    raise TypeError(f"the cost model has no layer kind {type(layer).__name__}")


@timestep_cycles.register
def _(layer: Spiking, counts, output):
    return layer_cycles(layer, counts, output)


@timestep_cycles.register
def _(layer: Readout, counts, output):
    return layer_cycles(layer, counts, None)


@timestep_cycles.register(Pool)
@timestep_cycles.register(Add)
def _(layer, counts, output):
    return pool_cycles(counts)


@functools.singledispatch
def worst_timestep_cycles(layer, beats: int | None = None) -> int:
    """The most cycles a timestep of ``layer`` can take with ``beats`` beats (default: its beat
    cap; a stage without neurons: its input indices, once each), those within the cap each at
    the most operations any index takes and the rest a cycle each, the pass and every neuron
    firing; a stage without neurons
    (this default) passes a beat a cycle. For the time-outs of simulations."""
    return (layer.in_size if beats is None else beats) + 1


@worst_timestep_cycles.register
def _(layer: Weighted, beats: int | None = None) -> int:
    c = layer.config
    beats = c.beat_cap if beats is None else beats
    counted = min(beats, c.beat_cap)
    return (counted * int(operations(layer).max()) + beats - counted + pass_operations(layer)
            + c.neurons + 1 + PIPELINE)
