"""The whole board top on Verilator, driven by the host driver over a simulated serial line
(bit-level UART at clk/4: 3 Mbaud at the iCEBreaker's 12 MHz), end to end: the design's
hash (and the refusal of another design), bad frames answered with errors, a host that
disappears mid-frame, the weight load over the link into SPRAM-style weight memories that
start empty (the iCEBreaker build), then digits classified and compared with the integer
twin logit by logit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dalif_hw.flow.targets import TARGETS
from dalif_hw.harness.verilator import build, run_module
from dalif_hw.hw.board import BoardTop
from dalif_hw.hw.emit import to_verilog
from dalif_hw.hw.network import NetworkTop
from dalif_hw.model.train import held_out_stimulus
from dalif_hw.quant.packed import Network

ROOT = Path(__file__).parent.parent
CLOCK_HZ, DIVISOR = 12e6, 4


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The digits network, trained and packed as for the iCEBreaker (8-bit weights, 4 and 2
    lanes), and its board top as the UP5K build makes it (weights in single-port memories
    without initial contents, SPRAM on the chip) built on Verilator."""
    work = tmp_path_factory.mktemp("board")
    for args in ([str(ROOT / "train" / "digits.py"), "--out", "runs/digits", "--threads", "1"],
                 ["-m", "dalif_hw.pack", "runs/digits/model.pt", "--out", "packed",
                  "--lanes", "4,2"]):
        result = subprocess.run([sys.executable, *args], cwd=work, capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stderr[-2000:]
    network = Network.load(work / "packed")
    top = BoardTop(NetworkTop(network, **TARGETS["ice40-up5k"].build_options), DIVISOR)
    verilog = work / "dalif_board.v"
    verilog.write_text(to_verilog(top, "dalif_board"))
    assert 'ram_style = "huge"' in verilog.read_text()
    build_dir = build(verilog, "dalif_board", ROOT / "sim_build" / "board_digits")
    return work, network, build_dir


def run_board(work: Path, build_dir: Path, network: Network, samples: int | None, name: str):
    spikes, labels, _ = held_out_stimulus(network, samples)
    stimulus = work / f"{name}.npz"
    np.savez(stimulus, spikes=spikes, labels=labels)
    job = work / f"{name}.json"
    job.write_text(json.dumps({"network": str(work / "packed"), "stimulus": str(stimulus),
                               "clock_hz": CLOCK_HZ, "divisor": DIVISOR}))
    result = run_module(build_dir, "dalif_board", "dalif_hw.harness.board_bench",
                        work / name, {"DALIF_BOARD_JOB": str(job)})
    assert "error" not in result, result["error"]
    return result


def parameters(network: Network) -> int:
    """How many values the network's layers hold (each one write over the link)."""
    return sum(np.size(getattr(layer.params, name)) for layer in network.layers
               for name in ("weight", "alpha", "beta", "threshold", "bias")
               if getattr(layer.params, name, None) is not None)


def check_session(result: dict, samples: int, network: Network):
    session = result["session"]
    print(json.dumps(session, indent=1))
    assert session["samples"] == samples
    assert session["mismatches"] == 0, session["first_mismatch"]
    assert session["board_acc"] == session["int_acc"]
    assert session["writes"] == parameters(network)


def test_board_end_to_end(digits):
    work, network, build_dir = digits
    result = run_board(work, build_dir, network, 20, "twenty")
    assert "runs design" in result["mismatch_refused"]
    refusals = result["refusals"]
    assert "error CRC" in refusals["crc"], refusals
    assert "error TYPE" in refusals["type"], refusals
    assert "error TIMEOUT" in refusals["cut"], refusals
    check_session(result, 20, network)
    assert result["session"]["board_acc"] >= 0.9


@pytest.mark.slow
def test_board_all_held_out_digits(digits):
    work, network, build_dir = digits
    result = run_board(work, build_dir, network, None, "all")
    check_session(result, 360, network)
    assert result["session"]["board_acc"] >= 0.96
