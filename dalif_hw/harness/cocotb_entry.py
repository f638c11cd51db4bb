"""The cocotb test that :func:`dalif_hw.harness.verilator.run_bench` starts in the simulator.

It runs the cases that the Python side prepared (``$DALIF_CASES``) on a generated array or
network, which it knows only through the manifest, and writes ``$DALIF_RESULTS``.
"""

import cocotb

from .verilator import bench_main


@cocotb.test()
async def run_cases(dut):
    await bench_main(dut)
