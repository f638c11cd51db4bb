"""Pooling stages on the event stream (SPEC 6): no neurons, an index remap.

A spike at (c, y, x) becomes a beat at (c, y // PKH, x // PKW); spikes past the last whole
window are discarded (floor mode); eot beats pass through, and beats keep their order. Sum
pooling sends every spike on (the next layer then sees the sum over each window: its beat
cap is PKH PKW times its M); max pooling sends each pooled index at most once a timestep,
where it first occurs, from a seen-set of one bit per pooled index, cleared by the eot.

The remap is a ROM over the input indices (``PoolShape.index_map``), read as a beat enters
a one-beat buffer; the beat moves on with its target registered, and from there goes out (or
is discarded), each the next cycle it may: a beat a cycle. A FIFO in front gives the input a
registered ready, so that no combinational path runs from the next layer's ready back into
the layer before (it was the critical path of a convolutional network); one behind gives the
output a payload from registers.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from ..core.conv import PoolShape
from .rom import late_rom
from .streams import event_signature

__all__ = ["SpikePool"]


class SpikePool(wiring.Component):
    """A sum or max pooling stage (see the module docstring).

    Attributes
    ----------
    i : In(stream)
        Events over the C H W input indices.
    o : Out(stream)
        Events over the C (H // PKH) (W // PKW) pooled indices.
    err : Out(1)
        Always 0: a pooling stage drops nothing that SPEC 6 keeps.
    """

    def __init__(self, shape: PoolShape):
        if not isinstance(shape, PoolShape):
            raise TypeError(f"shape must be a PoolShape, not {shape!r}")
        self.shape = shape
        super().__init__({
            "i": In(event_signature(shape.inputs)),
            "o": Out(event_signature(shape.outputs)),
            "err": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n_out = self.shape.outputs
        index_map = self.shape.index_map()
        layout = data.StructLayout({"index": range(max(n_out, 2)), "inside": 1})

        # The input, through a FIFO whose ready is registered (three entries: a beat a cycle;
        # SyncFIFOBuffered of two passes one every other cycle).
        buffer = m.submodules.buffer = fifo.SyncFIFOBuffered(
            width=len(self.i.payload.as_value()), depth=3)
        m.d.comb += [buffer.w_data.eq(self.i.payload), buffer.w_en.eq(self.i.valid),
                     self.i.ready.eq(buffer.w_rdy)]
        beat = data.View(self.i.payload.shape(), buffer.r_data)
        take = buffer.r_en

        # Two stages: the beat *held* while its target is read from the ROM, then *sent* (or
        # discarded), its target from the ROM's registers (:func:`.rom.late_rom`) in its
        # first cycle there and kept in a register of its own after, so that no block RAM's
        # output (5.6 ns after the clock on the ECP5) runs into the output FIFO (a critical
        # path of the MNIST-shaped network, docs/hardware.md).
        held, sending, fresh = Signal(), Signal(), Signal()
        eot, in_range = Signal(), Signal()            # of the held beat
        s_eot, s_in_range = Signal(), Signal()        # of the beat being sent
        looked_up = late_rom(
            m, "pool_rom", layout,
            [{"index": int(max(j, 0)), "inside": int(j >= 0)} for j in index_map],
            beat.index, buffer.r_rdy & take)
        target, kept = Signal(layout), Signal(layout, reset_less=True)
        m.d.comb += target.eq(Mux(fresh, looked_up, kept))
        m.d.sync += kept.eq(target)
        send = Signal()
        if self.shape.kind == "maxpool":
            seen = Signal(n_out)
            m.d.comb += send.eq(s_eot | (s_in_range & target.inside &
                                         ~seen.bit_select(target.index, 1)))
        else:
            m.d.comb += send.eq(s_eot | (s_in_range & target.inside))
        # The output, through a FIFO too: its payload comes from registers.
        out = m.submodules.out_buffer = fifo.SyncFIFOBuffered(
            width=len(self.o.payload.as_value()), depth=3)
        pooled = data.View(self.o.payload.shape(), out.w_data)
        m.d.comb += [self.o.valid.eq(out.r_rdy), self.o.payload.eq(out.r_data),
                     out.r_en.eq(self.o.ready)]
        # The beat being sent leaves when the output FIFO has room, whether it is sent or
        # discarded: so the take of a beat (which enables the ROM) waits on registers alone,
        # not on the ROM's word through ``send`` (a discarded beat may wait a cycle more
        # under back-pressure).
        done = sending & out.w_rdy
        advance = ~sending | done                     # the held beat may move on
        m.d.comb += [take.eq(~held | advance),
                     out.w_en.eq(sending & send),
                     pooled.eot.eq(s_eot),
                     pooled.index.eq(target.index)]
        with m.If(buffer.r_rdy & take):
            m.d.sync += [held.eq(1), eot.eq(beat.eot),
                         in_range.eq(beat.index < self.shape.inputs)]
        with m.Elif(advance):
            m.d.sync += held.eq(0)
        m.d.sync += fresh.eq(advance & held)
        with m.If(advance):
            m.d.sync += [sending.eq(held), s_eot.eq(eot), s_in_range.eq(in_range)]
        if self.shape.kind == "maxpool":
            with m.If(done & s_eot):
                m.d.sync += seen.eq(0)
            with m.Elif(done & send):
                m.d.sync += seen.bit_select(target.index, 1).eq(1)
        return m
