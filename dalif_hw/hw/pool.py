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

*Counts.* Where a sum pool is fed by a layer with neurons and feeds one layer with neurons
alone (:func:`counted_pools`), the stage sends each pooled index once with its count instead
of count beats (its ROM then gives a pooled row's first index and the column): it gathers a
pooled row's counts (the columns of one channel and pooled row, from the PKH input rows that
reach it, which come one after the other in an array's ascending order) and, when a beat of
another row or the eot comes, hands the row to a second buffer that sends its nonzero
columns in ascending order while the next row gathers. A count c goes out as one beat per
bit set in it, each with ``shift`` = that bit's position (a beat counts 2 ** shift times:
the accumulator then needs a shift, not a multiplier), so a 2 x 2 window costs the layer
behind one beat, or two for 3 spikes, instead of up to four. The sums are the same whatever
order the input comes in (a row seen again is sent again; a count at the counter's top is
sent before it overflows), so the beat cap behind (the default inside a network: nothing
drops) and the results do not change.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..core.conv import PoolShape
from ..quant.kinds import INPUT, Readout, Spiking, SumPool
from .rom import late_rom
from .streams import event_signature

__all__ = ["SpikePool", "counted_pools", "count_shifts", "input_shifts"]


def count_shifts(shape: PoolShape) -> int:
    """The ``shift`` values of a counting pool's beats: the bits of a window's count."""
    return max(1, ceil_log2(shape.window[0] * shape.window[1] + 1))


def counted_pools(network) -> set:
    """The sum pools of ``network`` whose output carries counts: those fed by a layer with
    neurons (its output ascending, so that a pooled row's counts come together; not the
    network's input, whose beats beyond the beat cap are dropped one at a time) that feed one
    layer with neurons (or the readout) alone, as its only input."""
    counted = set()
    for layer in network.layers:
        if not isinstance(layer, SumPool) or layer.inputs[0] == INPUT or \
                not isinstance(network.layer(layer.inputs[0]), Spiking):
            continue
        consumers = network.consumers(layer.name)
        if len(consumers) == 1 and isinstance(consumers[0], (Spiking, Readout)) and \
                len(consumers[0].inputs) == 1:
            counted.add(layer.name)
    return counted


def input_shifts(network, layer, counted: set | None = None) -> int:
    """The ``shift`` values of ``layer``'s input stream in ``network``: 1 unless a counting
    pool (one of ``counted``, default :func:`counted_pools`) feeds it."""
    counted = counted_pools(network) if counted is None else counted
    if len(layer.inputs) != 1 or layer.inputs[0] not in counted:
        return 1
    return count_shifts(network.layer(layer.inputs[0]).pool)


class SpikePool(wiring.Component):
    """A sum or max pooling stage (see the module docstring).

    Attributes
    ----------
    i : In(stream)
        Events over the C H W input indices.
    o : Out(stream)
        Events over the C (H // PKH) (W // PKW) pooled indices (with ``counts``, each with a
        ``shift``: :func:`count_shifts` values).
    err : Out(1)
        Always 0: a pooling stage drops nothing that SPEC 6 keeps.
    """

    def __init__(self, shape: PoolShape, counts: bool = False):
        if not isinstance(shape, PoolShape):
            raise TypeError(f"shape must be a PoolShape, not {shape!r}")
        if counts and shape.kind != "sumpool":
            raise ValueError(f"only a sum pool sends counts, not a {shape.kind}")
        self.shape, self.counts = shape, counts
        self.shifts = count_shifts(shape) if counts else 1
        super().__init__({
            "i": In(event_signature(shape.inputs)),
            "o": Out(event_signature(shape.outputs, self.shifts)),
            "err": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n_out = self.shape.outputs
        index_map = self.shape.index_map()
        WP = self.shape.out_shape[2]
        # With counts: the pooled row's first index (``index`` - ``column``) and the column.
        fields = {"index": range(max(n_out, 2)), "inside": 1}
        if self.counts:
            fields["column"] = range(max(WP, 2))
        layout = data.StructLayout(fields)

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
            [{"index": int(max(j, 0) - self.counts * (max(j, 0) % WP)), "inside": int(j >= 0),
              **({"column": int(max(j, 0)) % WP} if self.counts else {})} for j in index_map],
            beat.index, buffer.r_rdy & take)
        target, kept = Signal(layout), Signal(layout, reset_less=True)
        m.d.comb += target.eq(Mux(fresh, looked_up, kept))
        m.d.sync += kept.eq(target)
        # The output, through a FIFO too: its payload comes from registers.
        out = m.submodules.out_buffer = fifo.SyncFIFOBuffered(
            width=len(self.o.payload.as_value()), depth=3)
        pooled = data.View(self.o.payload.shape(), out.w_data)
        m.d.comb += [self.o.valid.eq(out.r_rdy), self.o.payload.eq(out.r_data),
                     out.r_en.eq(self.o.ready)]
        # The beat being sent leaves on registers alone (so the take of a beat, which enables
        # the ROM, waits on no ROM word): without counts, when the output FIFO has room,
        # whether it is sent or discarded (a discarded beat may wait a cycle more under
        # back-pressure); with counts, see :meth:`_gather`.
        if self.counts:
            done = self._gather(m, sending, s_eot, s_in_range, target, out, pooled)
        else:
            done = self._send(m, sending, s_eot, s_in_range, target, out, pooled)
        advance = ~sending | done                     # the held beat may move on
        m.d.comb += take.eq(~held | advance)
        with m.If(buffer.r_rdy & take):
            m.d.sync += [held.eq(1), eot.eq(beat.eot),
                         in_range.eq(beat.index < self.shape.inputs)]
        with m.Elif(advance):
            m.d.sync += held.eq(0)
        m.d.sync += fresh.eq(advance & held)
        with m.If(advance):
            m.d.sync += [sending.eq(held), s_eot.eq(eot), s_in_range.eq(in_range)]
        return m

    def _send(self, m, sending, s_eot, s_in_range, target, out, pooled):
        """Each beat in range and inside a window goes out at its pooled index (a max pool's
        once a timestep); returns whether the beat being sent leaves this cycle."""
        send = Signal()
        if self.shape.kind == "maxpool":
            seen = Signal(self.shape.outputs)
            m.d.comb += send.eq(s_eot | (s_in_range & target.inside &
                                         ~seen.bit_select(target.index, 1)))
        else:
            m.d.comb += send.eq(s_eot | (s_in_range & target.inside))
        done = sending & out.w_rdy
        m.d.comb += [out.w_en.eq(sending & send), pooled.eot.eq(s_eot),
                     pooled.index.eq(target.index)]
        if self.shape.kind == "maxpool":
            with m.If(done & s_eot):
                m.d.sync += seen.eq(0)
            with m.Elif(done & send):
                m.d.sync += seen.bit_select(target.index, 1).eq(1)
        return done

    def _gather(self, m, sending, s_eot, s_in_range, target, out, pooled):
        """Counts (see the module docstring): a spike beat adds one to its column of the row
        *gathering*; a beat of another row (or the eot, or a count at its top) first hands
        that row to the row being *sent*, which must be empty: a beat leaves only then (or,
        the eot, once both rows are empty and the output has room), a condition on registers
        alone. The row being sent goes out a beat a cycle: its lowest nonzero column, the
        lowest bit of its count. Returns whether the beat being sent leaves this cycle."""
        WP, CW = self.shape.out_shape[2], self.shifts
        top = (1 << CW) - 1
        rows = data.StructLayout({"counts": data.ArrayLayout(CW, WP), "mask": WP,
                                  "base": len(target.index)})
        gathering, sent = Signal(rows), Signal(rows)
        g_any, s_any = gathering.mask.any(), sent.mask.any()
        done = sending & ~s_any & Mux(s_eot, ~g_any & out.w_rdy, 1)
        spike = s_in_range & target.inside & ~s_eot
        column = target.column
        count, counting = gathering.counts[column], gathering.mask.bit_select(column, 1)
        same = g_any & (target.index == gathering.base) & ~(counting & (count == top))
        with m.If(sending & ~s_any & g_any & (s_eot | (spike & ~same))):
            m.d.sync += [sent.eq(gathering), gathering.mask.eq(0)]
        with m.If(done & spike):
            # The beat's column counts one more, or starts at one (a new row: the beat's
            # column alone).
            m.d.sync += count.eq(Mux(same & counting, count + 1, 1))
            with m.If(same):
                m.d.sync += counting.eq(1)
            with m.Else():
                m.d.sync += [gathering.base.eq(target.index),
                             gathering.mask.eq(Const(1, WP) << column)]
        # The row being sent: its lowest nonzero column, and the lowest bit of that count.
        first, low = Signal(range(max(WP, 2))), Signal(range(max(CW, 2)))
        for p in reversed(range(WP)):
            with m.If(sent.mask[p]):
                m.d.comb += first.eq(p)
        left = sent.counts[first]
        for b in reversed(range(CW)):
            with m.If(left[b]):
                m.d.comb += low.eq(b)
        rest = left & (left - 1)
        with m.If(s_any & out.w_rdy):
            m.d.sync += sent.counts[first].eq(rest)
            with m.If(rest == 0):
                m.d.sync += sent.mask.bit_select(first, 1).eq(0)
        m.d.comb += [out.w_en.eq(Mux(s_any, 1, done & s_eot)), pooled.eot.eq(~s_any),
                     pooled.index.eq(sent.base + first), pooled.shift.eq(low)]
        return done
