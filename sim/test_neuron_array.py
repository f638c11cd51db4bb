"""Generated neuron arrays on Verilator against the integer twin, bit for bit.

A handful of builds (the fixed configurations below, the committed default array, and
random shapes drawn from the run's seed: 4 by default, 20 more with ``-m slow``) each run many
random cases: new parameters loaded through the configuration port, random spike trains with
repeated indices, gaps on input valid together with back-pressure on output ready (random,
bursts or periodic). Every output beat (spike indices and eot markers, in order) must equal
the twin's; a mismatch names the sample, timestep and beat; the output must keep the
AXI-Stream hold rule. The bench drives the array only through its manifest (and
``dalif_hw.harness.drivers``). The seed is printed at the start and end of the run;
``pytest --sim-seed SEED`` draws the same shapes again.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from dalif_hw import twin
from dalif_hw.core.config import RESETS, ArrayConfig, ConfigError, signed_range
from dalif_hw.core.params import IntParams
from dalif_hw.harness.verilator import build, config_writes, expected_beats, run_bench
from dalif_hw.hw import cost
from dalif_hw.hw.emit import emit_array, write_outputs
from dalif_hw.hw.neuron_array import NeuronArray
from dalif_hw.quant.packed import Dense

ROOT = Path(__file__).parent.parent

#: name -> ArrayConfig arguments. Each is one Verilator build.
CONFIGS = {
    # P = 1, hard reset, M not a power of two (indices 7 is out of range), a beat cap
    # below M.
    "p1": dict(neurons=5, inputs=7, T=3, lanes=1, reset="hard", VB=12, beat_cap=4),
    # 1 < P < N, N not a multiple of P, soft reset, T = 1.
    "p4": dict(neurons=10, inputs=6, T=1, lanes=4, reset="soft", VB=10),
    # P = N, per-layer threshold, no bias, a beat cap above M (as behind a sum pool).
    "pn": dict(neurons=8, inputs=12, T=2, lanes=8, reset="soft", per_neuron_threshold=False,
               bias=False, beat_cap=30),
    # M = N, T = 4, narrow membrane that saturates, few decay bits, no DSP blocks, the
    # subtract reset (snnTorch's).
    "t4": dict(neurons=20, inputs=20, T=4, lanes=3, reset="subtract", WB=8, DB=6, VB=9,
               multipliers="logic"),
    # One input (index width 1, index 1 out of range), hard reset.
    "m1": dict(neurons=3, inputs=1, T=2, lanes=2, reset="hard", WB=6, DB=3, VB=8),
    # 16 lanes over 40 neurons (last group part-full), wide words; DSP blocks for 16 alpha
    # and 5 beta products, the other 11 in logic (as a budget cuts them).
    "p16": dict(neurons=40, inputs=33, T=3, lanes=16, reset="hard", WB=10, DB=10, VB=18,
                dsp_blocks=21),
    # Accumulation lanes: 4 groups of 4 to a word of 16, 3 words (the last holds 2 groups,
    # part-full), no reset; and 4 groups of 2 to a word, 2 words (forwarding between beats).
    "acc4": dict(neurons=38, inputs=9, T=2, lanes=4, acc_lanes=16, reset="none", VB=14),
    "acc2w": dict(neurons=11, inputs=5, T=3, lanes=2, acc_lanes=8, reset="soft", WB=5,
                  per_neuron_threshold=False),
}
#: Keys of CONFIGS that are NeuronArray arguments, not ArrayConfig ones.
HARDWARE = ("multipliers", "dsp_blocks")


def array_config(shape: dict) -> ArrayConfig:
    """The ArrayConfig of a CONFIGS shape (its :data:`HARDWARE` keys left out)."""
    return ArrayConfig(**{k: v for k, v in shape.items() if k not in HARDWARE})

FIXED = list(CONFIGS)  # the random shapes join CONFIGS at collection
DEFAULT = "default"  # rtl/dalif_array.v as committed
#: Random shapes per run: built by default, and more under ``-m slow``.
RANDOM_DEFAULT, RANDOM_SLOW = 4, 20
#: Patterns of input gaps and output back-pressure (dalif_hw.harness.drivers.pattern); round
#: k of a random test uses GAPS[k % 4] and BACKPRESSURE[k % 4]: always both.
GAPS = [0.2, {"kind": "bursts", "on": 6, "off": 3}, {"kind": "periodic", "every": 3}, 0.6]
BACKPRESSURE = [{"kind": "bursts", "on": 4, "off": 4}, 0.3, 0.2,
                {"kind": "periodic", "every": 2}]


def random_shape(rng) -> dict:
    """ArrayConfig arguments (and :data:`HARDWARE` ones) of a small random array."""
    while True:
        neurons = int(rng.integers(1, 41))
        shape = dict(neurons=neurons, inputs=int(rng.integers(1, 41)),
                     T=int(rng.integers(1, 5)), lanes=int(rng.integers(1, min(neurons, 16) + 1)),
                     WB=int(rng.integers(2, 11)), DB=int(rng.integers(1, 11)),
                     VB=int(rng.integers(4, 20)), reset=str(rng.choice(RESETS)),
                     per_neuron_threshold=bool(rng.random() < 0.7),
                     bias=bool(rng.random() < 0.7),
                     beat_cap=None if rng.random() < 0.6 else int(rng.integers(1, 90)),
                     multipliers=str(rng.choice(["dsp", "logic"])))
        groups = -(-neurons // shape["lanes"])
        if rng.random() < 0.4:
            shape["acc_lanes"] = shape["lanes"] * int(rng.integers(1, groups + 1))
        if shape["multipliers"] == "dsp" and rng.random() < 0.4:
            shape["dsp_blocks"] = int(rng.integers(0, 2 * shape["lanes"]))
        try:
            array_config(shape)
        except ConfigError:
            continue
        return shape


def random_shapes(seed: int) -> dict[str, dict]:
    """The run's random shapes, named by their sizes."""
    rng = np.random.default_rng(seed)
    shapes = {}
    for k in range(RANDOM_DEFAULT + RANDOM_SLOW):
        s = random_shape(rng)
        shapes[f"r{k}-N{s['neurons']}-M{s['inputs']}-P{s['lanes']}-T{s['T']}"] = s
    return shapes


def pytest_generate_tests(metafunc):
    """Every bench runs on the fixed configurations, the default array and the run's random
    shapes (the seed comes from the controlling process: conftest.py)."""
    if "name" not in metafunc.fixturenames:
        return
    shapes = random_shapes(metafunc.config.sim_seed)
    CONFIGS.update(shapes)
    names = [*FIXED, DEFAULT] + [
        pytest.param(name, marks=pytest.mark.slow) if k >= RANDOM_DEFAULT else name
        for k, name in enumerate(shapes)]
    metafunc.parametrize("name", names)


def random_params(config: ArrayConfig, rng, style: str = "mixed") -> IntParams:
    """Random parameters; ``style='saturate'`` uses extreme weights to hit both rails."""
    n, m = config.neurons, config.inputs
    wlo, whi = signed_range(config.WB)
    vlo, vhi = signed_range(config.VB)
    if style == "saturate":
        weight = rng.choice([wlo, whi], (n, m))
    else:
        weight = rng.integers(wlo, whi + 1, (n, m))
    one = 1 << config.DB
    alpha = rng.integers(0, one + 1, n)
    beta = rng.integers(0, one + 1, n)
    alpha[rng.random(n) < 0.2] = one
    # Thresholds around a few weights' worth of current, some negative: plenty of spikes.
    shape = n if config.per_neuron_threshold else ()
    threshold = np.clip(rng.integers(-whi // 2, whi * 2, shape), vlo, vhi)
    if style == "saturate" and config.per_neuron_threshold:
        # Thresholds on the rails too: V below the range still fires at threshold = lo.
        threshold[rng.random(n) < 0.2] = vlo
        threshold[rng.random(n) < 0.1] = vhi
    bias = np.clip(rng.integers(-whi // 2, whi // 2 + 1, n), vlo, vhi) if config.bias \
        else None
    return IntParams(weight=weight, alpha=alpha, beta=beta, threshold=threshold, bias=bias,
                     WB=config.WB, DB=config.DB, VB=config.VB, reset=config.reset,
                     beat_cap=None if config.beat_cap == m else config.beat_cap)


def random_events(config: ArrayConfig, rng, samples: int, density: float,
                  bad: bool = False) -> list:
    """Per sample and timestep, spike indices in arrival order (repeats allowed).

    With ``bad``, some timesteps get out-of-range indices or more than B beats (always the
    first: with few timesteps, chance alone would sometimes give none).
    """
    top = 1 << config.in_index_width
    events = []
    for s in range(samples):
        sample = []
        for t in range(config.T):
            count = rng.binomial(config.beat_cap, density)  # never more than B: no drops
            step = rng.integers(0, config.inputs, count).tolist()
            if bad and (rng.random() < 0.5 or s == t == 0):
                step += rng.integers(0, config.inputs, config.beat_cap + 2).tolist()
            if bad and top > config.inputs and rng.random() < 0.5:
                step.insert(int(rng.integers(0, len(step) + 1)),
                            int(rng.integers(config.inputs, top)))
            sample.append(step)
        events.append(sample)
    return events


def make_case(name, params, events, **options) -> dict:
    trace = twin.run(params, events)
    case = {"name": name, "events": events, "expected": expected_beats(trace.spikes_out),
            **options}
    return case


def config_of(name: str) -> ArrayConfig:
    if name == DEFAULT:
        manifest = json.loads((ROOT / "rtl" / "dalif_array.json").read_text())
        p = manifest["params"]
        return ArrayConfig(p["neurons"], p["inputs"], p["T"], p["WB"], p["DB"], p["VB"],
                           p["reset"], lanes=p["lanes"], acc_lanes=p["acc_lanes"],
                           per_neuron_threshold=p["threshold"] == "per-neuron", bias=p["bias"])
    return array_config(CONFIGS[name])


def initial_params(name: str, config: ArrayConfig) -> IntParams | None:
    """The parameters a build is generated with (random for the small ones, to test init)."""
    if name == DEFAULT:
        return None
    # A seed of its own per configuration (len(name) * 7919 gave five of six the same one).
    return random_params(config, np.random.default_rng(zlib.crc32(name.encode())))


def built(name: str, build_root: Path):
    """Generate (small configurations) and build once; return (build dir, manifest path)."""
    config = config_of(name)
    if name == DEFAULT:
        folder = ROOT / "rtl"
    else:
        folder = build_root / f"{name}_rtl"
        array = NeuronArray(config, initial_params(name, config),
                            multipliers=CONFIGS[name].get("multipliers", "dsp"),
                            dsp_blocks=CONFIGS[name].get("dsp_blocks"))
        write_outputs(folder, emit_array(array, "dalif_array"))
    build_dir = build(folder / "dalif_array.v", "dalif_array", build_root / name)
    return build_dir, folder / "dalif_array.json"


def check(results: list[dict]):
    failed = [r for r in results if not r["ok"]]
    assert not failed, "; ".join(f"case {r['name']}: {r.get('message')}" for r in failed)


def test_random_cases(name, build_root, tmp_path):
    """Random parameters through the config port, random traffic with gaps and back-pressure."""
    build_dir, manifest_path = built(name, build_root)
    manifest = json.loads(manifest_path.read_text())
    config = config_of(name)
    rng = np.random.default_rng(2024)
    cases = []
    initial = initial_params(name, config)
    if initial is not None:
        # First with the values the array was generated with: checks the memory init.
        cases.append(make_case("generated init", initial,
                               random_events(config, rng, 3, 0.4), gaps=0.3,
                               backpressure=0.3, seed=1))
    big = config.neurons * config.inputs > 10000
    rounds = 2 if big else 8
    for k in range(rounds):
        style = "saturate" if k % 4 == 3 else "mixed"
        params = random_params(config, rng, style)
        density = [0.1, 0.4, 0.8, 1.3][k % 4] if not big else [0.05, 0.15][k % 2]
        samples = 2 if big else 5
        cases.append(make_case(f"round {k} ({style}, density {density})", params,
                               random_events(config, rng, samples, min(density, 1.0)),
                               config=[config_writes(manifest, params)],
                               gaps=GAPS[k % 4], backpressure=BACKPRESSURE[k % 4],
                               seed=k, expect_err=0))
    results = run_bench(build_dir, "dalif_array", manifest_path, cases, tmp_path)
    check(results)
    assert len(results) == len(cases)


def test_errors_and_reset(name, build_root, tmp_path):
    """Dropped beats raise the sticky flag and are dropped as the twin drops them; reset
    clears the flag and all state, including a half-finished sample."""
    build_dir, manifest_path = built(name, build_root)
    manifest = json.loads(manifest_path.read_text())
    config = config_of(name)
    rng = np.random.default_rng(7)
    params = random_params(config, rng)
    samples = 1 if config.neurons * config.inputs > 10000 else 3
    events = random_events(config, rng, samples, 0.5, bad=True)
    flat = [j for sample in events for step in sample for j in step]
    assert any(j >= config.inputs for j in flat) or any(
        len(step) > config.beat_cap for sample in events for step in sample)
    cases = [make_case("dropped beats", params, events, config=[config_writes(manifest, params)],
                       gaps=0.2, backpressure=0.2, seed=3, expect_err=1)]
    # After a reset: the flag is clear. A prefix of one timestep plus stray beats of the
    # next is abandoned by a reset; the samples after it start from zero.
    clean = random_events(config, rng, 2, 0.5)
    prefix_events = [clean[0][0], *([[]] * (config.T - 1))]
    prefix_expected = expected_beats(twin.run(params, [prefix_events]).spikes_out)[0][:1]
    prefix_beats = [[j, 0] for j in clean[0][0]] + [[0, 1]] + (
        [[j, 0] for j in clean[1][0]] if config.T > 1 else [])
    cases.append(make_case("after reset", params, clean, reset=True, expect_err=0,
                           prefix={"beats": prefix_beats, "expected": prefix_expected},
                           gaps=0.1, backpressure=0.1, seed=4))
    check(run_bench(build_dir, "dalif_array", manifest_path, cases, tmp_path))


def test_throughput_bound(name, build_root, tmp_path, capsys):
    """Steady state (valid whenever a beat waits, ready always): cycles within the cost
    model, dalif_hw.hw.cost.layer_cycles, summed over the timesteps of the run: per timestep
    max(GA E, G, F + 1) + PIPELINE (8) where the array has a second set of accumulators (the
    next timestep accumulates during the pass; the manifest's ``overlap``), max(GA E + G,
    F + 1) + PIPELINE where it has one; GA = ceil(N/A) the words a beat walks (E the beats
    counted; each beat dropped past the beat cap takes a cycle more) and G = ceil(N/P) the
    groups of the update pass (the manifest's ``cycles_per_input_beat`` and
    ``cycles_per_update_pass``, checked here against the config); with overlap, once more
    the pass of the last timestep, which nothing overlaps.

    Cycles are counted as the spec defines them, from the first input beat to the last output
    eot; 48 timesteps amortise the one-off fill and drain (for the default array at E = M,
    about 270 cycles: the pipeline plus the last timestep's F + 1 output beats).
    """
    build_dir, manifest_path = built(name, build_root)
    manifest = json.loads(manifest_path.read_text())
    config = config_of(name)
    rng = np.random.default_rng(11)
    params = random_params(config, rng)
    # Fire a lot: low thresholds make F large, so both terms of the bound are exercised.
    params = IntParams(weight=np.abs(np.maximum(params.weight, -signed_range(config.WB)[1])),
                       alpha=params.alpha, beta=params.beta,
                       threshold=np.zeros_like(params.threshold) + 1, bias=params.bias,
                       WB=params.WB, DB=params.DB, VB=params.VB, reset=params.reset,
                       beat_cap=params.beat_cap)
    GA, G = config.acc_groups, config.groups
    pipeline = manifest["pipeline"]
    layer = Dense("array", config, params)
    assert (pipeline["cycles_per_input_beat"], pipeline["cycles_per_update_pass"],
            pipeline["overlap"]) == (GA, G, cost.overlaps(layer))
    cases, bounds = [], []
    samples = -(-48 // config.T)
    for E in sorted({0, 1, min(4, config.inputs), config.inputs}):
        events = [[rng.integers(0, config.inputs, E).tolist() for _ in range(config.T)]
                  for _ in range(samples)]
        load = {} if cases else {"config": [config_writes(manifest, params)]}
        cases.append(make_case(f"E={E}", params, events, **load))
        trace = twin.run(params, events)
        dropped = cost.dropped_beats(events, trace.counts_in)   # past the cap: a cycle each
        bounds.append(int(cost.layer_cycles(layer, trace.counts_in, trace.spikes_out,
                                            dropped).sum() + cost.overlaps(layer) * G))
    results = run_bench(build_dir, "dalif_array", manifest_path, cases, tmp_path)
    check(results)
    lines = []
    for result, bound, case in zip(results, bounds, cases):
        timesteps = samples * config.T
        cycles = result["last_out"] - result["first_in"] + 1
        steady = np.median(np.diff(result["eot_cycles"]))
        lines.append(f"{name} N={config.neurons} P={config.lanes} A={config.acc_lanes} "
                     f"overlap {pipeline['overlap']} {case['name']}: "
                     f"{cycles / timesteps:.2f} cycles/timestep over {timesteps} "
                     f"(steady {steady:.0f}, bound {bound / timesteps:.2f})")
        assert cycles <= bound, lines[-1]
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def test_the_hold_monitor_catches_an_output_that_drops_valid(build_root, tmp_path):
    """The bench's AXI-Stream monitor fails a case whose DUT lowers valid while stalled
    (the formal harness's broken output stage, in place of the array's own)."""
    from dalif_hw.harness.formal import Harness
    from dalif_hw.hw.emit import to_verilog

    config = array_config(CONFIGS["p4"])
    params = random_params(config, np.random.default_rng(1))
    folder = build_root / "broken_rtl"
    files = emit_array(NeuronArray(config, params), "dalif_array")
    files["dalif_array.v"] = to_verilog(
        Harness(NeuronArray(config, params), (), broken="drops-valid"), "dalif_array")
    write_outputs(folder, files)
    build_dir = build(folder / "dalif_array.v", "dalif_array", build_root / "broken")
    events = random_events(config, np.random.default_rng(2), 4, 0.8)
    results = run_bench(build_dir, "dalif_array", folder / "dalif_array.json",
                        [make_case("stalled output", params, events, gaps=0.1,
                                   backpressure=0.6, seed=5, max_cycles=5000)], tmp_path)
    assert not results[0]["ok"]
    assert "valid dropped before the beat was taken" in results[0]["message"], results[0]
