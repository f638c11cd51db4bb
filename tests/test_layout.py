"""The layout keeps its promise: each stage of the flow imports only the stages before it
(README, "What is here"), as the import-linter contract in pyproject.toml states. A failure
names the import that breaks it."""

from __future__ import annotations

import subprocess
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own TOML reader
    import tomli as tomllib

from dalif_hw.core.tools import find_tool

ROOT = Path(__file__).resolve().parent.parent


def layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    return [name.strip() for layer in contract["layers"] for name in layer.split("|")]


def test_every_stage_has_its_place_in_the_contract():
    """A new subpackage must be placed in the order, or the contract would not see it."""
    packages = {f"dalif_hw.{p.name}" for p in (ROOT / "dalif_hw").iterdir()
                if (p / "__init__.py").is_file()}
    assert packages == set(layers())


def test_each_stage_imports_only_the_stages_before_it():
    tool = find_tool("lint-imports")
    assert tool is not None, "lint-imports (import-linter, the [dev] extra) is not installed"
    result = subprocess.run([tool, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout
