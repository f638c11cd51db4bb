"""Amaranth hardware: event streams and the DA-LIF neuron array."""

from .neuron_array import UPDATE_LATENCY, NeuronArray
from .streams import ConfigSignature, event_layout, event_signature

__all__ = ["NeuronArray", "UPDATE_LATENCY", "ConfigSignature", "event_layout",
           "event_signature"]
