"""Convolutional networks on the accelerator: cycles, resources and Fmax.

    python benchmarks/conv.py --out benchmarks/results            # MNIST-shaped, ECP5-85F
    python benchmarks/conv.py --out benchmarks/results --no-synth # Verilator only

An MNIST-shaped network, conv 5x5 16 ch -> sum pool 2 -> conv 5x5 32 ch -> sum pool 2 ->
dense 128 -> readout 10 on 28x28 inputs (the scikit-learn digits upscaled, thermometer-coded,
T = 4), with *random* weights (not trained): every layer's threshold is set so that about
10% of its neurons fire per timestep on the inputs (within 5-20%, printed). The network is
generated, a few digits run on Verilator against the integer twin (0 mismatches required),
and it is synthesized for the ECP5-85F. Writes ``conv.json`` and ``conv.md`` into ``--out``.
Cycle counts are exact (Verilator); microseconds use the post-route Fmax.
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
from dalif_hw.flow.synthesis import DoesNotFit, synthesize  # noqa: E402
from dalif_hw.flow.tools import ToolError  # noqa: E402
from dalif_hw.harness.verilator import build, run_bench  # noqa: E402
from dalif_hw.hw.emit import emit_network, write_outputs  # noqa: E402
from dalif_hw.hw.network import NetworkTop  # noqa: E402
from dalif_hw.model.train import load_digits_split  # noqa: E402
from dalif_hw.quant.packed import Layer, Network  # noqa: E402

T = 4
ENCODING = {"kind": "thermometer", "T": T, "max_value": 16.0}
TARGET_RATE = 0.10


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
        layers.append(Layer(f"conv{k}", "conv2d", conv.config(T, lanes=8), conv, 1.0))
        x = twin.run(conv, x).spikes_out
        pool = PoolShape("sumpool", conv.shape.out_shape, (2, 2))
        layers.append(Layer(f"pool{k}", "sumpool", None, None, pool=pool))
        x = twin.pool(pool, x)
    dense = IntParams(weight=rng.integers(-8, 8, (128, x.shape[2])), alpha=np.full(128, 256),
                      beta=np.full(128, 128), threshold=np.array(1),
                      bias=np.zeros(128, np.int64), WB=4, VB=16, beat_cap=4 * 512)
    dense, rate = calibrated(dense, x)
    rates.append(("hidden0", rate))
    layers.append(Layer("hidden0", "dense", dense.config(T, lanes=16), dense, 1.0))
    readout = ReadoutParams(weight=rng.integers(-8, 8, (10, 128)), WB=4, VB=16)
    layers.append(Layer("readout", "readout", readout.config(T, lanes=10), readout, 1.0))
    return Network(T=T, encoding=ENCODING, layers=layers), rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results", help="results folder")
    parser.add_argument("--work", default="build/bench_conv", help="scratch folder")
    parser.add_argument("--samples", type=int, default=3, help="digits run on Verilator")
    parser.add_argument("--no-synth", action="store_true", help="skip synthesis")
    args = parser.parse_args(argv)
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    data = load_digits_split()
    spikes = encode(upscale(data.test_x[:20]), ENCODING)
    network, rates = mnist_shaped(spikes, np.random.default_rng(0))
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
    cycles = np.diff([result["first_in"]] + result["class_cycles"]).mean()
    row = {"network": "28x28 conv5x5-16 / pool2 / conv5x5-32 / pool2 / 128 / 10, T=4",
           "weights": "random, thresholds for ~10% firing",
           "firing": dict(rates), "samples": len(events), "ok": result["ok"],
           "message": result.get("message"), "cycles_per_inference": float(cycles),
           "generate_s": generate_s, "verilator_build_s": build_s}
    print(f"Verilator: {'0 mismatches' if result['ok'] else result.get('message')}, "
          f"{cycles:.0f} cycles per inference")
    if not args.no_synth:
        try:
            report = synthesize(NetworkTop(network), "dalif_network", "ecp5-85k",
                                work / "synth")
            row.update(target="ecp5-85k", luts=report.luts, ffs=report.ffs,
                       brams=report.brams, dsps=report.dsps, fmax_mhz=report.fmax_mhz,
                       us_per_inference=cycles / report.fmax_mhz)
        except (DoesNotFit, ToolError) as exc:
            row.update(target="ecp5-85k", synthesis=str(exc).splitlines()[0])
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "conv.json", json.dumps(row, indent=2) + "\n")
    lines = ["| " + " | ".join(row) + " |", "|" + " --- |" * len(row),
             "| " + " | ".join(str(v) for v in row.values()) + " |"]
    write_text_atomic(out / "conv.md", "\n".join(lines) + "\n")
    print(json.dumps(row, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
