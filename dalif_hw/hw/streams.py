"""The event stream shared by every neuron array's input and output.

Payload: ``index`` (the input or neuron number) at bit 0, ``eot`` (end of timestep) above it.
A beat with ``eot = 1`` carries no spike. Valid/ready handshakes follow AXI-Stream rules.

Inside a network, a sum pool's stream to the one layer it feeds may carry counts
(:mod:`.pool`): a ``shift`` field above ``eot``, the beat standing for 2 ** shift beats of its
index (the accumulator adds its weights shifted left by ``shift``). The network's own streams
never do.
"""

from __future__ import annotations

from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import Out

from ..core.config import index_width
from ..core.layout import Select

__all__ = ["event_layout", "event_signature", "beat_shift", "ConfigSignature"]


def event_layout(count: int, shifts: int = 1) -> data.StructLayout:
    """Payload layout of a stream whose indices run over ``count`` values, with a ``shift``
    field of ``shifts`` values where ``shifts`` > 1 (a beat counts 2 ** shift times)."""
    fields = {"index": index_width(count), "eot": 1}
    if shifts > 1:
        fields["shift"] = range(shifts)
    return data.StructLayout(fields)


def event_signature(count: int, shifts: int = 1) -> stream.Signature:
    return stream.Signature(event_layout(count, shifts))


def beat_shift(payload):
    """A beat's ``shift`` (0 where its stream carries no counts)."""
    return payload.shift if "shift" in payload.shape().members else 0


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
