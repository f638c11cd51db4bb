"""docs/nir.md's walk-through runs as written: its Python block, then its shell commands up to
synthesis (synthesis of networks is tested in tests/test_synthesis.py; here it would add
minutes)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parent.parent / "docs" / "nir.md"


def test_nir_walk_through_runs_as_written(tmp_path):
    text = DOC.read_text()
    walk = text[text.index("## Walk-through"):]
    python = re.search(r"```python\n(.*?)```", walk, re.S).group(1)
    commands = re.search(r"```sh\n(.*?)```", walk, re.S).group(1).strip().splitlines()
    (tmp_path / "export_snntorch.py").write_text(python)
    assert commands[0] == "python export_snntorch.py"
    assert commands[-1].startswith("python -m dalif_hw.synth ")
    out = ""
    for line in commands[:-1]:
        args = line.split()
        assert args[0] == "python"
        result = subprocess.run([sys.executable, *args[1:]], cwd=tmp_path, capture_output=True,
                                text=True)
        assert result.returncode == 0, f"{line}:\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
        out = result.stdout
    summary = json.loads(out.strip().splitlines()[-1])  # verify's
    assert summary["mismatches"] == 0 and summary["samples"] == 20, summary
    assert summary["spikes_out"] == 228, summary  # the figure the page quotes
