"""FPGA targets and boards: parts, packages, tool families, block-RAM slices, pins."""

from __future__ import annotations

import dataclasses
from pathlib import Path

#: Board pins, shipped inside the package (so ``--board`` works from any install).
CONSTRAINTS = Path(__file__).parent / "constraints"



@dataclasses.dataclass(frozen=True)
class Target:
    family: str
    nextpnr_args: tuple
    # nextpnr's names for: LUTs, flip-flops (None: count Yosys cells), block RAM, DSP
    luts: str
    ffs: str | None
    brams: str
    dsps: str
    capacity: dict
    #: Where the accumulators' weights go (:data:`dalif_hw.hw.accumulate.WEIGHT_RAMS`) and the
    #: spike FIFOs (:data:`dalif_hw.hw.serialize.FIFO_RAMS`), and the Yosys options that map
    #: them.
    weight_ram: str = "block"
    fifo_ram: str = "distributed"
    synth_options: str = ""
    #: The signed operand width of a DSP block's multiplier.
    dsp_width: int = 18

    @property
    def build_options(self) -> dict:
        """The memory choices and the DSP blocks there are, as keyword arguments of
        NeuronArray and NetworkTop."""
        return {"weight_ram": self.weight_ram, "fifo_ram": self.fifo_ram,
                "dsp_blocks": self.capacity["dsps"], "dsp_width": self.dsp_width}



TARGETS = {
    "ecp5-25k": Target("ecp5", ("--25k", "--package", "CABGA381", "--speed", "6"),
                       "TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D",
                       {"luts": 24288, "ffs": 24288, "brams": 56, "dsps": 28}),
    "ecp5-85k": Target("ecp5", ("--85k", "--package", "CABGA381", "--speed", "6"),
                       "TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D",
                       {"luts": 83640, "ffs": 83640, "brams": 208, "dsps": 156}),
    "ice40-up5k": Target("ice40", ("--up5k", "--package", "sg48"),
                         "ICESTORM_LC", None, "ICESTORM_RAM", "ICESTORM_DSP",
                         {"luts": 5280, "ffs": 5280, "brams": 30, "dsps": 8},
                         weight_ram="spram", fifo_ram="block", synth_options="-dsp -spram",
                         dsp_width=16),
}



#: Boards with constraints in dalif_hw/flow/constraints/: target family, file, clock pin name, MHz.
BOARDS = {
    "ulx3s": {"family": "ecp5", "file": "ulx3s.lpf", "clock_mhz": 25},
    "icebreaker": {"family": "ice40", "file": "icebreaker.pcf", "clock_mhz": 12},
}



#: Words of one bit slice as ``ecpbram`` (ECP5) and ``icebram`` (iCE40) find block-RAM
#: contents in a bitstream: every bit of the memory word, over each run of this many words,
#: must form a pattern that no other slice has.
SLICE_WORDS = {"ecp5": 512, "ice40": 256}
