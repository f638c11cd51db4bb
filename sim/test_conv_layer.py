"""Generated conv2d layers on Verilator against the integer twin, bit for bit (SPEC 6).

A few builds (the shapes below and one drawn from the run's seed) each run random cases:
new parameters through the configuration port (per-channel and per-neuron values, as the
manifest's memories say), random spike trains with repeats, gaps and back-pressure together.
The bench knows the layer only through its manifest. Steady-state cycles per timestep are
checked against the cost model, dalif_hw.hw.cost: max(A, U, F + 1) + 8 (A: the operations
the counted beats take, cost.operations; U: the update pass's words, during
which the next timestep accumulates; F: output spikes).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
from test_neuron_array import BACKPRESSURE, GAPS, check, make_case, random_events

from dalif_hw import twin
from dalif_hw.core.config import RESETS
from dalif_hw.core.conv import ConvShape
from dalif_hw.core.params import ConvParams
from dalif_hw.harness.verilator import build, config_writes, run_bench
from dalif_hw.hw import cost
from dalif_hw.hw.emit import emit_array, write_outputs
from dalif_hw.hw.neuron_array import NeuronArray
from dalif_hw.quant.packed import Conv2d

#: name -> (ConvShape arguments, (lanes, acc_lanes), params options). One Verilator build
#: each.
SHAPES = {
    # 3x3, padding 1: the digits network's layer, per-channel decays and bias; a spike
    # reaches all 4 channels at once.
    "c3x3": (dict(in_shape=(1, 8, 8), channels=4, kernel=(3, 3), padding=(1, 1)), (4, 16),
             dict(per="channel", threshold="layer", reset="hard", WB=4)),
    # Stride 2, a wide kernel, WO = 5 over P = 3 (a partial block in every row), per neuron;
    # 2 channels at once of 3 (a partial channel group).
    "c5s2": (dict(in_shape=(2, 7, 9), channels=3, kernel=(3, 5), stride=(2, 2),
                  padding=(1, 2)), (3, 6),
             dict(per="neuron", threshold="neuron", reset="subtract", WB=6)),
    # The kernel is the whole input: one output position per channel; a row of 5 columns
    # in runs of 1.
    "whole": (dict(in_shape=(2, 4, 5), channels=2, kernel=(4, 5)), (1, 1),
              dict(per="channel", threshold="channel", reset="soft", WB=8)),
    # 1x1, stride 2: pixels between the strides reach no neuron.
    "c1x1": (dict(in_shape=(3, 5, 4), channels=5, kernel=(1, 1), stride=(2, 2)), (2, 2),
             dict(per="neuron", threshold="layer", reset="none", WB=5)),
    # Max pooling of currents (SPEC 6 current_pool): windows of 2 x 3 over 5 x 7 pre-pool
    # positions, so the last row and column are dropped (a whole block of pre-pool columns
    # is, at 3 columns a run); 2 channels at once of 3; per-neuron bias added after the max.
    # (snnTorch's tutorial order, 2 x 2 windows, runs from the walk-through of
    # tests/test_docs_snntorch.py; half of the random shapes pool too.)
    "pool2x3": (dict(in_shape=(2, 7, 9), channels=3, kernel=(3, 3), pool=(2, 3)), (1, 2),
                dict(per="neuron", threshold="neuron", reset="hard", WB=6)),
}


def random_shape(rng) -> tuple:
    while True:
        C, H, W = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
        KH, KW = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
        args = dict(in_shape=(C, H, W), channels=int(rng.integers(1, 5)), kernel=(KH, KW),
                    stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                    padding=(int(rng.integers(0, KH)), int(rng.integers(0, KW))))
        shape = ConvShape(**args)
        _, HO, WO = shape.out_shape
        if rng.random() < 0.5:       # max pooling of the currents, half of the draws
            args["pool"] = (int(rng.integers(1, HO + 1)), int(rng.integers(1, WO + 1)))
            shape = ConvShape(**args)
        lanes = int(rng.integers(1, shape.out_shape[2] + 1))
        lanes = (lanes, lanes * int(rng.integers(1, args["channels"] + 1)))
        return args, lanes, dict(per=str(rng.choice(["channel", "neuron"])),
                                 threshold=str(rng.choice(["layer", "channel", "neuron"])),
                                 reset=str(rng.choice(RESETS)),
                                 WB=int(rng.integers(4, 9)))


def pytest_generate_tests(metafunc):
    if "conv" not in metafunc.fixturenames:
        return
    rng = np.random.default_rng(metafunc.config.sim_seed)
    args, lanes, options = random_shape(rng)
    name = (f"rand-C{args['in_shape'][0]}-{args['in_shape'][1]}x{args['in_shape'][2]}"
            f"-K{args['channels']}-k{args['kernel'][0]}x{args['kernel'][1]}"
            + ("-pool{}x{}".format(*args["pool"]) if "pool" in args else ""))
    SHAPES[name] = (args, lanes, options)
    metafunc.parametrize("conv", list(SHAPES))


def conv_params(shape: ConvShape, options: dict, rng, VB: int = 12) -> ConvParams:
    K, N = shape.channels, shape.neurons
    C = shape.in_shape[0]
    n = K if options["per"] == "channel" else N
    th = {"layer": (), "channel": (K,), "neuron": (N,)}[options["threshold"]]
    whi = (1 << (options["WB"] - 1)) - 1
    return ConvParams(
        weight=rng.integers(-whi - 1, whi + 1, (K, C, *shape.kernel)),
        alpha=rng.integers(100, 257, n), beta=rng.integers(0, 257, n),
        threshold=rng.integers(1, 2 * whi + 2, th), bias=rng.integers(-whi // 2, whi // 2 + 1, n),
        in_shape=shape.in_shape, stride=shape.stride, padding=shape.padding,
        current_pool=shape.pool, WB=options["WB"], DB=8, VB=VB, reset=options["reset"])


def built(name: str, build_root: Path):
    args, lanes, options = SHAPES[name]
    shape = ConvShape(**args)
    params = conv_params(shape, options, np.random.default_rng(zlib.crc32(name.encode())))
    config = params.config(2, lanes=lanes[0], acc_lanes=lanes[1])
    folder = build_root / f"conv_{name}_rtl"
    write_outputs(folder, emit_array(NeuronArray(config, params), "dalif_array"))
    build_dir = build(folder / "dalif_array.v", "dalif_array", build_root / f"conv_{name}")
    return build_dir, folder / "dalif_array.json", shape, options, config, params


def test_random_conv_cases(conv, build_root, tmp_path):
    build_dir, manifest_path, shape, options, config, generated = built(conv, build_root)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["params"]["kind"] == "conv2d"
    rng = np.random.default_rng(2026)
    cases = [make_case("generated init", generated, random_events(config, rng, 3, 0.4),
                       gaps=0.3, backpressure=0.3, seed=1)]
    for k in range(4):
        params = conv_params(shape, options, rng)
        cases.append(make_case(f"round {k}", params,
                               random_events(config, rng, 3, [0.1, 0.5, 0.9, 0.3][k]),
                               config=[config_writes(manifest, params)], gaps=GAPS[k],
                               backpressure=BACKPRESSURE[k], seed=k, expect_err=0))
    # Dropped beats (out of range, past the beat cap) and a reset.
    events = random_events(config, rng, 2, 0.5, bad=True)
    cases.append(make_case("dropped beats", params, events, gaps=0.2, backpressure=0.2,
                           seed=9, expect_err=int(twin.run(params, events).dropped.any())))
    cases.append(make_case("after reset", params, random_events(config, rng, 2, 0.5),
                           reset=True, expect_err=0, gaps=0.1, backpressure=0.4, seed=10))
    check(run_bench(build_dir, "dalif_array", manifest_path, cases, tmp_path))




def test_conv_throughput_bound(conv, build_root, tmp_path, capsys):
    """Input valid whenever a beat waits, output always ready: cycles within the cost model
    (dalif_hw.hw.cost.layer_cycles: max(A, U, F + 1) + 8 per timestep), A and U as above, and
    a cycle for each beat dropped past the beat cap."""
    build_dir, manifest_path, shape, options, config, _ = built(conv, build_root)
    manifest = json.loads(manifest_path.read_text())
    rng = np.random.default_rng(12)
    # Thresholds of 1 (in the layer's own granularity): many spikes, so F matters too.
    params = conv_params(shape, options, rng)
    params = ConvParams(**{**params.__dict__, "threshold": np.ones_like(params.threshold)})
    U = manifest["pipeline"]["cycles_per_update_pass"]
    samples = -(-24 // config.T)
    cases, lines = [], []
    for density in (0.0, 0.2, 1.0):
        events = [[rng.integers(0, config.inputs, rng.binomial(config.inputs, density)).tolist()
                   for _ in range(config.T)] for _ in range(samples)]
        trace = twin.run(params, events)
        layer = Conv2d(conv, config, params)
        A = trace.counts_in @ cost.operations(layer)
        F = trace.spikes_out.sum(axis=2)
        # Per timestep (a dropped beat a cycle), and once more the pass of the last one,
        # which nothing overlaps.
        dropped = cost.dropped_beats(events, trace.counts_in)
        bound = int(cost.layer_cycles(layer, trace.counts_in, trace.spikes_out, dropped).sum()
                    + cost.overlaps(layer) * cost.pass_operations(layer))
        load = {} if cases else {"config": [config_writes(manifest, params)]}
        cases.append((make_case(f"density {density}", params, events, **load), bound,
                      int(np.maximum(np.maximum(A, U), F + 1).sum())))
    results = run_bench(build_dir, "dalif_array", manifest_path, [c for c, _, _ in cases],
                        tmp_path)
    check(results)
    timesteps = samples * config.T
    for result, (case, bound, ideal) in zip(results, cases):
        cycles = result["last_out"] - result["first_in"] + 1
        lines.append(f"conv {conv} P={config.lanes} A={config.acc_lanes} G={U} {case['name']}: "
                     f"{cycles / timesteps:.2f} cycles/timestep (bound {bound / timesteps:.2f}, "
                     f"max(A, U, F+1) {ideal / timesteps:.2f})")
        assert cycles <= bound, lines[-1]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
