"""Networks exported to NIR by snnTorch and SpikingJelly, to verified RTL: the commands of
docs/nir.md (pack the .nir with --T, gen, verify --stimulus), 0 mismatches between the RTL
and the integer twin, spike by spike (or logit by logit for a readout)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

from dalif_hw.harness.peers import (
    snntorch_conv,
    snntorch_dense,
    snntorch_export,
    snntorch_export_graph,
    snntorch_residual,
)
from dalif_hw.quant.packed import Network

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures" / "nir"


def run(*args, cwd):
    result = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("source", ["snntorch_dense", "snntorch_conv", "snntorch_readout",
                                    "spikingjelly_conv", "snntorch_spike_add",
                                    "snntorch_current_add"])
def test_nir_graph_to_verified_rtl(source, tmp_path):
    if source.startswith("spikingjelly"):
        shutil.copy(FIXTURES / f"{source}.nir", tmp_path / "model.nir")
        in_shape = tuple(nir.read(tmp_path / "model.nir").nodes["input_1"]
                         .input_type["input"])
    elif source.endswith("_add"):  # residual blocks: a graph with a skip (SPEC 7)
        net, in_shape = snntorch_residual(source.split("_")[1])
        nir.write(tmp_path / "model.nir", snntorch_export_graph(net, in_shape))
    else:
        build = {"snntorch_dense": snntorch_dense, "snntorch_conv": snntorch_conv,
                 "snntorch_readout": lambda: snntorch_dense((16, 24, 5), readout=True)}[source]
        net, in_shape = build()
        nir.write(tmp_path / "model.nir", snntorch_export(net, in_shape))
    T, samples = 6, 8
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "s.npz",
             spikes=rng.random((samples, T, int(np.prod(in_shape)))) < 0.3)
    run("dalif_hw.pack", "model.nir", "--T", str(T), "--out", "packed", cwd=tmp_path)
    run("dalif_hw.gen", "--network", "packed", "--out", "rtl", cwd=tmp_path)
    out = run("dalif_hw.verify", "--network", "packed", "--rtl", "rtl", "--stimulus", "s.npz",
              cwd=tmp_path)
    print(out)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["samples"] == samples
    assert summary["mismatches"] == 0 and summary["first_mismatch"] is None, summary
    if source.endswith("_add"):
        network = Network.load(tmp_path / "packed")
        forks = [n for n in ("input", *(layer.name for layer in network.layers))
                 if len(network.consumers(n)) > 1]
        assert not network.is_chain and forks == ["input" if "current" in source else "conv0"]
    if source == "snntorch_readout":
        assert "int_acc" not in summary  # no labels: logits and classes are compared
    else:
        assert summary["spikes_out"] > samples, "a network that hardly spikes tests little"
