"""``python -m dalif_hw.explore`` on small sweeps: once on the local cluster the command
starts itself, once through the address of a scheduler the test starts (the path a real
cluster takes). Points that fail (a weight width whose datapath would not fit 63 bits) or
do not fit (16 lanes need 32 multipliers, the UP5K has 8 DSP blocks, and the rest in logic
overflow its LCs) are reported and the sweep goes on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dalif_hw import cli, explore

ARRAY = ["--neurons", "16", "--inputs", "8", "--T", "2", "--samples", "16",
         "--target", "ice40-up5k"]


def read(out):
    return {(r["lanes"], r["WB"]): r for r in json.loads((out / "results.json").read_text())}


def test_sweep_on_a_local_cluster(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = cli.run(explore.main, [*ARRAY, "--lanes", "2,16", "--weight-width", "8,60",
                                  "--out", str(out)])
    assert code == 0
    results = read(out)
    assert sorted(results) == [(2, 8), (2, 60), (16, 8), (16, 60)]
    fits = results[(2, 8)]
    assert fits["fits"] and 0 < fits["luts"] <= 5280 and fits["fmax_mhz"] > 10
    assert fits["us_per_inference"] == pytest.approx(
        fits["cycles_per_inference"] / fits["fmax_mhz"], rel=1e-2)
    assert results[(16, 8)]["fits"] is False
    assert "ICESTORM_LC" in results[(16, 8)]["over"]
    for lanes in (2, 16):
        assert results[(lanes, 60)]["error"].startswith("ConfigError: widths WB=60")
    stdout = capsys.readouterr().out
    assert "ice40-up5k: fastest that fits: lanes 2, WB 8: " in stdout
    table = (out / "results.md").read_text()
    assert "| ice40-up5k | 2 | 8 | True |" in table and "yes" in table
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_through_a_scheduler_address(tmp_path, capsys):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        out = tmp_path / "remote"
        code = cli.run(explore.main, [*ARRAY, "--lanes", "2", "--scheduler",
                                      cluster.scheduler_address, "--out", str(out)])
    assert code == 0
    [(key, result)] = read(out).items()
    assert key == (2, 8) and result["fits"] and result["luts"] > 0
    capsys.readouterr()
    assert cli.run(explore.main, [*ARRAY, "--lanes", "2", "--scheduler", "tcp://127.0.0.1:9",
                                  "--out", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Dask scheduler --scheduler "
                          "'tcp://127.0.0.1:9': ") and err.count("\n") == 1


def test_lanes_per_layer(tmp_path, capsys):
    """``--lanes 2,4:2``: a number for every layer, or one per layer with neurons; a list of
    the wrong length fails that point with a message."""
    from dalif_hw.core.params import IntParams, ReadoutParams
    from dalif_hw.flow.explore import build_network
    from dalif_hw.quant.packed import Dense, Network, Readout

    assert explore.build_parser().parse_args(
        ["--neurons", "8", "--lanes", "2,4:2", "--target", "ecp5-25k", "--out", "x"]
    ).lanes == [2, "4:2"]
    with pytest.raises(SystemExit) as exit_info:
        explore.main(["--neurons", "8", "--lanes", "4:x", "--target", "ecp5-25k", "--out",
                      str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "--lanes takes comma-separated lanes (P, or P:P:... per layer), not '4:x'" in \
        capsys.readouterr().err
    rng = np.random.default_rng(0)
    hidden = IntParams(weight=rng.integers(-8, 8, (12, 6)), alpha=np.full(12, 200),
                       beta=np.full(12, 100), threshold=np.full(12, 5), bias=np.zeros(12, int))
    out = ReadoutParams(weight=rng.integers(-8, 8, (3, 12)), bias=np.zeros(3, int))
    Network(T=2, encoding={"kind": "spikes", "T": 2}, layers=[
        Dense("hidden0", hidden.config(2, lanes=4, acc_lanes=12, second_set=False), hidden,
              1.0),
        Readout("readout", out.config(2), out, 1.0)]).save(tmp_path / "net")
    design = {"network": str(tmp_path / "net")}
    net = build_network(design, "4:2", 8)
    assert [layer.config.lanes for layer in net.layers] == [4, 2]
    # The packed accumulation lanes stay where they fit the new lanes; the second set as packed.
    assert [layer.config.acc_lanes for layer in net.layers] == [12, 2]
    assert [layer.config.second_set for layer in net.layers] == [False, None]
    assert build_network(design, 8, 8).layers[0].config.acc_lanes == 8
    assert [layer.config.lanes for layer in build_network(design, 16, 8).layers] == [12, 3]
    with pytest.raises(ValueError, match="lanes 4:2:2 name 3 layers, the network has 2"):
        build_network(design, "4:2:2", 8)


def test_conv_layers_keep_their_channels_at_once(tmp_path):
    """A conv2d layer's accumulation lanes are P x PK (PK output channels a spike reaches at
    once): at new lanes it keeps PK, and the cycle model follows the operations per spike."""
    from dalif_hw.core.params import ConvParams, ReadoutParams
    from dalif_hw.flow.explore import build_network, cycles_per_inference
    from dalif_hw.quant.packed import Conv2d, Network, Readout

    rng = np.random.default_rng(1)
    conv = ConvParams(weight=rng.integers(-8, 8, (4, 1, 3, 3)), alpha=np.full(4, 200),
                      beta=np.full(4, 100), threshold=np.array(3), bias=np.zeros(4, int),
                      in_shape=(1, 6, 6), padding=(1, 1))
    out = ReadoutParams(weight=rng.integers(-8, 8, (3, 144)), bias=np.zeros(3, int))
    Network(T=2, encoding={"kind": "spikes", "T": 2}, layers=[
        Conv2d("conv0", conv.config(2, lanes=2, acc_lanes=8), conv, 1.0),
        Readout("readout", out.config(2), out, 1.0)]).save(tmp_path / "net")
    design = {"network": str(tmp_path / "net")}
    nets = {P: build_network(design, f"{P}:3", 8) for P in (2, 3, 6)}
    assert [nets[P].layers[0].config.acc_lanes for P in (2, 3, 6)] == [8, 12, 24]
    spikes = rng.random((4, 2, 36)) < 0.5
    # More columns a cycle: fewer operations per spike, fewer cycles.
    cycles = [cycles_per_inference(nets[P], spikes) for P in (2, 3, 6)]
    assert cycles[0] > cycles[1] > cycles[2], cycles


def session_processes(sid: int) -> list[str]:
    """The command lines of the processes still in session ``sid``."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_ctrl_c_ends_explore_quietly(tmp_path):
    """Issue 25 item 6: a terminal's Ctrl-C (SIGINT to the whole process group) while the
    workers run their points ends the sweep with one line: no traceback (it printed one per
    semaphore of the resource tracker), no nanny restarting a killed worker, no process of
    the session left (a place and route outlived it)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "dalif_hw.explore", "--neurons", "8", "--lanes", "2,4",
         "--target", "ecp5-25k", "--T", "2", "--workers", "2", "--out", str(tmp_path / "o")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "o" / "points").is_dir() and time.monotonic() < deadline:
            time.sleep(0.2)                    # the workers have started their points
        assert (tmp_path / "o" / "points").is_dir()
        time.sleep(1.0)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted (SIGINT): nothing was left half-written"
    for noise in ("Traceback", "WARNING", "Restarting", "KeyboardInterrupt"):
        assert noise not in err, err
    # Multiprocessing's resource tracker, spared, ends as soon as it sees that the sweep
    # has: give it a moment.
    deadline = time.monotonic() + 10
    while session_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_processes(process.pid) == []
