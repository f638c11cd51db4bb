"""The event stream shared by every neuron array's input and output.

Payload: ``index`` (the input or neuron number) at bit 0, ``eot`` (end of timestep) above it.
A beat with ``eot = 1`` carries no spike. Valid/ready handshakes follow AXI-Stream rules.
"""

from __future__ import annotations

from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import Out

from ..core.config import index_width
from ..core.layout import Select

__all__ = ["event_layout", "event_signature", "ConfigSignature"]


def event_layout(count: int) -> data.StructLayout:
    """Payload layout of a stream whose indices run over ``count`` values."""
    return data.StructLayout({"index": index_width(count), "eot": 1})


def event_signature(count: int) -> stream.Signature:
    return stream.Signature(event_layout(count))


class ConfigSignature(wiring.Signature):
    """The run-time configuration write port.

    ``en`` for one cycle writes ``data`` into lane ``lane`` of word ``addr`` of the memory that
    ``sel`` names (:class:`dalif_hw.core.layout.Select`, which sets its width). Idle at 0; a
    write takes effect the next cycle.
    """

    def __init__(self, addr: int, lane: int, data: int):
        super().__init__({
            "en": Out(1), "sel": Out(Select.width()), "addr": Out(addr), "lane": Out(lane),
            "data": Out(data),
        })
