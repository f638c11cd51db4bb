"""Running a docs page's walk-through as written: its Python block saved as a script, then
its shell commands, each of which must succeed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).parent.parent / "docs"


def walk_through(page: str) -> tuple[str, list[str]]:
    """The Python block and the shell commands of ``docs/<page>``'s walk-through."""
    text = (DOCS / page).read_text()
    walk = text[text.index("## Walk-through"):]
    python = re.search(r"```python\n(.*?)```", walk, re.S).group(1)
    return python, re.search(r"```sh\n(.*?)```", walk, re.S).group(1).strip().splitlines()


def run_walk_through(page: str, tmp_path: Path, script: str, skip_last: bool = False,
                     every: bool = False):
    """Run the walk-through of ``docs/<page>`` in ``tmp_path``: its Python block as
    ``script`` (the first command must run it), then its commands (all but the last with
    ``skip_last``). Returns the JSON summary the last command run printed last (with
    ``every``, the list of the summaries of every command that ends in one)."""
    python, commands = walk_through(page)
    (tmp_path / script).write_text(python)
    assert commands[0] == f"python {script}", commands[0]
    summaries = run_commands(tmp_path, commands[:-1] if skip_last else commands)
    return summaries if every else summaries[-1]


def run_commands(folder: Path, commands: list[str]) -> list[dict]:
    """Run ``python ...`` command lines in ``folder``, each of which must succeed; return the
    JSON summaries that those ending in one printed last (``verify``'s)."""
    summaries = []
    for line in commands:
        args = line.split()
        assert args[0] == "python"
        result = subprocess.run([sys.executable, *args[1:]], cwd=folder, capture_output=True,
                                text=True)
        assert result.returncode == 0, f"{line}:\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
        last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        if last.startswith("{"):
            summaries.append(json.loads(last))
    return summaries


#: Generate a packed network in ``packed`` and verify it on Verilator with ``s.npz``.
GEN_AND_VERIFY = ["python -m dalif_hw.gen --network packed --out rtl",
                  "python -m dalif_hw.verify --network packed --rtl rtl --stimulus s.npz"]


def rtl_equals_twin(folder: Path, model, network, stimulus, floor: float) -> None:
    """Save ``network`` (packed from ``model``) and ``stimulus`` [S, T, M] (spikes, or counts
    for analog input) in ``folder``; check that its twin keeps at least ``floor`` of the float
    model's spikes in every layer; generate it and verify it on Verilator: 0 mismatches."""
    import numpy as np

    from dalif_hw.twin.agreement import agreement

    network.save(folder / "packed")
    key = "spikes" if stimulus.dtype == bool else "counts"
    np.savez(folder / "s.npz", **{key: stimulus})
    agree = agreement(model, network, stimulus)
    assert min(value for _, value in agree.layers) >= floor, agree
    summary, = run_commands(folder, GEN_AND_VERIFY)
    assert summary["mismatches"] == 0 and summary["samples"] == len(stimulus), summary
