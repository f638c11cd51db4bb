"""Amaranth hardware. Components, each behind a narrow interface:

- ``streams``: the event stream and the configuration port;
- ``accumulate``: :class:`SpikeAccumulator` (spike-driven, per input spike) behind
  ``AccumulatorSignature``;
- ``update``: :class:`NeuronUpdate`, the DA-LIF neurons (decays, rounding, saturation,
  threshold, reset, write-back) and the stage list ``STAGES``;
- ``serialize``: :class:`SpikeSerializer`, spike masks to events in ascending order;
- ``neuron_array``, ``readout``, ``network``, ``board``: layers and tops built from them;
- ``uart``, ``link``: the board top's host link (UART, framed protocol, CRC-16);
- ``emit`` (Verilog, manifest, ``.hex``), ``checks`` (protocol assertions), ``arith`` (HDL
  saturation), ``rom`` (ROMs read through block-RAM output registers).
"""

from .accumulate import AccumulatorSignature, SpikeAccumulator
from .neuron_array import PUSH_LATENCY, UPDATE_LATENCY, NeuronArray
from .serialize import SpikeSerializer
from .streams import ConfigSignature, event_layout, event_signature
from .update import STAGES, NeuronUpdate

__all__ = ["NeuronArray", "SpikeAccumulator", "AccumulatorSignature", "NeuronUpdate",
           "SpikeSerializer", "STAGES", "UPDATE_LATENCY", "PUSH_LATENCY", "ConfigSignature",
           "event_layout", "event_signature"]
