"""Convolutional networks on the accelerator: cycles, resources and Fmax.

    python benchmarks/conv.py --out benchmarks/results            # MNIST-shaped, ECP5-85F
    python benchmarks/conv.py --out benchmarks/results --seeds 1,2,3
    python benchmarks/conv.py --out benchmarks/results --no-synth # Verilator only
    python benchmarks/conv.py --out benchmarks/results --pnr-timeout 7200   # a slow route

An MNIST-shaped network, conv 5x5 16 ch -> sum pool 2 -> conv 5x5 32 ch -> sum pool 2 ->
dense 128 -> readout 10 on 28x28 inputs (the scikit-learn digits upscaled, thermometer-coded,
T = 4), with *random* weights (not trained): every layer's threshold is set so that about
10% of its neurons fire per timestep on the inputs (within 5-20%, printed). The network is
generated, a few digits run on Verilator against the integer twin (0 mismatches required),
and it is synthesized for the ECP5-85F (nextpnr seeds ``--seeds``; the first sets the
figures). Then, in the same run, the same network in PyTorch on this machine (float32, batch 1
and 100, one thread and all) and the integer twin, beside the accelerator's microseconds per
image (cycles / post-route Fmax); and per layer the synaptic operations per inference, per
cycle, and the lane utilization. Writes ``conv_mnist_shaped.json`` and
``conv_mnist_shaped.md`` into ``--out``. Cycle counts are exact (Verilator).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dalif_hw import twin  # noqa: E402
from dalif_hw.core.conv import PoolShape  # noqa: E402
from dalif_hw.core.encoding import encode  # noqa: E402
from dalif_hw.core.files import write_text_atomic  # noqa: E402
from dalif_hw.core.params import ConvParams, IntParams, ReadoutParams  # noqa: E402
from dalif_hw.core.tools import ToolError  # noqa: E402
from dalif_hw.flow.explore import cycles_per_inference  # noqa: E402
from dalif_hw.flow.synthesis import DoesNotFit, synthesize  # noqa: E402
from dalif_hw.harness.verilator import build, run_bench  # noqa: E402
from dalif_hw.hw.emit import emit_network, write_outputs  # noqa: E402
from dalif_hw.hw.network import NetworkTop  # noqa: E402
from dalif_hw.model.train import load_digits_split  # noqa: E402
from dalif_hw.quant.packed import (  # noqa: E402
    Conv2d,
    Dense,
    Network,
    Readout,
    SumPool,
    Weighted,
)

T = 4
ENCODING = {"kind": "thermometer", "T": T, "max_value": 16.0}
TARGET_RATE = 0.10
# accumulation lanes (PK x P) of conv0, conv1 and the dense layer; P is 8, 8 and 16. conv0
# at 8 x 16 = 128 left the ECP5-85F at 85% of its LUTs, where nextpnr's router did not finish
# in an hour; at 64 conv0 is still faster than conv1, which sets the pace (docs/hardware.md).
ACC_LANES = (64, 256, 48)
# A second set of accumulators (ArrayConfig.second_set) for conv0, conv1 and the dense layer:
# conv0 would get one set by the 64-kbit rule (two take 32 more block RAMs, 195 of 208), but
# its update pass (1,152 groups a timestep) then follows its accumulation, and it sets the pace.
SECOND_SET = (True, None, None)


def upscale(x: np.ndarray, size: int = 28) -> np.ndarray:
    """8x8 digits to size x size, nearest neighbour."""
    index = (np.arange(size) * 8) // size
    return x.reshape(-1, 8, 8)[:, index][:, :, index].reshape(len(x), size * size)


def calibrated(params, spikes) -> tuple:
    """``params`` with one threshold for the layer, set so that about TARGET_RATE of the
    neurons fire per timestep on ``spikes``; returns (params, rate)."""
    lo, hi = 1, (1 << (params.VB - 1)) - 1
    rate = 0.0
    while lo < hi:
        mid = (lo + hi) // 2
        trial = type(params)(**{**params.__dict__, "threshold": np.array(mid)})
        rate = twin.run(trial, spikes).spikes_out.mean()
        lo, hi = (mid + 1, hi) if rate > TARGET_RATE else (lo, mid)
    params = type(params)(**{**params.__dict__, "threshold": np.array(lo)})
    return params, float(twin.run(params, spikes).spikes_out.mean())


def mnist_shaped(spikes: np.ndarray, rng) -> tuple[Network, list]:
    layers, rates, x = [], [], spikes
    shapes = [((1, 28, 28), 16), ((16, 12, 12), 32)]
    for k, (in_shape, K) in enumerate(shapes):
        cap = None if k == 0 else 4 * int(np.prod(in_shape))
        conv = ConvParams(weight=rng.integers(-8, 8, (K, in_shape[0], 5, 5)),
                          alpha=np.full(K, 256), beta=np.full(K, 128), threshold=np.array(1),
                          bias=np.zeros(K, np.int64), in_shape=in_shape, WB=4, VB=16,
                          beat_cap=cap)
        conv, rate = calibrated(conv, x)
        rates.append((f"conv{k}", rate))
        layers.append(Conv2d(f"conv{k}", conv.config(T, lanes=8, acc_lanes=ACC_LANES[k],
                                                     second_set=SECOND_SET[k]), conv, 1.0))
        x = twin.run(conv, x).spikes_out
        pool = PoolShape("sumpool", conv.shape.out_shape, (2, 2))
        layers.append(SumPool(f"pool{k}", pool))
        x = twin.pool(pool, x)
    dense = IntParams(weight=rng.integers(-8, 8, (128, x.shape[2])), alpha=np.full(128, 256),
                      beta=np.full(128, 128), threshold=np.array(1),
                      bias=np.zeros(128, np.int64), WB=4, VB=16, beat_cap=4 * 512)
    dense, rate = calibrated(dense, x)
    rates.append(("hidden0", rate))
    layers.append(Dense("hidden0", dense.config(T, lanes=16, acc_lanes=ACC_LANES[2],
                                                second_set=SECOND_SET[2]), dense, 1.0))
    readout = ReadoutParams(weight=rng.integers(-8, 8, (10, 128)), WB=4, VB=16)
    layers.append(Readout("readout", readout.config(T, lanes=10), readout, 1.0))
    return Network(T=T, encoding=ENCODING, layers=layers), rates


def torch_network(network: Network):
    """The same network in PyTorch, float32, as its users would run it: per timestep a
    conv2d / linear, the DA-LIF update with the layer's decays, threshold and hard reset,
    sum pooling as average pooling times the window; the readout sums its currents.
    Returns ``forward(x)``, x [B, T, M] float32 -> logits [B, classes]."""
    import torch
    import torch.nn.functional as F

    stages = []
    for layer in network.layers:
        if not isinstance(layer, Weighted):
            stages.append(("pool", layer.pool.in_shape, layer.pool.window))
            continue
        p, one = layer.params, float(1 << getattr(layer.params, "DB", 0))
        t = lambda v: torch.tensor(np.asarray(v, np.float32))  # noqa: E731
        if isinstance(layer, Readout):
            stages.append(("readout", t(p.weight), t(p.biases())))
            continue
        if isinstance(layer, Conv2d):
            per = {name: p.per_neuron(name) for name in ("alpha", "beta", "bias")}
            weight = (t(p.weight), p.shape)
        else:
            per = {"alpha": p.alpha, "beta": p.beta, "bias": p.biases()}
            weight = (t(p.weight), None)
        stages.append((layer.kind, weight, t(per["bias"]), t(per["alpha"]) / one,
                       t(per["beta"]) / one, float(p.threshold)))

    def forward(x):
        B, T, _ = x.shape
        state = [None] * len(stages)
        logits = 0.0
        for step in range(T):
            h = x[:, step]
            for n, stage in enumerate(stages):
                if stage[0] == "pool":
                    (C, H, W), window = stage[1], stage[2]
                    h = F.avg_pool2d(h.view(B, C, H, W), window).flatten(1) * (
                        window[0] * window[1])
                    continue
                if stage[0] == "readout":
                    logits = logits + h @ stage[1].T + stage[2]
                    continue
                kind, (weight, shape), bias, alpha, beta, theta = stage
                if shape is None:
                    current = h @ weight.T + bias
                else:
                    current = F.conv2d(h.view(B, *shape.in_shape), weight,
                                       stride=shape.stride, padding=shape.padding
                                       ).flatten(1) + bias
                v = alpha * current if state[n] is None else beta * state[n] + alpha * current
                spikes = (v >= theta).float()
                state[n] = v * (1 - spikes)
                h = spikes
        return logits

    return forward


def seconds_per_image(run, x: np.ndarray, batch: int, repeats: int = 3) -> float:
    """The best of ``repeats`` passes over ``x`` in batches of ``batch``, per image."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for k in range(0, len(x), batch):
            run(x[k:k + batch])
        best = min(best, (time.perf_counter() - start) / len(x))
    return best


def side_by_side(network: Network, spikes: np.ndarray, us_accelerator: float | None) -> list:
    """Microseconds per image: PyTorch (float32, batch 1 and 100, one thread and all), the
    integer twin (batch 1 and 100) and the accelerator, measured in this run."""
    import torch

    forward = torch_network(network)
    x = torch.tensor(spikes, dtype=torch.float32)
    threads = torch.get_num_threads()
    rows = []
    with torch.no_grad():
        for n in (1, threads):
            torch.set_num_threads(n)
            for batch in (1, 100):
                images = x[:100] if batch == 100 else x[:20]
                rows.append((f"PyTorch float32, batch {batch}, {n} thread{'s' * (n > 1)}",
                             1e6 * seconds_per_image(forward, images, batch)))
    torch.set_num_threads(threads)
    for batch in (1, 100):
        images = spikes[:100] if batch == 100 else spikes[:20]
        rows.append((f"integer twin (numpy), batch {batch}",
                     1e6 * seconds_per_image(lambda s: twin.run_network(network, s), images,
                                             batch)))
    if us_accelerator is not None:
        rows.append(("accelerator (cycles / post-route Fmax), batch 1", us_accelerator))
    return rows


def layer_figures(network: Network, spikes: np.ndarray, cycles: float) -> list[dict]:
    """Per layer with neurons: the beats it takes per inference against the spikes they carry
    (behind a counting sum pool a beat carries up to a window's count, dalif_hw.hw.pool),
    synaptic operations per inference (counted spikes times the neurons each reaches), per
    cycle of the inference, and the lane utilization: the lanes a beat's operations add into
    over all its lanes, (beats x the neurons each reaches) / (accumulation lanes x the
    accumulator's busy cycles, dalif_hw.hw.cost)."""
    from dalif_hw.hw import cost
    from dalif_hw.hw.pool import input_shifts

    rows = []
    for layer, step in twin.walk(network, spikes):
        if not isinstance(layer, Weighted):
            continue
        counts = step.counts
        beats = cost.counted_beats(counts) if input_shifts(network, layer) > 1 else counts
        if isinstance(layer, Conv2d):
            shape = layer.params.shape
            reach = (shape.dense(np.ones((shape.channels, shape.in_shape[0], *shape.kernel),
                                         np.int64)) != 0).sum(axis=0)
        else:
            reach = np.full(layer.in_size, layer.config.neurons)
        samples = len(counts)
        ops = float((counts @ reach).sum()) / samples
        adds = float((beats @ reach).sum()) / samples   # lanes added into
        operations = cost.operations(layer)      # accumulator cycles per beat
        busy = float((beats @ operations).sum()) / samples
        rows.append({"layer": layer.name, "acc_lanes": layer.config.acc_lanes,
                     "beats": float(beats.sum()) / samples,
                     "spikes": float(counts.sum()) / samples,
                     "synaptic_ops": ops, "ops_per_cycle": ops / cycles, "busy_cycles": busy,
                     "utilization": adds / (layer.config.acc_lanes * busy) if busy else 0.0})
    return rows


def markdown(row: dict, layers: list, timing: list) -> str:
    fmt = lambda v: f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" if isinstance(  # noqa
        v, int) and not isinstance(v, bool) else str(v)
    keys = [k for k in row if k not in ("firing",)]
    lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys),
             "| " + " | ".join(fmt(row[k]) for k in keys) + " |", "",
             "| layer | acc lanes | beats / inference (spikes they carry) | synaptic ops / "
             "inference | ops / cycle | accumulator busy cycles | lane utilization |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['layer']} | {r['acc_lanes']} | {r['beats']:,.0f} ({r['spikes']:,.0f}) | "
              f"{r['synaptic_ops']:,.0f} | {r['ops_per_cycle']:.1f} | {r['busy_cycles']:,.0f} | "
              f"{r['utilization']:.2f} |" for r in layers]
    lines += ["", "| what (this machine, this run) | us / image | vs PyTorch batch 1, 1 thread |",
              "| --- | --- | --- |"]
    base = timing[0][1]
    lines += [f"| {name} | {us:,.1f} | {base / us:.2f}x |" for name, us in timing]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results", help="results folder")
    parser.add_argument("--work", default="build/bench_conv", help="scratch folder")
    parser.add_argument("--samples", type=int, default=3, help="digits run on Verilator")
    parser.add_argument("--seeds", default="1", metavar="S,S,...",
                        help="nextpnr seeds (default: %(default)s); the first sets the figures")
    parser.add_argument("--no-synth", action="store_true", help="skip synthesis")
    parser.add_argument("--pnr-timeout", type=float, default=3600, metavar="S",
                        help="end place and route after S seconds (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        seeds = [int(v) for v in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be integers separated by commas, not {args.seeds!r}")
    if args.pnr_timeout <= 0:
        parser.error(f"--pnr-timeout must be positive, not {args.pnr_timeout}")
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    data = load_digits_split()
    spikes = encode(upscale(data.test_x[:100]), ENCODING)
    network, rates = mnist_shaped(spikes[:20], np.random.default_rng(0))
    print("firing per timestep: " + ", ".join(f"{n} {r:.1%}" for n, r in rates))
    folder = work / "rtl"
    start = time.perf_counter()
    write_outputs(folder, emit_network(NetworkTop(network), "dalif_network"))
    generate_s = time.perf_counter() - start
    start = time.perf_counter()
    build_dir = build(folder / "dalif_network.v", "dalif_network", work / "sim")
    build_s = time.perf_counter() - start
    x = spikes[:args.samples]
    _, logits = twin.run_network(network, x)
    events = [[np.flatnonzero(step).tolist() for step in sample] for sample in x]
    case = {"name": "mnist-shaped", "events": events, "max_cycles": 10_000_000,
            "expected": {"logits": logits.tolist(), "classes": logits.argmax(1).tolist()}}
    result = run_bench(build_dir, "dalif_network", folder / "dalif_network.json", [case],
                       work / "run")[0]
    cycles = float(np.diff([result["first_in"]] + result["class_cycles"]).mean())
    lanes = ", ".join(f"{layer.name} P {layer.config.lanes} A {layer.config.acc_lanes}"
                      for layer in network.weighted)
    row = {"network": "28x28 conv5x5-16 / pool2 / conv5x5-32 / pool2 / 128 / 10, T=4",
           "weights": "random, thresholds for ~10% firing", "lanes": lanes,
           "firing": dict(rates), "samples": len(events), "ok": result["ok"],
           "message": result.get("message"), "cycles_per_inference": cycles,
           "model_cycles": cycles_per_inference(network, x),
           "generate_s": generate_s, "verilator_build_s": build_s}
    print(f"Verilator: {'0 mismatches' if result['ok'] else result.get('message')}, "
          f"{cycles:.0f} cycles per inference (cost model {row['model_cycles']:.0f})")
    us = None
    if not args.no_synth:
        for seed in seeds:
            try:
                report = synthesize(NetworkTop(network), "dalif_network", "ecp5-85k",
                                    work / f"synth_seed{seed}", seed=seed,
                                    pnr_timeout=args.pnr_timeout)
                figures = dict(luts=report.luts, ffs=report.ffs, brams=report.brams,
                               dsps=report.dsps, fmax_mhz=report.fmax_mhz,
                               us_per_inference=cycles / report.fmax_mhz,
                               critical_path=report.critical_path)
            except (DoesNotFit, ToolError) as exc:
                figures = dict(synthesis=str(exc).splitlines()[0])
            print(f"ECP5-85F, nextpnr seed {seed}: {figures}")
            if seed == seeds[0]:
                row.update(target="ecp5-85k", seed=seed, **figures)
                us = figures.get("us_per_inference")
            else:
                row[f"seed{seed}"] = figures
    layers = layer_figures(network, x, cycles)
    timing = side_by_side(network, spikes, us)
    for name, value in timing:
        print(f"{name}: {value:,.1f} us per image")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "conv_mnist_shaped.json", json.dumps(
        {**row, "layers": layers, "us_per_image": dict(timing)}, indent=2) + "\n")
    write_text_atomic(out / "conv_mnist_shaped.md", markdown(row, layers, timing))
    print(markdown(row, layers, timing))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
