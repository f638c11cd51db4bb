"""dalif-hw: FPGA accelerators for spiking neural networks of DA-LIF neurons.

The packages follow the flow, data moving one way: ``core`` (widths, rounding, saturation,
files: what every stage shares) -> ``model`` (PyTorch, training, checkpoints) -> ``quant``
(float to integer, the packed network) -> ``twin`` (the integer twin) and ``hw`` (Amaranth)
-> ``harness`` (Verilator/cocotb, verify, formal proofs) -> ``flow`` (Yosys/nextpnr,
bitstreams). The modules at the top are the commands: ``python -m dalif_hw.gen``,
``.golden``, ``.pack``, ``.verify``, ``.synth``, ``.patch``.
"""

from .core.config import ArrayConfig, ConfigError
from .core.params import IntParams, load_params, load_stimulus

__all__ = ["ArrayConfig", "ConfigError", "IntParams", "load_params", "load_stimulus"]
__version__ = "0.1.0"
