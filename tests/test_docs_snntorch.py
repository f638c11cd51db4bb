"""docs/snntorch.md's walk-through runs as written: the module file, then its commands (pack
straight from the module with analog input, gen, verify on Verilator): snnTorch's tutorial
MLP as written, to RTL equal to the integer twin."""

from __future__ import annotations

from walkthrough import run_walk_through, walk_through

from dalif_hw.quant.packed import Network


def test_snntorch_walk_through_runs_as_written(tmp_path):
    assert walk_through("snntorch.md")[0].startswith("# net.py\n")
    summary = run_walk_through("snntorch.md", tmp_path, "net.py")
    network = Network.load(tmp_path / "packed")
    assert network.encoding == {"kind": "analog", "T": 5, "levels": 7, "max_value": 1.0}
    assert [layer.params.reset for layer in network.layers] == ["subtract", "subtract"]
    assert summary["mismatches"] == 0 and summary["samples"] == 8, summary
    assert summary["spikes_out"] == 72, summary  # the figure the page quotes
