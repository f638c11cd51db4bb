"""docs/snntorch.md's walk-through runs as written: the module file, then its commands (pack
straight from the module with analog input, gen, verify on Verilator): snnTorch's tutorial
MLP and CSNN (max pooling of currents before the neurons) as written, to RTL equal to the
integer twin."""

from __future__ import annotations

from walkthrough import run_walk_through, walk_through

from dalif_hw.quant.packed import Network


def test_snntorch_walk_through_runs_as_written(tmp_path):
    assert walk_through("snntorch.md")[0].startswith("# net.py\n")
    mlp, csnn = run_walk_through("snntorch.md", tmp_path, "net.py", every=True)
    network = Network.load(tmp_path / "packed")
    assert network.encoding == {"kind": "analog", "T": 5, "levels": 7, "max_value": 1.0}
    assert [layer.params.reset for layer in network.layers] == ["subtract", "subtract"]
    assert mlp["mismatches"] == 0 and mlp["samples"] == 8, mlp
    assert mlp["spikes_out"] == 72, mlp  # the figure the page quotes
    network = Network.load(tmp_path / "csnn")
    assert [(layer.name, getattr(layer.params, "current_pool", None), layer.out_shape)
            for layer in network.layers] == [
        ("conv0", (2, 2), (12, 6, 6)), ("conv1", (2, 2), (64, 1, 1)), ("hidden0", None, (10,))]
    assert csnn["mismatches"] == 0 and csnn["samples"] == 4, csnn
    assert csnn["spikes_out"] == 45, csnn
