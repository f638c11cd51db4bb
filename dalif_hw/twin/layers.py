"""The integer twin: exactly what the hardware computes (docs/arithmetic.md).

For one neuron array, per neuron i and timestep t of a sample::

    I_i[t] = bias_i + sum of w_ij over the counted spike beats of timestep t with index j
    V_i[t] = sat_VB(rnd(beta_i * H_i[t-1]) + rnd(alpha_i * I_i[t]))
    S_i[t] = V_i[t] >= theta_i
    H_i[t] = 0 (hard) or sat_VB(V_i[t] - theta_i) (soft) if S_i[t], else V_i[t]

and for the ``subtract`` reset ``V_i[t] = sat_VB(rnd(beta_i * H_i[t-1]) + rnd(alpha_i * I_i[t])
- theta_i * S_i[t-1])`` with ``H = V`` (as for ``none``) and ``S_i[-1] = 0``.

with H_i[-1] = 0 at the start of every sample. Everything is int64 numpy, vectorised over
samples; :class:`~dalif_hw.core.config.ArrayConfig` refuses widths that could overflow int64.
The input products of all timesteps are one matrix product, in floating point where that is
exact (:func:`exact_product`); the update runs in place, one timestep at a time.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence

import numpy as np

from ..core.config import ConfigError, rnd, sat
from ..core.conv import PoolShape
from ..core.files import savez_atomic
from ..core.params import ConvParams, IntParams

#: The most beats one timestep of a stimulus may give, all its counts together (2**62): their
#: running sums then fit int64.
MAX_BEATS = 2**62

__all__ = ["MAX_BEATS", "Trace", "counts_from_events", "run", "step", "update", "readout",
           "stimulus_counts", "exact_product", "pool"]


@dataclasses.dataclass(frozen=True, eq=False)
class Trace:
    """What one neuron array computed for S samples of T timesteps.

    Attributes
    ----------
    counts_in : int64 [S, T, M]
        How often each input index counted in each timestep (0/1 for bool stimuli).
    current : int32 or int64 [S, T, N]
        The input current I (int32 where the array's ``update_width`` is at most 32).
    membrane : int32 or int64 [S, T, N]
        The membrane V, before reset.
    spikes_out : bool [S, T, N]
        The output spikes S.
    dropped : bool [S]
        Whether the sample had a dropped beat (the hardware's sticky error flag rises).
    """

    counts_in: np.ndarray
    current: np.ndarray
    membrane: np.ndarray
    spikes_out: np.ndarray
    dropped: np.ndarray

    def save(self, path) -> None:
        """Write ``trace.npz`` atomically (``spikes_in`` bool [S, T, M] and the rest).

        Stimuli in event form may count an index more than once; those also get
        ``counts_in``, since ``spikes_in`` alone cannot say so.
        """
        arrays = dict(spikes_in=self.counts_in > 0, current=self.current.astype(np.int64),
                      membrane=self.membrane.astype(np.int64), spikes_out=self.spikes_out)
        if self.counts_in.max(initial=0) > 1:
            arrays["counts_in"] = self.counts_in
        savez_atomic(path, **arrays)


def counts_from_events(events: Sequence[Sequence[Sequence[int]]], inputs: int,
                       cap: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Turn spike events into counts, dropping beats as the hardware does.

    Parameters
    ----------
    events : [S][T][beats]
        Per sample, per timestep, the spike indices in the order the beats arrive. All
        samples must have the same number of timesteps.
    inputs : int
        M. Indices outside ``[0, M)`` are dropped; of the others, only the first B (``cap``,
        default M) of a timestep count (a repeated index counts again), the rest are dropped.

    Returns
    -------
    counts : int64 [S, T, M]
    dropped : bool [S], whether any beat of the sample was dropped.
    """
    n_samples = len(events)
    n_steps = {len(sample) for sample in events}
    if len(n_steps) > 1:
        raise ConfigError(f"all samples must have the same number of timesteps, "
                          f"not {sorted(n_steps)}")
    T = n_steps.pop() if n_steps else 0
    cap = inputs if cap is None else cap
    counts = np.zeros((n_samples, T, inputs), np.int64)
    dropped = np.zeros(n_samples, np.bool_)
    for s, sample in enumerate(events):
        for t, beats in enumerate(sample):
            beats = np.asarray(beats, np.int64).reshape(-1)
            in_range = beats[(beats >= 0) & (beats < inputs)]
            counted = in_range[:cap]
            dropped[s] |= len(counted) < len(beats)
            np.add.at(counts[s, t], counted, 1)
    return counts, dropped


def step(params: IntParams, h: np.ndarray, current: np.ndarray, first: bool = False
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One timestep for a batch: return ``(V, S, H)`` from ``H[t-1]`` and ``I[t]``.

    ``h`` and ``current`` are int64 [..., N]; ``first`` says that this is a sample's first
    timestep (where the ``subtract`` reset takes nothing off).
    """
    h = np.array(h, np.int64)
    v = np.empty(np.broadcast_shapes(h.shape, np.shape(current)), np.int64)
    spikes = np.empty(v.shape, np.bool_)
    update(params, h, np.asarray(current, np.int64), v, spikes, np.empty_like(v), first)
    return v, spikes, h


def update(params: IntParams, h: np.ndarray, current: np.ndarray, v: np.ndarray,
           spikes: np.ndarray, scratch: np.ndarray, first: bool = False) -> None:
    """:func:`step` in place: ``V`` into ``v``, ``S`` into ``spikes``, ``H`` into ``h``
    (``scratch``: a buffer like ``v``; all of one integer type, int32 only where the array's
    ``update_width`` allows), with no array allocated but the reset's mask."""
    DB, VB, dtype = params.DB, params.VB, v.dtype
    alpha, beta = params.alpha.astype(dtype), params.beta.astype(dtype)
    threshold = np.asarray(params.threshold).astype(dtype)
    rnd(np.multiply(beta, h, out=v), DB, out=v)
    rnd(np.multiply(alpha, current, out=scratch), DB, out=scratch)
    np.add(v, scratch, out=v)
    if params.reset == "subtract" and not first:
        # theta S[t-1], S[t-1] being H[t-1] >= theta since H = V (the hardware keeps no spike
        # either); ``spikes`` and ``scratch`` are free until written below.
        np.greater_equal(h, threshold, out=spikes)
        np.subtract(v, np.multiply(spikes, threshold, out=scratch), out=v)
    sat(v, VB, out=v)
    np.greater_equal(v, threshold, out=spikes)
    if params.reset == "hard":
        np.multiply(v, ~spikes, out=h)
    elif params.reset == "soft":
        sat(np.subtract(v, threshold, out=scratch), VB, out=scratch)
        np.copyto(h, v)
        np.copyto(h, scratch, where=spikes)
    else:                                   # subtract and none: H = V
        np.copyto(h, v)


def stimulus_counts(stimulus, inputs: int, cap: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(counts [S, T, M], dropped [S])`` of a stimulus in any form :func:`run` takes.

    Counts (int [S, T, M]) are beats per index sent in ascending index order: of a
    timestep's beats only the first B (``cap``, default M) count."""
    cap = inputs if cap is None else cap
    if isinstance(stimulus, np.ndarray) and stimulus.ndim == 3:
        if stimulus.dtype.kind not in "biu":
            raise ConfigError(f"stimulus must be bool or integer, not {stimulus.dtype}")
        counts = stimulus.astype(np.int64)
        if counts.shape[2] != inputs:
            raise ConfigError(f"stimulus has {counts.shape[2]} inputs but the weights have "
                              f"{inputs}")
        if stimulus.dtype == np.bool_ and (cap >= inputs or counts.size == 0 or
                                           stimulus.sum(axis=2).max() <= cap):
            return counts, np.zeros(counts.shape[0], np.bool_)   # no beat beyond the cap
        if counts.min(initial=0) < 0:
            raise ConfigError("stimulus counts must be >= 0")
        beats = counts.sum(axis=2, dtype=np.float64)      # no int64 wrap-around here
        if beats.max(initial=0) >= MAX_BEATS:
            s, t = np.argwhere(beats >= MAX_BEATS)[0]
            raise ConfigError(f"stimulus counts of sample {s}, timestep {t} add up to "
                              f"{beats[s, t]:.4g} beats, not below 2**62: their sums would wrap")
        # Beats in ascending index order: those past the B-th of a timestep are dropped.
        before = np.cumsum(counts, axis=2) - counts
        kept = np.clip(cap - before, 0, counts)
        return kept, (kept != counts).any(axis=(1, 2))
    return counts_from_events(stimulus, inputs, cap)


def exact_product(counts: np.ndarray, weight_t: np.ndarray, dtype=np.int64,
                  cache: dict | None = None, beats: int | None = None) -> np.ndarray:
    """``counts @ weight_t`` as ``dtype`` (``counts`` [..., M] >= 0, ``weight_t`` [M, N];
    int64 unless the caller knows the results fit a narrower type), computed with
    floating-point BLAS where that is exact.

    Every partial sum of a row is an integer of magnitude at most ``bound``, the row's sum of
    counts times the largest |weight|. Below 2**24 float32 holds each exactly, whatever the
    order of the additions; below 2**53 float64 does. The hardware's widths keep the bound
    below 2**24 for up to 2**(23 - WB) counted beats a timestep (32,768 at WB = 8), and below
    2**53 always; beyond that (not reachable from a packed network) the product is int64
    numpy, exact but without BLAS. ``cache`` (a dict kept with the weights) keeps their
    largest |weight| and their float copies from one call to the next; ``beats``, if given,
    bounds every row's sum of counts instead of the rows' own sums."""
    shape = counts.shape[:-1] + weight_t.shape[1:]
    if counts.size == 0 or weight_t.size == 0:
        return np.zeros(shape, dtype)
    cache = {} if cache is None else cache
    if "max" not in cache:
        cache["max"] = int(np.abs(weight_t).max())
    beats = int(counts.sum(axis=-1).max()) if beats is None else int(beats)
    bound = beats * cache["max"]
    if bound >= 2**53:
        return (counts @ weight_t).astype(dtype)
    real = np.float32 if bound < 2**24 else np.float64
    if real not in cache:
        cache[real] = weight_t.astype(real)
    rows = np.ascontiguousarray(counts, real).reshape(-1, counts.shape[-1])  # one 2-D GEMM
    return (rows @ cache[real]).astype(dtype).reshape(shape)


class _Prepared:
    """What :func:`run` derives from a parameters object, kept while that object lives (a
    conv2d layer's per-neuron values, the weights transposed and as floats): at batch 1 a
    network's twin is otherwise dominated by rebuilding them. It holds no reference to the
    object itself (which would keep it alive, and so the cache entry). Parameters are
    values: arrays changed in place after a run are not seen again."""

    _cache: dict = {}

    def __init__(self, params):
        conv = isinstance(params, ConvParams)
        # What the update takes, per neuron (a convolution's per-channel values repeated).
        values = params.per_neuron if conv else lambda name: getattr(params, name)
        self.neurons = _Neurons(*(values(name) for name in ("alpha", "beta", "threshold")),
                                params.DB, params.VB, params.reset)
        self.shape = params.shape if conv else None
        # A convolution's kernel as [C KH KW, K] (its patches' columns), a dense layer's
        # weights as [M, N].
        self.weight_t = params.weight.reshape(params.weight.shape[0], -1).T if conv else \
            params.weight.T
        self.biases = params.biases()
        self.products: dict = {}

    def currents(self, counts: np.ndarray, dtype) -> np.ndarray:
        """The weights of the counted beats, [..., N] from ``counts`` [..., M]: a dense
        layer's one product, a convolution's over its patches (C KH KW products a neuron, not
        M), both exact (:func:`exact_product`); a convolution that pools its currents, the max
        over each window of its pre-pool positions (:meth:`ConvShape.pool_currents
        <dalif_hw.core.conv.ConvShape.pool_currents>`)."""
        if self.shape is None:
            return exact_product(counts, self.weight_t, dtype, self.products)
        conv = self.shape.conv
        (C, H, W), (K, HO, WO) = conv.in_shape, conv.out_shape
        (KH, KW), (SH, SW), (PH, PW) = conv.kernel, conv.stride, conv.padding
        lead = counts.shape[:-1]
        grid = np.zeros((int(np.prod(lead)), C, H + 2 * PH, W + 2 * PW), counts.dtype)
        grid[:, :, PH:PH + H, PW:PW + W] = counts.reshape(-1, C, H, W)
        windows = np.lib.stride_tricks.sliding_window_view(grid, (KH, KW), axis=(2, 3))
        patches = windows[:, :, ::SH, ::SW][:, :, :HO, :WO]      # [B, C, HO, WO, KH, KW]
        patches = patches.transpose(0, 2, 3, 1, 4, 5).reshape(-1, HO, WO, C * KH * KW)
        # Every partial sum is bounded by the whole timestep's beats times max |w|, as for
        # the dense product: pass that bound on through a row of the sums.
        current = exact_product(patches, self.weight_t, dtype, self.products,
                                beats=counts.sum(axis=-1).max(initial=0))
        return self.shape.pool_currents(current.transpose(0, 3, 1, 2).reshape(
            *lead, K * HO * WO))

    @classmethod
    def of(cls, params) -> "_Prepared":
        key = id(params)
        hit = cls._cache.get(key)
        if hit is None or hit[0]() is not params:
            hit = cls._cache[key] = (weakref.ref(params), cls(params))
            weakref.finalize(params, cls._cache.pop, key, None)
        return hit[1]


@dataclasses.dataclass(frozen=True)
class _Neurons:
    """What :func:`update` reads of a layer's parameters, per neuron."""

    alpha: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray
    DB: int
    VB: int
    reset: str


def readout(params, stimulus) -> np.ndarray:
    """Logits of a readout layer, int64 [S, N]: per sample, the sum over its T timesteps of
    ``bias + weights of the counted beats`` (docs/network.md), at most its beat cap a
    timestep."""
    counts, _ = stimulus_counts(stimulus, params.inputs, params.cap)
    T = counts.shape[1]
    return exact_product(counts.sum(axis=1), params.weight.T) + T * params.biases()


def run(params: IntParams | ConvParams, stimulus) -> Trace:
    """Run S samples through one neuron array (dense, or conv2d: flat indices, its currents
    over its patches; exact floating-point products, see :func:`exact_product`).

    Parameters
    ----------
    params : IntParams or ConvParams
    stimulus : bool or int array [S, T, M], or events [S][T][beats]
        Spikes (bool), per-timestep counts of each input (int, as from
        :func:`counts_from_events`), or events, which are first turned into counts.

    Returns
    -------
    Trace
    """
    prepared = _Prepared.of(params)
    counts, dropped = stimulus_counts(stimulus, params.inputs, params.cap)
    n_samples, T, _ = counts.shape
    config = params.config(max(T, 1))  # checks the widths once more for this T
    # Half the memory traffic where every value of the update fits 32 bits.
    dtype = np.int32 if config.update_width <= 32 else np.int64
    # Timestep-major [T, S, N], so that each timestep's rows are contiguous; the Trace gets
    # [S, T, N] views.
    current = prepared.currents(counts.transpose(1, 0, 2), dtype)
    current += prepared.biases.astype(dtype)
    membrane = np.empty_like(current)
    spikes_out = np.empty(current.shape, np.bool_)
    h = np.zeros((n_samples, params.neurons), dtype)
    scratch = np.empty_like(h)
    for t in range(T):
        update(prepared.neurons, h, current[t], membrane[t], spikes_out[t], scratch,
               first=t == 0)
    return Trace(counts, current.transpose(1, 0, 2), membrane.transpose(1, 0, 2),
                 spikes_out.transpose(1, 0, 2), dropped)


def pool(shape: PoolShape, stimulus) -> np.ndarray:
    """A pooling stage (SPEC 6) on a stimulus in any form :func:`run` takes: beats per
    pooled index and timestep, int64 [S, T, M'] (sum pooling adds a window's beats, max
    pooling sends each pooled index at most once a timestep)."""
    return pool_step(shape, stimulus)[1]


def pool_step(shape: PoolShape, stimulus) -> tuple[np.ndarray, np.ndarray]:
    """A pooling stage's counted beats in (uncapped: nothing drops inside a network, SPEC 7)
    and its output, as :func:`pool`."""
    counts, _ = stimulus_counts(stimulus, shape.inputs, cap=np.iinfo(np.int64).max)
    return counts, shape.counts(counts)
