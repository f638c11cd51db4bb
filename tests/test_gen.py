"""``python -m dalif_hw.gen``: files, manifest, memory init, argument checks, rtl/ freshness."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dalif_hw import cli, gen
from dalif_hw.core.config import ArrayConfig
from dalif_hw.core.layout import default_params, memories, pack_words
from dalif_hw.core.params import IntParams

ROOT = Path(__file__).parent.parent
DEFAULT_FILES = ["dalif_array.json", "dalif_array.v", "dalif_array_alpha.hex",
                 "dalif_array_beta.hex", "dalif_array_bias.hex", "dalif_array_threshold.hex",
                 "dalif_array_weights.hex"]


def generate(tmp_path, *args):
    return cli.run(gen.main, [*map(str, args), "--out", str(tmp_path)])


def test_reference_rtl_is_fresh(tmp_path):
    """rtl/ must be what `python -m dalif_hw.gen --neurons 256 --T 2 --out rtl` writes now."""
    assert generate(tmp_path, "--neurons", 256, "--T", 2) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == DEFAULT_FILES
    for name in DEFAULT_FILES:
        fresh, committed = (tmp_path / name).read_text(), (ROOT / "rtl" / name).read_text()
        assert fresh == committed, (f"rtl/{name} is stale: regenerate with "
                                    "python -m dalif_hw.gen --neurons 256 --T 2 --out rtl")


def test_default_manifest_describes_the_array(tmp_path):
    manifest = json.loads((ROOT / "rtl" / "dalif_array.json").read_text())
    assert manifest["params"] == {"neurons": 256, "inputs": 256, "T": 2, "lanes": 16,
                                  "acc_lanes": 16, "WB": 8,
                                  "DB": 8, "VB": 16, "reset": "hard",
                                  "threshold": "per-neuron", "bias": True,
                                  "beat_cap": 256, "multipliers": "dsp"}
    assert manifest["streams"]["in"]["fields"] == {"index": [0, 8], "eot": [8, 1]}
    assert manifest["streams"]["out"]["fields"] == {"index": [0, 8], "eot": [8, 1]}
    weights = manifest["memories"][0]
    assert (weights["name"], weights["depth"], weights["width"]) == ("weights", 4096, 128)
    ports = {p["name"]: (p["dir"], p["width"]) for p in manifest["ports"]}
    verilog = (ROOT / "rtl" / "dalif_array.v").read_text()
    for name, (direction, width) in ports.items():
        decl = f"  {'input' if direction == 'in' else 'output'} " + \
            (f"[{width - 1}:0] " if width > 1 else "") + f"{name};"
        assert decl in verilog, decl


@pytest.mark.parametrize("second_set, overlap", [(None, True), ("no", False), ("yes", True)])
def test_second_set_is_the_users_or_the_rule(tmp_path, second_set, overlap):
    """--second-set yes / no gives the accumulators two sets or one whatever their size; by
    default (auto) the rule decides (20 x 20 accumulators: small, two). The manifest and the
    cost model say the same."""
    from dalif_hw.hw import cost
    from dalif_hw.quant.packed import Dense

    args = ("--second-set", second_set) if second_set else ()
    assert generate(tmp_path, "--neurons", 20, "--T", 2, *args) == 0
    manifest = json.loads((tmp_path / "dalif_array.json").read_text())
    assert manifest["pipeline"]["overlap"] is overlap
    config = ArrayConfig(20, 20, 2, second_set={"yes": True, "no": False}.get(second_set))
    assert cost.overlaps(Dense("array", config, default_params(config))) is overlap
    for given, want in ((None, False), (True, True)):   # 4,096 accumulators: by the rule, one
        big = ArrayConfig(4096, 16, 2, second_set=given)
        assert cost.overlaps(Dense("array", big, default_params(big))) is want


def test_acc_lanes_set_the_weight_words_and_the_cost(tmp_path):
    """--acc-lanes 16 over 40 neurons at 4 lanes: the weight memory holds 3 words of 16 lanes
    per input (the last word part-full), the rest stays in groups of 4, and the manifest's
    pipeline says a beat walks 3 words and a pass 10 groups."""
    assert generate(tmp_path, "--neurons", 40, "--inputs", 5, "--T", 2, "--lanes", 4,
                    "--acc-lanes", 16) == 0
    manifest = json.loads((tmp_path / "dalif_array.json").read_text())
    assert (manifest["params"]["lanes"], manifest["params"]["acc_lanes"]) == (4, 16)
    memories = {m["name"]: m for m in manifest["memories"]}
    assert (memories["weights"]["depth"], memories["weights"]["lanes"]) == (3 * 5, 16)
    assert (memories["alpha"]["depth"], memories["alpha"]["lanes"]) == (10, 4)
    assert manifest["pipeline"]["cycles_per_input_beat"] == 3
    assert manifest["pipeline"]["cycles_per_update_pass"] == 10
    words = (tmp_path / "dalif_array_weights.hex").read_text().split()
    assert len(words) == 15 and all(len(w) == 16 * 8 // 4 for w in words)


def test_params_file_sets_initial_contents_and_modes(tmp_path):
    rng = np.random.default_rng(3)
    params = IntParams(weight=rng.integers(-8, 8, (6, 5)), alpha=rng.integers(0, 17, 6),
                       beta=rng.integers(0, 17, 6), threshold=np.array(-3), WB=4, DB=4, VB=7,
                       reset="soft")
    params.save(tmp_path / "params.npz")
    out = tmp_path / "out"
    assert generate(out, "--neurons", 6, "--T", 3, "--lanes", 4, "--params",
                    tmp_path / "params.npz", "--name", "layer0") == 0
    manifest = json.loads((out / "layer0.json").read_text())
    assert manifest["params"]["threshold"] == "per-layer" and manifest["params"]["bias"] is False
    assert manifest["params"]["reset"] == "soft" and manifest["params"]["WB"] == 4
    assert manifest["config"]["threshold_register"]["init"] == -3
    assert sorted(m["name"] for m in manifest["memories"]) == ["alpha", "beta", "weights"]
    # Weights from input j to neurons 4, 5 sit in word 1 * 5 + j: lanes 0 and 1, 4 bits each.
    words = [int(line, 16) for line in (out / "layer0_weights.hex").read_text().split()]
    assert len(words) == 2 * 5
    for j in range(5):
        word = words[5 + j]
        lanes = [(word >> (4 * p)) & 0xF for p in range(4)]
        expect = [int(params.weight[4, j]) & 0xF, int(params.weight[5, j]) & 0xF, 0, 0]
        assert lanes == expect
    assert words == pack_words(params.weight.T, 4, 4)


def test_default_contents_follow_the_documented_defaults():
    config = ArrayConfig(5, 3, 2, WB=6, DB=4, VB=12, lanes=2)
    specs = {m.name: m for m in memories(config, default_params(config))}
    assert specs["weights"].words == [0] * 9 and specs["bias"].words == [0] * 3
    # alpha = beta = 2**(DB-1) = 8, thresholds 2**(WB-1) = 32, in every real lane.
    assert specs["alpha"].words == [8 | 8 << 5, 8 | 8 << 5, 8]
    assert specs["threshold"].words == [32 | 32 << 12, 32 | 32 << 12, 32]


def bad_params(tmp_path):
    params = IntParams(weight=np.full((4, 3), 100), alpha=np.zeros(4, int),
                       beta=np.zeros(4, int), threshold=np.array(5))
    params.save(tmp_path / "p.npz")
    return str(tmp_path / "p.npz")


@pytest.mark.parametrize("args, message", [
    (["--neurons", "0", "--T", "2"], "--neurons must be a positive integer, not 0"),
    (["--neurons", "4", "--T", "-1"], "--T must be a positive integer, not -1"),
    (["--neurons", "4", "--T", "2", "--inputs", "0"],
     "--inputs must be a positive integer, not 0"),
    (["--neurons", "4", "--T", "2", "--lanes", "5"],
     "--lanes must be at most --neurons (4), not 5"),
    (["--neurons", "4", "--T", "2", "--lanes", "0"], "--lanes must be a positive integer, not 0"),
    (["--neurons", "40", "--T", "2", "--lanes", "4", "--acc-lanes", "6"],
     "acc_lanes must be a multiple of lanes (4) and at most lanes x groups (40), not 6"),
    (["--neurons", "40", "--T", "2", "--lanes", "4", "--acc-lanes", "44"],
     "acc_lanes must be a multiple of lanes (4) and at most lanes x groups (40), not 44"),
    (["--neurons", "4", "--T", "2", "--acc-lanes", "0"],
     "--acc-lanes must be a positive integer, not 0"),
    (["--neurons", "4", "--T", "2", "--decay-width", "0"],
     "--decay-width must be a positive integer, not 0"),
    (["--neurons", "4", "--T", "2", "--name", "2x"],
     "--name must be a Verilog identifier (letters, digits, _), not '2x'"),
    (["--neurons", "4", "--T", "2", "--weight-width", "40", "--decay-width", "30"],
     "widths WB=40, DB=30, VB=16 with a beat cap of 4 need 76 bits, more than 63"),
    (["--neurons", "4", "--T", "2", "--params", "PARAMS", "--weight-width", "6"],
     "WB=6 disagrees with the params meta WB=8"),
    (["--neurons", "4", "--T", "2", "--params", "PARAMS", "--reset", "soft"],
     "reset='soft' disagrees with the params meta reset='hard'"),
    (["--neurons", "5", "--T", "2", "--params", "PARAMS"],
     "--neurons 5 disagrees with the params, whose weight has 4 rows (shape [4, 3])"),
    (["--neurons", "4", "--T", "2", "--inputs", "4", "--params", "PARAMS"],
     "--inputs 4 disagrees with the params, whose weight has 3 columns (shape [4, 3])"),
    (["--neurons", "4", "--T", "2", "--params", "missing.npz"],
     "params file 'missing.npz' does not exist"),
])
def test_bad_arguments_write_nothing(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    args = [bad_params(tmp_path) if a == "PARAMS" else a for a in args]
    out = tmp_path / "out"
    assert cli.run(gen.main, [*args, "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not out.exists()


def test_command_line_exit_status_and_message(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dalif_hw.gen", "--neurons", "8", "--T",
                             "0", "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == "error: --T must be a positive integer, not 0\n"
    assert not (tmp_path / "out").exists()
