"""Random graph networks (SPEC 7) with random integer parameters, for the benches: forks,
skips over several layers, adds of two or three inputs, adds before pools, layers of several
inputs (dense over flat streams, conv2d over channels at one H x W), with or without a
readout. ``random_network(seed)`` is the same network for the same seed.

Every stream feeds something but the last; each spiking layer's beat cap is the m(x) of its
inputs (SPEC 7), so nothing drops inside the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.conv import PoolShape
from ..core.params import ConvParams, IntParams, ReadoutParams
from ..quant.packed import INPUT, Add, Conv2d, Dense, Network, Readout, SumPool

__all__ = ["random_network"]


@dataclass
class _Stream:
    name: str
    shape: tuple
    beats: int  # m(x): the most beats in a timestep
    used: bool = False


def _cap(streams, size):
    beats = sum(s.beats for s in streams)
    return beats if beats > size else None


def random_network(seed: int, T: int = 2, steps: int = 6, readout: bool | None = None
                   ) -> Network:
    """A random DAG of ``steps`` stages after a first convolution of an input [1, 6, 6],
    ending in a dense layer over every stream not yet used (and a readout, at random unless
    ``readout`` says)."""
    rng = np.random.default_rng(seed)
    layers, counts = [], {}
    streams = [_Stream(INPUT, (1, 6, 6), 36)]

    def name(prefix):
        counts[prefix] = counts.get(prefix, 0) + 1
        return f"{prefix}{counts[prefix] - 1}"

    def take(chosen):
        for s in chosen:
            s.used = True
        return tuple(s.name for s in chosen)

    def conv(inputs):
        shape = (sum(s.shape[0] for s in inputs), *inputs[0].shape[1:])
        K = int(rng.integers(2, 4))
        params = ConvParams(weight=rng.integers(-8, 9, (K, shape[0], 3, 3)),
                            alpha=rng.integers(150, 257, K), beta=rng.integers(0, 257, K),
                            threshold=rng.integers(2, 8, K), bias=rng.integers(-2, 3, K),
                            in_shape=shape, padding=(1, 1), WB=5, VB=11,
                            beat_cap=_cap(inputs, int(np.prod(shape))))
        lanes = int(rng.integers(1, 4))
        layer = Conv2d(name("conv"), params.config(T, lanes=lanes,
                                                   acc_lanes=lanes * int(rng.integers(1, K + 1))),
                       params, inputs=take(inputs))
        return layer, _Stream(layer.name, params.shape.out_shape, layer.out_size)

    def dense(inputs, n=None):
        m = sum(int(np.prod(s.shape)) for s in inputs)
        n = n or int(rng.integers(4, 9))
        params = IntParams(weight=rng.integers(-30, 31, (n, m)),
                           alpha=rng.integers(120, 257, n), beta=rng.integers(0, 257, n),
                           threshold=rng.integers(5, 30, n), bias=rng.integers(-5, 6, n),
                           VB=11, beat_cap=_cap(inputs, m))
        layer = Dense(name("dense"), params.config(T, lanes=int(rng.integers(1, 5))), params,
                      inputs=take(inputs))
        return layer, _Stream(layer.name, (n,), n)

    first, stream = conv([streams[0]])
    layers.append(first)
    streams.append(stream)
    for _ in range(steps):
        live = streams[1:]
        kinds = ["dense", "add", "conv", "pool"]
        for kind in rng.permutation(kinds):
            if kind == "add":
                groups = {}
                for s in live:
                    groups.setdefault(s.shape, []).append(s)
                groups = [g for g in groups.values() if len(g) >= 2]
                if not groups:
                    continue
                group = groups[int(rng.integers(len(groups)))]
                chosen = [group[i] for i in rng.permutation(len(group))[:int(
                    rng.integers(2, min(3, len(group)) + 1))]]
                layer = Add(name("add"), chosen[0].shape, inputs=take(chosen))
                stream = _Stream(layer.name, chosen[0].shape, sum(s.beats for s in chosen))
            elif kind == "conv":
                grids = [s for s in streams if len(s.shape) == 3 and s.shape[1:] == (6, 6)]
                chosen = [grids[i] for i in rng.permutation(len(grids))[:int(
                    rng.integers(1, min(2, len(grids)) + 1))]]
                layer, stream = conv(chosen)
            elif kind == "pool":
                grids = [s for s in live if len(s.shape) == 3 and s.shape[1:] == (6, 6)]
                if not grids:
                    continue
                source = grids[int(rng.integers(len(grids)))]
                pool = PoolShape("sumpool", source.shape, (2, 2))
                layer = SumPool(name("pool"), pool, inputs=take([source]))
                stream = _Stream(layer.name, pool.out_shape, source.beats)
            else:
                chosen = [streams[i] for i in rng.permutation(len(streams))[:int(
                    rng.integers(1, min(3, len(streams)) + 1))]]
                layer, stream = dense(chosen)
            layers.append(layer)
            streams.append(stream)
            break
    rest = [s for s in streams[1:] if not s.used]
    last, stream = dense(rest)
    layers.append(last)
    if readout if readout is not None else bool(rng.integers(2)):
        params = ReadoutParams(weight=rng.integers(-60, 61, (3, stream.shape[0])),
                               bias=rng.integers(-9, 9, 3), VB=11)
        layers.append(Readout("readout", params.config(T, lanes=int(rng.integers(1, 4))),
                              params, inputs=(last.name,)))
    return Network(T=T, encoding={"kind": "spikes", "T": T}, layers=layers)
