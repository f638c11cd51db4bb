"""cocotb bench for a generated neuron array: runs the cases that the pytest side prepared.

Started by ``sim/test_neuron_array.py`` through ``dalif_hw.simulate.run_bench``; it knows the
array only through its manifest.
"""

import cocotb

from dalif_hw.simulate import bench_main


@cocotb.test()
async def run_cases(dut):
    await bench_main(dut)
