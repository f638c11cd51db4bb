"""Training the digits network, packing it, and the checks on the way."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from dalif_hw import cli, pack, twin
from dalif_hw.core.encoding import encode, thermometer_levels
from dalif_hw.digits import train_digits
from dalif_hw.model import DALIFMLP
from dalif_hw.model.checkpoint import save_checkpoint
from dalif_hw.model.train import TrainOptions, load_digits_split
from dalif_hw.quant.packed import Network

ENCODING = {"kind": "thermometer", "T": 2, "max_value": 16.0}


def test_thermometer_encoding_by_hand():
    assert thermometer_levels(2, 16.0).tolist() == pytest.approx([16 / 3, 32 / 3])
    spikes = encode(np.array([[0, 5, 6, 10, 11, 16]]), ENCODING)
    assert spikes.shape == (1, 2, 6)
    assert spikes[0, 0].tolist() == [False, False, True, True, True, True]
    assert spikes[0, 1].tolist() == [False, False, False, False, True, True]


def test_the_split_is_stratified_80_20_with_random_state_0():
    data = load_digits_split()
    assert len(data.train_y) == 1437 and len(data.test_y) == 360
    assert np.bincount(data.test_y).min() >= 35  # every digit is in the test split


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    model, metrics = train_digits(TrainOptions(), out=folder, progress=False)
    return folder, model, metrics


def test_training_reaches_the_target_and_packing_keeps_it(trained):
    _, model, metrics = trained
    # Measured with seed 0: float 0.9833, integer 0.9806 (one sample of 360 apart).
    assert metrics["float_acc"] >= 0.96, metrics
    assert metrics["int_acc"] >= metrics["float_acc"] - 0.005, metrics
    alpha = model.hidden[0].neuron.alpha.detach()
    assert alpha.std() > 0.01, "trained per-neuron decays should differ"


def check_packed(out, metrics: dict) -> Network:
    """Load the packed folder ``out``; check that its ``.hex`` files hold every memory's
    words (the hardware's layout) and that its integer twin is the network training
    measured (``metrics["int_acc"]``). Shared with tests/test_conv.py."""
    network = Network.load(out)
    for layer in network.layers:
        for spec in layer.memories():
            words = [int(w, 16) for w in (out / f"{layer.name}_{spec.name}.hex").read_text()
                     .split()]
            assert words == spec.words
    data = load_digits_split()
    classes = twin.classify(network, encode(data.test_x, network.encoding))
    assert (classes == data.test_y).mean() == metrics["int_acc"]
    return network


def test_pack_writes_layers_hex_files_and_description(trained, tmp_path):
    folder, model, metrics = trained
    out = tmp_path / "packed"
    assert cli.run(pack.main, [str(folder / "model.pt"), "--out", str(out),
                               "--lanes", "8,5", "--acc-lanes", "32,5",
                               "--second-set", "no,auto"]) == 0
    description = yaml.safe_load((out / "network.yaml").read_text())
    assert [layer["lanes"] for layer in description["layers"]] == [8, 5]
    # Accumulation lanes only where they differ from the lanes; a second set where given.
    assert [layer.get("acc_lanes") for layer in description["layers"]] == [32, None]
    assert [layer.get("second_set") for layer in description["layers"]] == [False, None]
    assert description["encoding"] == ENCODING and description["T"] == 2
    network = check_packed(out, metrics)
    assert [layer.config.second_set for layer in network.layers] == [False, None]
    # The readout weights are the float ones in units of the readout scale.
    readout = network.layers[-1]
    w = model.readout.weight.detach().double().numpy()
    np.testing.assert_array_equal(readout.params.weight, np.round(w / readout.scale))
    assert np.abs(readout.params.weight).max() == 127


def test_readout_twin_sums_currents_over_time():
    from dalif_hw.core.params import ReadoutParams

    params = ReadoutParams(weight=np.array([[1, 2], [3, -4]]), bias=np.array([10, -1]))
    spikes = np.array([[[1, 0], [1, 1]]], bool)  # t0: input 0; t1: inputs 0 and 1
    # logit0 = (10 + 1) + (10 + 1 + 2) = 24; logit1 = (-1 + 3) + (-1 + 3 - 4) = 0
    assert twin.readout(params, spikes).tolist() == [[24, 0]]


@pytest.mark.parametrize("args, message", [
    (["--membrane-width", "6"], "layer hidden0: threshold = "),
    (["--weight-width", "0"], "--weight-width must be a positive integer, not 0"),
    (["--lanes", "16"], "lanes needs one value per layer with neurons (2), not [16]"),
    (["--lanes", "16,x"], "--lanes must be comma-separated integers, one per layer, not '16,x'"),
    (["--lanes", "300,10"], "layer hidden0: lanes must be at most the number of neurons "
                            "(256), not 300"),
    (["--acc-lanes", "24,10"], "layer hidden0: acc_lanes must be a multiple of lanes (16) and "
                               "at most lanes x groups (256), not 24"),
    (["--acc-lanes", "64,20"], "layer readout: acc_lanes must be a multiple of lanes (10) and "
                               "at most lanes x groups (10), not 20"),
    (["--acc-lanes", "64"], "acc_lanes needs one value per layer with neurons (2), not [64]"),
    (["--acc-lanes", "64,0"], "--acc-lanes must be positive, not '64,0'"),
    (["--second-set", "yes,maybe"], "--second-set must be comma-separated yes, no, auto, one "
                                    "per layer, not 'maybe' (in 'yes,maybe')"),
    (["--second-set", "yes"], "second_set needs one value per layer with neurons (2), not "
                              "[True]"),
])
def test_pack_refuses_what_does_not_fit(trained, tmp_path, capsys, args, message):
    folder, _, _ = trained
    out = tmp_path / "packed"
    assert cli.run(pack.main, [str(folder / "model.pt"), "--out", str(out), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not out.exists()


def test_pack_refuses_checkpoints_it_does_not_understand(tmp_path, capsys):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    model = DALIFMLP([4, 3, 2])
    save_checkpoint(tmp_path / "ok.pt", model, TrainOptions(sizes=(4, 3, 2)), {})
    broken = torch.load(tmp_path / "ok.pt", weights_only=True)
    broken["sizes"] = [4, 5, 2]
    torch.save(broken, tmp_path / "mismatch.pt")
    for name, message in [
        ("missing.pt", f"checkpoint '{tmp_path / 'missing.pt'}' does not exist"),
        ("other.pt", f"checkpoint '{tmp_path / 'other.pt'}' is not a 'dalif-hw checkpoint 1' "
                     f"checkpoint (format: None)"),
        ("text.pt", f"checkpoint '{tmp_path / 'text.pt'}' cannot be read by torch.load"),
        ("mismatch.pt", f"checkpoint '{tmp_path / 'mismatch.pt'}' does not describe a DA-LIF "
                        f"network (RuntimeError"),
    ]:
        assert cli.run(pack.main, [str(tmp_path / name), "--out", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}"), err
        assert not (tmp_path / "out").exists()


def test_network_description_mismatch_is_refused(trained, tmp_path):
    folder, _, _ = trained
    out = tmp_path / "packed"
    assert cli.run(pack.main, [str(folder / "model.pt"), "--out", str(out)]) == 0
    description = yaml.safe_load((out / "network.yaml").read_text())
    description["layers"][0]["neurons"] = 255
    (out / "network.yaml").write_text(yaml.safe_dump(description))
    result = subprocess.run([sys.executable, "-m", "dalif_hw.gen", "--network", str(out),
                             "--out", str(tmp_path / "rtl")], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == (f"error: {out / 'network.yaml'}: layer hidden0: says 255 neurons "
                             f"x 64 inputs, hidden0.npz holds 256 x 64\n")
    assert not (tmp_path / "rtl").exists()


def test_gen_network_refuses_array_flags(trained, tmp_path, capsys):
    from dalif_hw import gen

    folder, _, _ = trained
    assert cli.run(pack.main, [str(folder / "model.pt"), "--out", str(tmp_path / "p")]) == 0
    assert cli.run(gen.main, ["--network", str(tmp_path / "p"), "--neurons", "4", "--out",
                              str(tmp_path / "rtl")]) == 1
    assert capsys.readouterr().err == ("error: --neurons does not apply with --network (the "
                                       "network folder sets every layer)\n")
    assert not (tmp_path / "rtl").exists()
