"""dalif-hw: FPGA accelerators for spiking neural networks of DA-LIF neurons.

The pipeline, one module each: ``model`` (PyTorch), ``pack`` (float to integer),
``twin`` (the integer twin, what the hardware computes), ``golden`` (traces on the
command line). ``config`` holds the widths, rounding and saturation they all share.
"""

from .config import ArrayConfig, ConfigError
from .params import IntParams, load_params, load_stimulus

__all__ = ["ArrayConfig", "ConfigError", "IntParams", "load_params", "load_stimulus"]
__version__ = "0.1.0"
