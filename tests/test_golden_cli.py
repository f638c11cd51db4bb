"""``python -m dalif_hw.golden``: the trace it writes and every input it refuses."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dalif_hw import cli, golden

N, M, T, S = 5, 4, 3, 2


def valid_arrays():
    rng = np.random.default_rng(0)
    return dict(weight=rng.integers(-128, 128, (N, M)).astype(np.int8),
                alpha=rng.integers(0, 257, N).astype(np.uint16),
                beta=rng.integers(0, 257, N).astype(np.int32),
                threshold=np.array(100, np.int16), bias=np.arange(N) - 2,
                meta=np.array(json.dumps({"WB": 8, "DB": 8, "VB": 16, "reset": "soft"})))


@pytest.fixture
def files(tmp_path):
    """Write params.npz and stimulus.npz; ``write(name, **changes)`` writes a variant."""
    def write(name="params.npz", drop=(), **changes):
        arrays = {**valid_arrays(), **changes}
        for key in drop:
            arrays.pop(key)
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    stimulus = tmp_path / "stimulus.npz"
    np.savez(stimulus, spikes=np.random.default_rng(1).random((S, T, M)) < 0.5)
    return tmp_path, write, stimulus


def test_writes_the_trace_of_the_twin(files):
    folder, write, stimulus = files
    out = folder / "sub" / "trace.npz"
    subprocess.run([sys.executable, "-m", "dalif_hw.golden", "--params", str(write()),
                    "--stimulus", str(stimulus), "--out", str(out)], check=True,
                   capture_output=True)
    trace = np.load(out)
    assert sorted(trace.files) == ["current", "membrane", "spikes_in", "spikes_out"]
    assert trace["spikes_in"].dtype == bool and trace["spikes_out"].dtype == bool
    assert trace["current"].shape == trace["membrane"].shape == (S, T, N)
    np.testing.assert_array_equal(trace["spikes_in"], np.load(stimulus)["spikes"])
    # The current is bias plus the weights of the inputs that spiked, recomputed here.
    a = valid_arrays()
    expected = np.einsum("stm,nm->stn", trace["spikes_in"].astype(int),
                         a["weight"].astype(int)) + a["bias"]
    np.testing.assert_array_equal(trace["current"], expected)
    np.testing.assert_array_equal(trace["spikes_out"], trace["membrane"] >= 100)


def bad(name, message, **changes):
    return pytest.param(changes, message, id=name)


META = {"WB": 8, "DB": 8, "VB": 16, "reset": "soft"}


def meta(**changes):
    return np.array(json.dumps({**META, **changes}))


@pytest.mark.parametrize("changes, message", [
    bad("no weight", "params file has no array 'weight' (it has: alpha, beta, threshold, bias, "
        "meta)", drop=("weight",)),
    bad("no meta", "params file has no array 'meta' (it has: weight, alpha, beta, threshold, "
        "bias)", drop=("meta",)),
    bad("weight 1-D", "weight must have shape [N, M] with N, M >= 1, not [5]",
        weight=np.zeros(N, int)),
    bad("weight float", "weight must have an integer dtype, not float64",
        weight=np.zeros((N, M))),
    bad("weight too big", "weight[1, 2] = 128 does not fit WB=8 signed bits [-128, 127]",
        weight=np.where(np.arange(N * M).reshape(N, M) == 6, 128, 0)),
    bad("weight too small", "weight[0, 0] = -129 does not fit WB=8 signed bits [-128, 127]",
        weight=np.full((N, M), -129)),
    bad("alpha shape", "alpha must have shape [5] (one per neuron), not [4]",
        alpha=np.zeros(4, int)),
    bad("alpha negative", "alpha[3] = -1 does not fit DB=8 decays [0, 256]",
        alpha=np.array([0, 0, 0, -1, 0])),
    bad("beta above one", "beta[0] = 257 does not fit DB=8 decays [0, 256]",
        beta=np.full(N, 257)),
    bad("threshold shape", "threshold must have shape [] (per layer) or [5] (per neuron), "
        "not [2, 5]", threshold=np.zeros((2, N), int)),
    bad("threshold too big", "threshold = 32768 does not fit VB=16 signed bits [-32768, 32767]",
        threshold=np.array(32768)),
    bad("threshold per neuron", "threshold[4] = -40000 does not fit VB=16 signed bits "
        "[-32768, 32767]", threshold=np.array([0, 0, 0, 0, -40000])),
    bad("bias too big", "bias[2] = 40000 does not fit VB=16 signed bits [-32768, 32767]",
        bias=np.array([0, 0, 40000, 0, 0])),
    bad("bias bool", "bias must have an integer dtype, not bool", bias=np.ones(N, bool)),
    bad("meta not json", "meta is not valid JSON (Expecting value: line 1 column 1 (char 0)): "
        "'WB=8'", meta=np.array("WB=8")),
    bad("meta not object", "meta must be a JSON object, not '[8, 8, 16]'",
        meta=np.array("[8, 8, 16]")),
    bad("meta no VB", "meta has no key 'VB'",
        meta=np.array(json.dumps({"WB": 8, "DB": 8, "reset": "hard"}))),
    bad("meta WB text", "meta WB must be an integer, not '8'", meta=meta(WB="8")),
    bad("meta DB zero", "meta DB must be at least 1, not 0", meta=meta(DB=0)),
    bad("meta number array", "meta must be a JSON string, not an array of int64 with shape ()",
        meta=np.array(8)),
    bad("unknown reset", "meta reset must be one of hard, soft, subtract, none, not 'zero'",
        meta=meta(reset="zero")),
])
def test_bad_params_are_refused(files, capsys, changes, message):
    folder, write, stimulus = files
    out = folder / "trace.npz"
    argv = ["--params", str(write(**changes)), "--stimulus", str(stimulus), "--out", str(out)]
    assert cli.run(golden.main, argv) == 1
    err = capsys.readouterr().err
    assert err == f"error: {message}\n"
    assert sorted(p.name for p in folder.iterdir()) == ["params.npz", "stimulus.npz"]


@pytest.mark.parametrize("spikes, message", [
    (np.zeros((S, T, M), np.int8), "stimulus spikes must have dtype bool, not int8"),
    (np.zeros((T, M), bool), "stimulus spikes must have shape [S, T, M] with S, T >= 1, "
                             "not [3, 4]"),
    (np.zeros((S, 0, M), bool), "stimulus spikes must have shape [S, T, M] with S, T >= 1, "
                                "not [2, 0, 4]"),
    (np.zeros((S, T, M + 1), bool), "stimulus spikes have 5 inputs but the weights have 4 "
                                    "(shape [2, 3, 5])"),
])
def test_bad_stimulus_is_refused(files, capsys, spikes, message):
    folder, write, _ = files
    stimulus = folder / "bad_stimulus.npz"
    np.savez(stimulus, spikes=spikes)
    argv = ["--params", str(write()), "--stimulus", str(stimulus), "--out",
            str(folder / "trace.npz")]
    assert cli.run(golden.main, argv) == 1
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (folder / "trace.npz").exists()


def test_missing_files_and_non_archives(files, capsys):
    folder, write, stimulus = files
    params = write()
    cases = [
        (["--params", str(folder / "nope.npz"), "--stimulus", str(stimulus)],
         f"params file '{folder / 'nope.npz'}' does not exist"),
        (["--params", str(params), "--stimulus", str(folder / "gone.npz")],
         f"stimulus file '{folder / 'gone.npz'}' does not exist"),
        (["--params", str(params), "--stimulus", str(stimulus), "--out", str(folder)],
         f"--out '{folder}' is a folder, not a file"),
    ]
    (folder / "text.npz").write_text("not a zip")
    cases.append((["--params", str(folder / "text.npz"), "--stimulus", str(stimulus)],
                  f"params file '{folder / 'text.npz'}' is not an .npz archive"))
    for argv, message in cases:
        if "--out" not in argv:
            argv = argv + ["--out", str(folder / "trace.npz")]
        assert cli.run(golden.main, argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
        assert not (folder / "trace.npz").exists()


def test_command_line_failure_exits_non_zero_and_keeps_an_old_trace(files):
    folder, write, stimulus = files
    out = folder / "trace.npz"
    out.write_bytes(b"old")
    result = subprocess.run([sys.executable, "-m", "dalif_hw.golden", "--params",
                             str(write(alpha=np.full(N, 300))), "--stimulus", str(stimulus),
                             "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == "error: alpha[0] = 300 does not fit DB=8 decays [0, 256]\n"
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in folder.iterdir()) == ["params.npz", "stimulus.npz",
                                                        "trace.npz"]
