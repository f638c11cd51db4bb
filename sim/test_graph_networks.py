"""Graph networks (SPEC 7) on Verilator against the integer twin, with random gaps and
back-pressure: forks, adds of two and three inputs, skips over one and two layers, an add
before a sum pool, and layers of several inputs (dense and conv2d, currents concatenated),
with and without a readout; and random graphs (dalif_hw/harness/random_graphs.py): one in the
default run, more with ``-m slow``."""

from __future__ import annotations

import numpy as np
import pytest

from dalif_hw import twin
from dalif_hw.core.conv import PoolShape
from dalif_hw.core.params import ConvParams, IntParams, ReadoutParams
from dalif_hw.harness.random_graphs import random_network
from dalif_hw.harness.verilator import build, expected_beats, run_bench
from dalif_hw.hw.emit import emit_network, write_outputs
from dalif_hw.hw.network import NetworkTop
from dalif_hw.quant.packed import Add, Conv2d, Dense, Network, Readout, SumPool

T = 2
ENCODING = {"kind": "spikes", "T": T}


def conv(rng, name, in_shape, K, inputs, lanes, acc_lanes, beat_cap=None):
    C = in_shape[0]
    params = ConvParams(weight=rng.integers(-8, 9, (K, C, 3, 3)),
                        alpha=rng.integers(150, 257, K), beta=rng.integers(0, 257, K),
                        threshold=rng.integers(2, 8, K), bias=rng.integers(-2, 3, K),
                        in_shape=in_shape, padding=(1, 1), WB=5, VB=11, beat_cap=beat_cap)
    return Conv2d(name, params.config(T, lanes=lanes, acc_lanes=acc_lanes), params,
                  inputs=inputs)


def dense(rng, name, m, n, inputs, lanes, beat_cap=None, weights=(-40, 41)):
    params = IntParams(weight=rng.integers(*weights, (n, m)), alpha=rng.integers(120, 257, n),
                       beta=rng.integers(0, 257, n), threshold=rng.integers(5, 40, n),
                       bias=rng.integers(-5, 6, n), VB=11, beat_cap=beat_cap)
    return Dense(name, params.config(T, lanes=lanes), params, inputs=inputs)


def residual_conv(rng) -> Network:
    """conv0 -> conv1 -> conv2; add0 = conv0 + conv2 (a skip over two layers); conv3 over
    add0 and conv1 (channels concatenated); add1 = conv3 + add0 + conv1 (three inputs);
    sum pool of add1 (an add before a pool); dense over the pool and conv3; readout."""
    return Network(T=T, encoding=ENCODING, layers=[
        conv(rng, "conv0", (1, 6, 6), 2, ("input",), 2, 4),
        conv(rng, "conv1", (2, 6, 6), 2, ("conv0",), 3, 3),
        conv(rng, "conv2", (2, 6, 6), 2, ("conv1",), 2, 2),
        Add("add0", (2, 6, 6), inputs=("conv0", "conv2")),
        conv(rng, "conv3", (4, 6, 6), 2, ("add0", "conv1"), 2, 4, beat_cap=216),
        Add("add1", (2, 6, 6), inputs=("conv3", "add0", "conv1")),
        SumPool("pool0", PoolShape("sumpool", (2, 6, 6), (2, 2)), inputs=("add1",)),
        dense(rng, "dense0", 90, 6, ("pool0", "conv3"), 3, beat_cap=360),
        Readout("readout", *_readout(rng, 6, 4), inputs=("dense0",))])


def _readout(rng, m, n, beat_cap=None):
    params = ReadoutParams(weight=rng.integers(-60, 61, (n, m)), bias=rng.integers(-9, 9, n),
                           VB=11, beat_cap=beat_cap)
    return params.config(T, lanes=2), params


def residual_dense(rng) -> Network:
    """A SEW block on a dense layer and a layer over the block and the network's input (a
    fork of the input); no readout: the last layer's spikes are the output."""
    return Network(T=T, encoding=ENCODING, layers=[
        dense(rng, "a", 10, 8, ("input",), 4),
        dense(rng, "b", 8, 8, ("a",), 3),
        Add("block", (8,), inputs=("a", "b")),
        dense(rng, "c", 18, 6, ("block", "input"), 2, beat_cap=26)])


def sew_readout(rng) -> Network:
    """A SEW block whose add feeds the readout: the readout counts a neuron that spiked in
    both inputs twice, beyond its M beats a timestep (its beat cap is m(x), SPEC 7)."""
    return Network(T=T, encoding=ENCODING, layers=[
        dense(rng, "a", 10, 8, ("input",), 4, weights=(-10, 41)),
        dense(rng, "b", 8, 8, ("a",), 3, weights=(-10, 41)),
        Add("block", (8,), inputs=("a", "b")),
        Readout("readout", *_readout(rng, 8, 4, beat_cap=16), inputs=("block",))])


def check(network: Network, folder, build_root, tmp_path, name: str, rng):
    write_outputs(folder, emit_network(NetworkTop(network), "dalif_network"))
    manifest = folder / "dalif_network.json"
    built = build(folder / "dalif_network.v", "dalif_network", build_root / name)
    cases = []
    for k, (density, gaps, backpressure) in enumerate([(0.5, 0.0, 0.0), (0.4, 0.3, 0.5),
                                                       (0.7, 0.5, 0.3)]):
        spikes = rng.random((4, T, network.inputs)) < density
        traces, logits = twin.run_network(network, spikes)
        events = [[np.flatnonzero(step).tolist() for step in sample] for sample in spikes]
        case = {"name": f"{name} {k}", "events": events, "gaps": gaps,
                "backpressure": backpressure, "seed": k}
        if network.has_readout:
            case["expected"] = {"logits": logits.tolist(),
                                "classes": logits.argmax(1).tolist()}
        else:
            case.update(expected=expected_beats(traces[-1].spikes_out), record=True)
        cases.append(case)
    results = run_bench(built, "dalif_network", manifest, cases, tmp_path)
    failed = [r for r in results if not r["ok"]]
    assert not failed, "; ".join(f"case {r['name']}: {r.get('message')}" for r in failed)
    assert len(results) == len(cases)
    return traces


def test_residual_conv_graph(build_root, tmp_path):
    rng = np.random.default_rng(21)
    network = residual_conv(rng)
    traces = check(network, build_root / "graph_conv_rtl", build_root, tmp_path, "graph_conv",
                   rng)
    # The adds must carry coinciding spikes, or the test would not see counted beats.
    spikes = {layer.name: trace.spikes_out for layer, trace in
              zip(network.weighted, traces)}
    assert (spikes["conv0"] & spikes["conv2"]).any()
    assert all(trace.spikes_out.mean() > 0.02 for trace in traces)


def test_residual_dense_graph_without_readout(build_root, tmp_path):
    rng = np.random.default_rng(22)
    network = residual_dense(rng)
    traces = check(network, build_root / "graph_dense_rtl", build_root, tmp_path,
                   "graph_dense", rng)
    assert (traces[0].spikes_out & traces[1].spikes_out).any()
    assert all(trace.spikes_out.mean() > 0.02 for trace in traces)


def test_readout_after_an_add(build_root, tmp_path):
    rng = np.random.default_rng(23)
    network = sew_readout(rng)
    traces = check(network, build_root / "graph_readout_rtl", build_root, tmp_path,
                   "graph_readout", rng)
    both = traces[0].spikes_out.astype(int) + traces[1].spikes_out
    assert (both.sum(axis=2) > 8).any(), "no timestep where the readout takes more than M"


#: Random graphs: the first in the default run, the rest with -m slow.
RANDOM_SEEDS = [3, 4, 0, 1, 2, 5, 6, 7]


@pytest.mark.parametrize("seed", [pytest.param(s, marks=pytest.mark.slow) if k else s
                                  for k, s in enumerate(RANDOM_SEEDS)])
def test_random_graph(seed, build_root, tmp_path):
    network = random_network(seed)
    assert not network.is_chain
    traces = check(network, build_root / f"graph_random{seed}_rtl", build_root, tmp_path,
                   f"graph_random{seed}", np.random.default_rng(seed))
    assert all(trace.spikes_out.mean() > 0.02 for trace in traces)
