"""Generated networks on Verilator: every logit and class against the integer twin.

One small random network exercises the chaining, the readout and the per-layer configuration
ports with random traffic; the digits network goes the whole way from training to RTL.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from dalif_hw import twin
from dalif_hw.core.config import RESETS
from dalif_hw.core.params import IntParams, ReadoutParams
from dalif_hw.harness.verilator import build, config_writes, run_bench
from dalif_hw.hw.emit import emit_network, write_outputs
from dalif_hw.hw.network import NetworkTop
from dalif_hw.quant.packed import Conv2d, Dense, MaxPool, Network, Readout, SumPool


def random_network(rng, sizes, T, lanes, resets) -> Network:
    layers = []
    for k, (m, n) in enumerate(zip(sizes[:-2], sizes[1:-1])):
        per_neuron = k % 2 == 0
        params = IntParams(
            weight=rng.integers(-128, 128, (n, m)), alpha=rng.integers(0, 257, n),
            beta=rng.integers(0, 257, n),
            threshold=rng.integers(0, 200, n if per_neuron else ()),
            bias=rng.integers(-40, 40, n) if per_neuron else None, VB=11, reset=resets[k])
        layers.append(Dense(f"hidden{k}", params.config(T, lanes=lanes[k]), params, 1.0))
    readout = ReadoutParams(weight=rng.integers(-128, 128, (sizes[-1], sizes[-2])),
                            bias=rng.integers(-60, 60, sizes[-1]), VB=11)
    layers.append(Readout("readout", readout.config(T, lanes=lanes[-1]), readout, 1.0))
    return Network(T=T, encoding={"kind": "thermometer", "T": T, "max_value": 16.0},
                   layers=layers)


def cases_for(network: Network, rng, samples: int, name: str, **options) -> dict:
    spikes = rng.random((samples, network.T, network.inputs)) < 0.5
    _, logits = twin.run_network(network, spikes)
    events = [[np.flatnonzero(step).tolist() for step in sample] for sample in spikes]
    return {"name": name, "events": events, **options,
            "expected": {"logits": logits.tolist(), "classes": logits.argmax(1).tolist()}}


def test_random_network_with_reconfiguration(build_root, tmp_path):
    rng = np.random.default_rng(5)
    sizes, T, lanes = [12, 9, 7, 5], 3, [4, 7, 2]
    generated = random_network(rng, sizes, T, lanes, RESETS)
    folder = build_root / "network_rtl"
    write_outputs(folder, emit_network(NetworkTop(generated), "dalif_network"))
    manifest_path = folder / "dalif_network.json"
    manifest = json.loads(manifest_path.read_text())
    build_dir = build(folder / "dalif_network.v", "dalif_network", build_root / "network")
    cases = [cases_for(generated, rng, 6, "generated init", gaps=0.3, backpressure=0.4)]
    # Reset in the middle of a sample (a timestep and a half sent, the layers busy): the
    # samples after it must see a fresh network.
    spikes = rng.random((T, sizes[0])) < 0.5
    half = [[int(j), 0] for j in np.flatnonzero(spikes[0])] + [[0, 1]] + \
        [[int(j), 0] for j in np.flatnonzero(spikes[1])[:sizes[0] // 3]]
    cases.append(cases_for(generated, rng, 3, "after a reset mid-sample",
                           prefix={"beats": half, "settle": 4},
                           gaps={"kind": "bursts", "on": 5, "off": 2},
                           backpressure={"kind": "periodic", "every": 3}, seed=9))
    for k in range(3):
        # New parameters for every layer, through each layer's own configuration port.
        network = random_network(rng, sizes, T, lanes, RESETS)
        writes = [config_writes(layer_manifest, layer.params)
                  for layer_manifest, layer in zip(manifest["layers"], network.layers)]
        cases.append(cases_for(network, rng, 6, f"reconfigured {k}", config=writes,
                               gaps=[0.1, 0.5, 0.2][k], backpressure=[0.3, 0.2, 0.6][k],
                               seed=k))
    results = run_bench(build_dir, "dalif_network", manifest_path, cases, tmp_path)
    failed = [r for r in results if not r["ok"]]
    assert not failed, "; ".join(f"case {r['name']}: {r.get('message')}" for r in failed)
    assert len(results) == len(cases)


def random_conv_network(rng, T: int) -> Network:
    """conv 3x3 (pad 1) -> sum pool 2 -> conv 2x2 (beat cap 4 M) -> max pool 2 -> dense ->
    readout, random parameters; per-channel and per-neuron values, both resets."""
    from dalif_hw.core.conv import PoolShape
    from dalif_hw.core.params import ConvParams

    def conv(in_shape, K, kernel, padding, per_channel, reset, beat_cap=None):
        C = in_shape[0]
        layer = ConvParams(weight=np.zeros((K, C, kernel, kernel), np.int64),
                           alpha=np.zeros(K, np.int64), beta=np.zeros(K, np.int64),
                           threshold=np.array(1), in_shape=in_shape, padding=padding)
        n = K if per_channel else layer.neurons
        return ConvParams(weight=rng.integers(-8, 8, (K, C, kernel, kernel)),
                          alpha=rng.integers(120, 257, n), beta=rng.integers(0, 257, n),
                          threshold=rng.integers(1, 10, n if per_channel else ()),
                          bias=rng.integers(-3, 4, n), in_shape=in_shape, padding=padding,
                          WB=5, VB=11, reset=reset, beat_cap=beat_cap)

    conv0 = conv((1, 6, 6), 3, 3, (1, 1), True, "hard")
    pool0 = PoolShape("sumpool", (3, 6, 6), (2, 2))
    conv1 = conv((3, 3, 3), 2, 2, (1, 1), False, "soft", beat_cap=4 * 27)
    pool1 = PoolShape("maxpool", (2, 4, 4), (2, 2))
    dense = IntParams(weight=rng.integers(-60, 60, (6, 8)), alpha=rng.integers(100, 257, 6),
                      beta=rng.integers(0, 257, 6), threshold=rng.integers(0, 60, 6),
                      bias=rng.integers(-20, 20, 6), VB=11)
    readout = ReadoutParams(weight=rng.integers(-100, 100, (4, 6)),
                            bias=rng.integers(-30, 30, 4), VB=11)
    return Network(T=T, encoding={"kind": "thermometer", "T": T, "max_value": 16.0}, layers=[
        Conv2d("conv0", conv0.config(T, lanes=4), conv0, 1.0),
        SumPool("pool0", pool0),
        Conv2d("conv1", conv1.config(T, lanes=3), conv1, 1.0),
        MaxPool("pool1", pool1),
        Dense("hidden0", dense.config(T, lanes=4), dense, 1.0),
        Readout("readout", readout.config(T, lanes=4), readout, 1.0)])


def test_random_conv_network_with_pooling(build_root, tmp_path):
    """Conv layers, a sum and a max pooling stage, a dense layer and the readout in one
    module, against the twin: every logit and class; new parameters through the layers'
    configuration ports (pooling stages have none)."""
    rng = np.random.default_rng(8)
    T = 2
    generated = random_conv_network(rng, T)
    folder = build_root / "conv_network_rtl"
    write_outputs(folder, emit_network(NetworkTop(generated), "dalif_network"))
    manifest_path = folder / "dalif_network.json"
    manifest = json.loads(manifest_path.read_text())
    assert [layer["kind"] for layer in manifest["layers"]] == [
        "conv2d", "sumpool", "conv2d", "maxpool", "dense", "readout"]
    build_dir = build(folder / "dalif_network.v", "dalif_network", build_root / "conv_network")
    cases = [cases_for(generated, rng, 6, "generated init", gaps=0.3, backpressure=0.4)]
    for k in range(2):
        network = random_conv_network(rng, T)
        writes = [config_writes(layer_manifest, layer.params)
                  for layer_manifest, layer in zip(manifest["layers"], network.layers)
                  if "config" in layer_manifest]
        cases.append(cases_for(network, rng, 6, f"reconfigured {k}", config=writes,
                               gaps=GAPS_NET[k], backpressure=BACKPRESSURE_NET[k], seed=k))
    results = run_bench(build_dir, "dalif_network", manifest_path, cases, tmp_path)
    failed = [r for r in results if not r["ok"]]
    assert not failed, "; ".join(f"case {r['name']}: {r.get('message')}" for r in failed)
    assert len(results) == len(cases)


GAPS_NET = [{"kind": "bursts", "on": 4, "off": 2}, 0.5]
BACKPRESSURE_NET = [0.3, {"kind": "periodic", "every": 2}]


def run(*args, cwd):
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_digits_from_training_to_verified_rtl(tmp_path):
    """The README walk-through: train, pack, generate, verify on the held-out split."""
    from pathlib import Path

    root = Path(__file__).parent.parent
    run(str(root / "train" / "digits.py"), "--out", "runs/digits", "--threads", "1",
        cwd=tmp_path)
    run("-m", "dalif_hw.pack", "runs/digits/model.pt", "--out", "runs/digits/packed",
        "--acc-lanes", "64,10", cwd=tmp_path)
    run("-m", "dalif_hw.gen", "--network", "runs/digits/packed", "--out", "build/digits",
        cwd=tmp_path)
    out = run("-m", "dalif_hw.verify", "--network", "runs/digits/packed", "--rtl",
              "build/digits", cwd=tmp_path)
    summary = json.loads(out.strip().splitlines()[-1])
    print(out)
    assert summary["samples"] == 360
    assert summary["mismatches"] == 0
    assert summary["rtl_acc"] == summary["int_acc"]
    assert summary["rtl_acc"] >= 0.96, summary
    assert summary["int_acc"] >= summary["float_acc"] - 0.005, summary
    # 64 accumulation lanes in the hidden layer: a beat walks 4 words instead of 16 (measured:
    # 190 cycles per inference; 663 with 16).
    assert 0 < summary["cycles_per_inference"] <= 663 / 2, summary


def test_conv_digits_from_training_to_verified_rtl(tmp_path):
    """The convolutional network the same way: conv 3x3 16 ch -> sum pool 2 -> dense 128 ->
    readout, trained, packed, generated and verified on the 360 held-out digits."""
    from pathlib import Path

    root = Path(__file__).parent.parent
    run(str(root / "train" / "digits.py"), "--model", "conv", "--out", "runs/conv",
        "--threads", "1", cwd=tmp_path)
    run("-m", "dalif_hw.pack", "runs/conv/model.pt", "--out", "runs/conv/packed", cwd=tmp_path)
    run("-m", "dalif_hw.gen", "--network", "runs/conv/packed", "--out", "build/conv",
        cwd=tmp_path)
    out = run("-m", "dalif_hw.verify", "--network", "runs/conv/packed", "--rtl", "build/conv",
              cwd=tmp_path)
    summary = json.loads(out.strip().splitlines()[-1])
    print(out)
    # Measured (seed 0): float 0.9833, integer 0.9944, RTL 0.9944, 1995 cycles per inference.
    assert summary["samples"] == 360 and summary["mismatches"] == 0
    assert summary["rtl_acc"] == summary["int_acc"] >= 0.975, summary
    assert summary["float_acc"] >= 0.98, summary
