"""Nothing lost, nothing silent, round two (issue 25): a regression test per finding of the
hostile probe that this round fixes, each the command as the probe ran it. Every one fails
on the code before the fix (a traceback, a wrong result with exit 0, or a file overwritten).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_integrity import ROOT, one_line_error, packed_network, run

from dalif_hw.core.params import IntParams, ReadoutParams
from dalif_hw.model import DALIFMLP
from dalif_hw.model.checkpoint import save_checkpoint
from dalif_hw.model.train import TrainOptions
from dalif_hw.quant.packed import Dense, Network, Readout


def wide_network(inputs: int) -> Network:
    """A network of ``inputs`` inputs, 2 neurons and a readout."""
    rng = np.random.default_rng(0)
    hidden = IntParams(weight=rng.integers(-8, 8, (2, inputs)), alpha=np.full(2, 256),
                       beta=np.full(2, 128), threshold=np.array(4))
    readout = ReadoutParams(weight=np.ones((2, 2), np.int64))
    return Network(T=2, encoding={"kind": "spikes", "T": 2}, layers=[
        Dense("hidden0", hidden.config(2, lanes=2), hidden, 1.0),
        Readout("readout", readout.config(2, lanes=2), readout, 1.0)])


def test_synth_refuses_a_report_over_the_networks_own_files(tmp_path):
    folder = packed_network(tmp_path)
    before = (folder / "network.yaml").read_bytes()
    line = one_line_error(run("-m", "dalif_hw.synth", "--target", "ecp5-25k", "--network",
                              folder, "--report", folder / "network.yaml", "--out",
                              tmp_path / "s"))
    assert "is inside the input folder" in line and "network.yaml" in line
    assert (folder / "network.yaml").read_bytes() == before
    assert not (tmp_path / "s").exists()


def test_golden_refuses_counts_it_cannot_sum(tmp_path):
    np.savez(tmp_path / "p.npz", weight=np.array([[1, 2, 3, 4]]), alpha=np.array([256]),
             beta=np.array([128]), threshold=np.array(100),
             meta=np.array(json.dumps({"WB": 8, "DB": 8, "VB": 16, "reset": "hard"})))
    np.savez(tmp_path / "s.npz", counts=np.array([[[1, 2**62, 1, 1]]]))
    line = one_line_error(run("-m", "dalif_hw.golden", "--params", tmp_path / "p.npz",
                              "--stimulus", tmp_path / "s.npz", "--out", tmp_path / "t.npz"))
    assert line == ("error: stimulus counts of sample 0, timestep 0 add up to 4.612e+18 beats, "
                    "not below 2**62: their sums would wrap")
    assert not (tmp_path / "t.npz").exists()


@pytest.mark.parametrize("command, message", [
    (["-m", "dalif_hw.explore", "--neurons", "8", "--lanes", "4", "--target", "ecp5-25k",
      "--freq", "-5"],
     "--freq must be a positive number of MHz, not -5.0"),
    (["-m", "dalif_hw.synth", "--target", "ecp5-25k", "--neurons", "8", "--T", "2", "--freq",
      "inf"], "--freq must be a positive number of MHz, not inf"),
    (["-m", "dalif_hw.explore", "--neurons", "8", "--lanes", "4", "--target", "ecp5-25k",
      "--scheduler", "not a url"],
     "cannot reach the Dask scheduler --scheduler 'not a url': "),
])
def test_numbers_and_addresses_that_make_no_sense_are_refused(tmp_path, command, message):
    line = one_line_error(run(*command, "--out", tmp_path / "o"))
    assert message in line
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_with_a_fractional_T_is_refused(tmp_path):
    save_checkpoint(tmp_path / "m.pt", DALIFMLP((64, 6, 10)), TrainOptions(sizes=(64, 6, 10)),
                    {})
    data = torch.load(tmp_path / "m.pt", weights_only=True)
    data["T"] = 2.9
    torch.save(data, tmp_path / "m.pt")
    line = one_line_error(run("-m", "dalif_hw.pack", tmp_path / "m.pt", "--out", tmp_path / "p"))
    assert "has T = 2.9: timesteps per sample are a positive integer" in line
    assert not (tmp_path / "p").exists()


def test_nir_import_refuses_nan_weights_and_export_a_nan_model(tmp_path):
    import nir


    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([3])}),
        nir.Affine(weight=np.array([[1.0, np.nan, 0.0]] * 4), bias=np.zeros(4)),
        nir.LIF(tau=np.full(4, 1e-3), r=np.full(4, 10.0), v_leak=np.zeros(4),
                v_threshold=np.ones(4), v_reset=np.zeros(4)),
        nir.Output(output_type={"output": np.array([4])}))
    nir.write(tmp_path / "nan.nir", graph)
    line = one_line_error(run("-m", "dalif_hw.nir", "import", tmp_path / "nan.nir", "--out",
                              tmp_path / "m.pt"))
    assert line == "error: NIR node 'affine' (Affine): weight nan at [0, 1] is not a finite number"
    model = DALIFMLP((4, 3, 2))
    with torch.no_grad():
        model.hidden[0].linear.weight.fill_(float("nan"))
    save_checkpoint(tmp_path / "nan.pt", model, TrainOptions(sizes=(4, 3, 2)), {})
    line = one_line_error(run("-m", "dalif_hw.nir", "export", tmp_path / "nan.pt", "--out",
                              tmp_path / "out.nir"))
    assert "holds NaN or infinite values: nothing to export" in line
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "out.nir").exists()


def test_inputs_the_host_link_cannot_carry_are_refused(tmp_path):
    wide_network(40_000).save(tmp_path / "wide")
    np.savez(tmp_path / "s.npz", spikes=np.zeros((1, 2, 40_000), bool))
    line = one_line_error(run("-m", "dalif_hw.run", "--port", "loop://", "--network",
                              tmp_path / "wide", "--stimulus", tmp_path / "s.npz"))
    assert line == (f"error: network {str(tmp_path / 'wide')!r} has 40000 inputs: the host "
                    f"link's beats carry indices below 32768 (bit 15 is the end of a timestep)")
    line = one_line_error(run("-m", "dalif_hw.synth", "--target", "ecp5-85k", "--network",
                              tmp_path / "wide", "--board", "ulx3s", "--out", tmp_path / "b"))
    assert "the design for --board ulx3s has 40000 inputs" in line
    assert not (tmp_path / "b").exists()


def test_deeply_nested_files_are_one_line(tmp_path):
    folder = tmp_path / "deep"
    folder.mkdir()
    (folder / "network.yaml").write_text("format: 3\nT: " + "[" * 50_000 + "]" * 50_000)
    line = one_line_error(run("-m", "dalif_hw.gen", "--network", folder, "--out",
                              tmp_path / "rtl"))
    assert line.endswith("network.yaml nests 50000 levels deep, more than the 32 a file of "
                         "ours has")
    (folder / "network.yaml").write_text(
        "format: 3\nT:\n" + "".join("  " * i + "-\n" for i in range(5000)))
    line = one_line_error(run("-m", "dalif_hw.gen", "--network", folder, "--out",
                              tmp_path / "rtl"))
    assert line.endswith("network.yaml nests deeper than can be read")
    # A manifest beside a design to verify.
    packed = packed_network(tmp_path)
    rtl = tmp_path / "built"
    rtl.mkdir()
    (rtl / "dalif_network.json").write_text("[" * 100_000 + "]" * 100_000)
    line = one_line_error(run("-m", "dalif_hw.verify", "--network", packed, "--rtl", rtl))
    assert "nests 100000 levels deep" in line
    assert not (tmp_path / "rtl").exists()


def test_golden_refuses_a_layer_too_large_to_hold_up_front(tmp_path):
    np.savez(tmp_path / "p.npz", weight=np.ones((2, 1, 3, 3), np.int64), alpha=np.full(2, 256),
             beta=np.full(2, 128), threshold=np.array(4),
             meta=np.array(json.dumps({"WB": 8, "DB": 8, "VB": 16, "reset": "hard",
                                       "kind": "conv2d", "in_shape": [1, 3000, 3000],
                                       "stride": [1, 1], "padding": [1, 1]})))
    np.savez(tmp_path / "s.npz", spikes=np.zeros((1, 1, 9_000_000), bool))
    line = one_line_error(run("-m", "dalif_hw.golden", "--params", tmp_path / "p.npz",
                              "--stimulus", tmp_path / "s.npz", "--out", tmp_path / "t.npz"))
    assert line.startswith(f"error: the integer twin of {tmp_path / 'p.npz'} (18000000 neurons "
                           "x 9000000 inputs) needs about ")


def npy_header(shape, dtype) -> bytes:
    """The .npy header of an array of ``shape``: what a file declares, without its data."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(
        np.dtype(dtype)), "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_declared_sizes_are_checked_before_anything_is_allocated(tmp_path):
    import io
    import shutil
    import zipfile

    import h5py

    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive:
        archive.writestr("weight.npy", npy_header((100_000, 100_000), "<i8"))
        for key, value in dict(alpha=np.zeros(3, np.int64), beta=np.zeros(3, np.int64),
                               threshold=np.array(1), meta=np.array(json.dumps(
                                   {"WB": 8, "DB": 8, "VB": 16, "reset": "hard"}))).items():
            buf = io.BytesIO()
            np.save(buf, value)
            archive.writestr(f"{key}.npy", buf.getvalue())
    np.savez(tmp_path / "s.npz", spikes=np.zeros((1, 1, 3), bool))
    line = one_line_error(run("-m", "dalif_hw.golden", "--params", tmp_path / "bomb.npz",
                              "--stimulus", tmp_path / "s.npz", "--out", tmp_path / "t.npz"))
    assert line == ("error: params array 'weight' declares shape [100000, 100000], 74.5 GiB: "
                    "more than the 1 GiB an array may hold")
    # A .nir file of 60 KB that declares a dataset of 2 GiB it never wrote.
    shutil.copy(ROOT / "tests" / "fixtures" / "nir" / "spikingjelly_dense.nir",
                tmp_path / "big.nir")
    with h5py.File(tmp_path / "big.nir", "a") as f:
        f["node"].create_dataset("huge", shape=(2**28,), dtype="f8")
    line = one_line_error(run("-m", "dalif_hw.nir", "import", tmp_path / "big.nir", "--out",
                              tmp_path / "m.pt"))
    assert line == (f"error: NIR file {str(tmp_path / 'big.nir')!r} declares 2 GiB of arrays "
                    "('node/huge' the largest): more than the 1 GiB a graph may hold")


def snapshot(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_pack_replaces_its_folder_whole_and_refuses_anothers(tmp_path):
    from dalif_hw.model import DALIFConvNet
    from dalif_hw.model.train import CONV_LAYERS

    # A convolutional network packed first, then the MLP into the same folder: conv0's
    # files must go (they did not before: the folder mixed two networks).
    conv = DALIFConvNet((1, 8, 8), CONV_LAYERS, classes=10)
    save_checkpoint(tmp_path / "conv.pt", conv, TrainOptions(model="conv"), {})
    result = run("-m", "dalif_hw.pack", tmp_path / "conv.pt", "--out", tmp_path / "p")
    assert result.returncode == 0, result.stderr
    assert "conv0.npz" in snapshot(tmp_path / "p")
    assert (tmp_path / "p" / ".dalif-hw-set.json").is_file()
    first = packed_network(tmp_path)          # the MLP, into p: pack's own set, replaced
    assert run("-m", "dalif_hw.pack", tmp_path / "model.pt", "--out",
               tmp_path / "fresh").returncode == 0
    assert set(snapshot(first)) == set(snapshot(tmp_path / "fresh")), "files of the old set"
    assert not any(p.name.startswith(".p.") for p in tmp_path.iterdir()), "temporaries left"
    # A folder of files pack did not write is refused, whole, unless --force.
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    line = one_line_error(run("-m", "dalif_hw.pack", tmp_path / "conv.pt", "--out", other))
    assert line == (f"error: --out {str(other)!r} holds files that pack did not write "
                    "(precious.txt): it replaces the folder whole; give another folder, or "
                    "--force to replace it anyway")
    assert snapshot(other) == {"precious.txt": b"keep me"}
    assert run("-m", "dalif_hw.pack", tmp_path / "conv.pt", "--out", other,
               "--force").returncode == 0
    assert "precious.txt" not in snapshot(other)
    # A folder that holds the checkpoint is refused, --force or not.
    line = one_line_error(run("-m", "dalif_hw.pack", tmp_path / "conv.pt", "--out", tmp_path,
                              "--force"))
    assert "holds the input" in line and (tmp_path / "conv.pt").is_file()


def test_a_failed_or_interrupted_set_leaves_the_old_one(tmp_path):
    from dalif_hw.core.files import replace_folder

    folder = tmp_path / "set"
    replace_folder(folder, lambda d: (d / "a.txt").write_text("old"), "test")
    before = snapshot(folder)

    def half_then_fail(d):
        (d / "a.txt").write_text("new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_folder(folder, half_then_fail, "test")
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"], "temporaries left"


def test_half_a_network_yaml_is_refused(tmp_path):
    folder = packed_network(tmp_path)
    text = (folder / "network.yaml").read_text()
    (folder / "network.yaml").write_text(text[:text.index("- name: readout")])
    line = one_line_error(run("-m", "dalif_hw.gen", "--network", folder, "--out",
                              tmp_path / "rtl"))
    assert line.startswith(f"error: {folder / 'network.yaml'} does not describe readout.npz, "
                           "readout_bias.hex, readout_weights.hex,")
    assert line.endswith("which pack wrote with it: it is truncated or edited; pack the "
                         "network again")
    assert not (tmp_path / "rtl").exists()


def test_gen_removes_only_what_a_design_of_its_name_writes(tmp_path):
    out = tmp_path / "out"
    assert run("-m", "dalif_hw.gen", "--neurons", 4, "--T", 2, "--out", out).returncode == 0
    manifest = json.loads((out / "dalif_array.json").read_text())
    manifest["memories"].append({"name": "x", "file": "precious.txt"})    # a hostile manifest
    (out / "dalif_array.json").write_text(json.dumps(manifest))
    (out / "precious.txt").write_text("keep me")
    assert run("-m", "dalif_hw.gen", "--neurons", 4, "--T", 2, "--out", out).returncode == 0
    assert (out / "precious.txt").read_text() == "keep me"


def test_gen_refuses_to_write_into_a_packed_network(tmp_path):
    folder = packed_network(tmp_path)
    before = snapshot(folder)
    line = one_line_error(run("-m", "dalif_hw.gen", "--neurons", 4, "--T", 2, "--name",
                              "hidden0", "--out", folder))
    assert line == (f"error: --out {str(folder)!r} holds a packed network (network.yaml), whose "
                    "files a design there could overwrite: generate into another folder")
    assert snapshot(folder) == before


@pytest.mark.parametrize("command", [
    ["-m", "dalif_hw.golden", "--params", "INPUT", "--stimulus", "INPUT", "--out", "OUT"],
    ["-m", "dalif_hw.pack", "INPUT", "--out", "OUT"],
    ["-m", "dalif_hw.nir", "import", "INPUT", "--out", "OUT"],
])
@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "folder"])
def test_an_input_that_is_no_regular_file_is_named_so(tmp_path, command, special):
    import os

    if special == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)                       # would block a reader forever
    elif special == "folder":
        path = tmp_path / "folder"
        path.mkdir()
    else:
        path = special
    argv = [str(path) if a == "INPUT" else str(tmp_path / "out") if a == "OUT" else a
            for a in command]
    line = one_line_error(run(*argv))
    kind = "a folder" if special == "folder" else \
        "not a regular file (a fifo, a socket or a device)"
    assert line.endswith(f"{str(path)!r} is {kind}"), line
    assert not (tmp_path / "out").exists()


def earlier_synth_set(folder):
    """A folder as an earlier ``synth --board ... --placeholder-weights`` left it (its
    record names its files): a bitstream and the placeholder it can be patched from."""
    folder.mkdir()
    files = {"dalif_array.bit": b"old bitstream", "dalif_array.config": b"old config",
             "dalif_array_weights.placeholder.hex": b"0123\n", "dalif_array.json": b"{}"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / ".dalif-hw-set.json").write_text(json.dumps(
        {"command": "synth", "files": sorted(files)}))
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("extra, message", [
    (["--target", "ecp5-25k", "--board", "icebreaker"], "--board icebreaker is an ice40 board"),
    (["--target", "ecp5-85k", "--board", "ulx3s", "--baud", "7000000"], "--baud"),
])
def test_a_refused_synth_leaves_the_earlier_set(tmp_path, extra, message):
    """The probe: a synth refused after its placeholders were made (a board of another
    family, a baud rate the board's clock cannot make) replaced the placeholder beside the
    old bitstream, which could then no longer be patched."""
    before = earlier_synth_set(tmp_path / "b")
    line = one_line_error(run("-m", "dalif_hw.synth", "--neurons", "8", "--inputs", "8",
                              "--T", "2", "--placeholder-weights", *extra, "--out",
                              tmp_path / "b"))
    assert message in line
    assert {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["b"]        # no sibling left behind


def test_an_interrupted_synth_leaves_the_earlier_set(tmp_path, monkeypatch):
    """Ctrl-C in the middle of the flow (here: as the first tool starts): the old set stays
    whole and the half-built one is removed."""
    from dalif_hw import cli, synth

    before = earlier_synth_set(tmp_path / "b")

    def interrupted(design, name, target, work, **options):
        (work / f"{name}.v").write_text("module half_written;")
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "synthesize", interrupted)
    code = cli.run(synth.main, ["--target", "ecp5-85k", "--neurons", "8", "--inputs", "8",
                                "--T", "2", "--placeholder-weights", "--out",
                                str(tmp_path / "b")])
    assert code == 130
    assert {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


def test_synth_refuses_a_folder_of_other_files_unless_forced(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "precious.txt").write_text("mine")
    line = one_line_error(run("-m", "dalif_hw.synth", "--target", "ecp5-25k", "--neurons", "8",
                              "--inputs", "8", "--T", "2", "--out", tmp_path / "b"))
    assert "holds files that synth did not write (precious.txt)" in line and "--force" in line
    assert (tmp_path / "b" / "precious.txt").read_text() == "mine"


def fake_flow(fits, tried):
    """Stands for the flow (synthesize): records the lanes of each design it gets and says
    that it does not fit unless ``fits(lanes)``."""
    from dalif_hw.flow.synthesis import DoesNotFit, Report

    def flow(design, name, target, work, **options):
        from amaranth.hdl import Fragment

        Fragment.get(design, None)        # elaborated, as the flow would (and no warnings)
        lanes = [layer.config.lanes for layer in design.network.weighted] \
            if hasattr(design, "network") else [design.config.lanes]
        tried.append(lanes)
        if not fits(lanes):
            raise DoesNotFit(f"ICESTORM_LC {2000 * sum(lanes)} of 5280 "
                             f"({2000 * sum(lanes) / 52.8:.0f}%)")
        return Report(target, name, 1000 * sum(lanes), 900, 4, 2, 31.5, {}, {}, {})
    return flow


@pytest.mark.parametrize("network", [False, True])
def test_a_design_that_does_not_fit_names_lanes_that_do(tmp_path, monkeypatch, capsys,
                                                        network):
    """Item 5 of issue 25: a design refused for its size names the lanes at which it fits,
    found by halving them through the flow (here a stand-in flow: a design fits at lanes
    whose sum is at most 2)."""
    from dalif_hw import cli, synth

    tried = []
    monkeypatch.setattr(synth, "synthesize", fake_flow(lambda lanes: sum(lanes) <= 2, tried))
    design = ["--network", str(packed_network(tmp_path))] if network else \
        ["--neurons", "64", "--inputs", "16", "--T", "2", "--lanes", "8"]
    code = cli.run(synth.main, ["--target", "ice40-up5k", *design, "--out",
                                str(tmp_path / "b")])
    out, err = capsys.readouterr()
    assert code == 2
    if network:     # the packed network's lanes: hidden 6, readout 10
        assert tried == [[6, 10], [3, 5], [1, 2], [1, 1]]
        assert err == ("error: the design does not fit ice40-up5k: ICESTORM_LC 32000 of 5280 "
                       f"(606%) (--out {str(tmp_path / 'b')!r} left as it was); it fits at "
                       "lanes 1,1 (2000 LUTs, 4 block RAMs, 2 DSP blocks, 31.5 MHz, measured "
                       "now): pack the network with --lanes 1,1\n")
    else:
        assert tried == [[8], [4], [2]]
        assert err.endswith("it fits at lanes 2 (2000 LUTs, 4 block RAMs, 2 DSP blocks, 31.5 "
                            "MHz, measured now): give --lanes 2\n")
    assert "the design does not fit; trying lanes" in out
    assert not (tmp_path / "b").exists()
    # Without the search, or where no halving fits: the refusal alone.
    tried.clear()
    monkeypatch.setattr(synth, "synthesize", fake_flow(lambda lanes: False, tried))
    assert cli.run(synth.main, ["--target", "ice40-up5k", *design, "--out",
                                str(tmp_path / "b"), "--no-fit-search"]) == 2
    assert len(tried) == 1 and capsys.readouterr().err.endswith("left as it was)\n")


def test_a_params_file_linked_out_of_the_network_folder_is_refused(tmp_path):
    """The probe: a network folder whose hidden0.npz is a symlink to a file elsewhere was
    followed without a word."""
    folder = packed_network(tmp_path)
    elsewhere = tmp_path / "elsewhere.npz"
    (folder / "hidden0.npz").rename(elsewhere)
    (folder / "hidden0.npz").symlink_to(elsewhere)
    line = one_line_error(run("-m", "dalif_hw.gen", "--network", folder, "--out",
                              tmp_path / "rtl"))
    assert line == (f"error: {folder / 'network.yaml'}: layer hidden0: params 'hidden0.npz' is "
                    f"a link to {str(elsewhere.resolve())!r}, outside the network folder: a "
                    "packed network holds its own files (copy it in)")
    assert not (tmp_path / "rtl").exists()


def test_a_nir_stride_of_zero_is_one_line(tmp_path):
    """The probe: a NIR Conv2d with stride 0 was refused with numpy's RuntimeWarning (two
    lines from inside nir.read) before the refusal."""
    import h5py
    import nir

    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=np.ones((2, 1, 3, 3), np.float32),
                           stride=np.array([1, 1]), padding=np.array([1, 1]),
                           dilation=np.array([1, 1]), groups=1, bias=np.zeros(2, np.float32)),
        "lif": nir.IF(r=np.ones((2, 8, 8)), v_threshold=np.ones((2, 8, 8))),
        "output": nir.Output(output_type={"output": np.array([2, 8, 8])})},
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")])
    nir.write(tmp_path / "s0.nir", graph)
    with h5py.File(tmp_path / "s0.nir", "r+") as f:
        f["node/nodes/conv/stride"][...] = 0        # what nir.write itself would not write
    for command in (["-m", "dalif_hw.nir", "import", tmp_path / "s0.nir", "--out",
                     tmp_path / "m.pt"],
                    ["-m", "dalif_hw.pack", tmp_path / "s0.nir", "--T", 4, "--out",
                     tmp_path / "p"]):
        line = one_line_error(run(*command))
        assert line.startswith(f"error: NIR file {str(tmp_path / 's0.nir')!r} cannot be read")
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "p").exists()
