"""docs/nir.md's walk-through runs as written: its Python block, then its shell commands up to
synthesis (synthesis of networks is tested in tests/test_synthesis.py; here it would add
minutes)."""

from __future__ import annotations

from walkthrough import run_walk_through, walk_through


def test_nir_walk_through_runs_as_written(tmp_path):
    assert walk_through("nir.md")[1][-1].startswith("python -m dalif_hw.synth ")
    summary = run_walk_through("nir.md", tmp_path, "export_snntorch.py", skip_last=True)
    assert summary["mismatches"] == 0 and summary["samples"] == 20, summary
    assert summary["spikes_out"] == 228, summary  # the figure the page quotes
