"""The stages that make a network a graph (SPEC 7): a fork, and a merge for adds and for
layers with several inputs.

:class:`Fork` offers each beat of its input to every consumer and takes it once all have:
a consumer that is not ready holds the others back, and none sees a beat twice (a bit per
consumer records who has it).

:class:`Merge` takes beats from its inputs independently: any input whose timestep t has not
ended may send (the lowest-numbered valid one each cycle); an input's eot is taken and
recorded, and that input then waits (its beats of timestep t + 1 stay offered) until every
input's eot of t is in and the merge has sent its own one eot. Each input's indices are
offset: all by 0 for an add (spikes of the same indices add up as counted beats), by the
sizes of the inputs before it for a layer over its inputs concatenated (SPEC 7). A beat
whose index is beyond its input's size is dropped and raises ``err``. The output goes
through a three-entry FIFO (a beat a cycle; two entries pass one every other cycle) whose
ready is registered, so no combinational path runs from the consumer's ready back to the
inputs.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from .streams import event_signature

__all__ = ["Fork", "Merge"]


class Fork(wiring.Component):
    """One event stream to ``consumers`` streams, every beat to each.

    Attributes
    ----------
    i : In(stream)
    o<k> : Out(stream), k < consumers
    err : Out(1)
        Always 0.
    """

    def __init__(self, count: int, consumers: int):
        if consumers < 2:
            raise ValueError(f"a fork has two or more consumers, not {consumers}")
        self.count, self.consumers = count, consumers
        super().__init__({"i": In(event_signature(count)), "err": Out(1),
                          **{f"o{k}": Out(event_signature(count)) for k in range(consumers)}})

    def outputs(self) -> list:
        return [getattr(self, f"o{k}") for k in range(self.consumers)]

    # What the proofs break (dalif_hw.harness.formal): whom a beat is offered to, and when
    # it is done.
    def _offered(self, taken):
        return self.i.valid & ~taken

    def _done(self, has):
        return has.all()

    def elaborate(self, platform):
        m = Module()
        outs = self.outputs()
        taken = Signal(self.consumers)
        # A consumer has the beat once it took it in an earlier cycle or takes it now.
        has = Cat(*[taken[k] | (o.valid & o.ready) for k, o in enumerate(outs)])
        for k, o in enumerate(outs):
            m.d.comb += [o.valid.eq(self._offered(taken[k])), o.payload.eq(self.i.payload)]
        m.d.comb += self.i.ready.eq(self._done(has))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += taken.eq(0)
        with m.Elif(self.i.valid):
            m.d.sync += taken.eq(has)
        return m


class Merge(wiring.Component):
    """Several event streams to one (see the module docstring).

    Parameters
    ----------
    counts : list of int
        Each input's indices.
    offsets : list of int
        Added to each input's indices (an add: all 0).
    out_count : int
        The output's indices.

    Attributes
    ----------
    i<k> : In(stream)
    o : Out(stream)
    err : Out(1)
        Sticky: a beat beyond its input's size was dropped.
    """

    def __init__(self, counts: list, offsets: list, out_count: int):
        if len(counts) < 2 or len(offsets) != len(counts):
            raise ValueError(f"a merge has two or more inputs, each with an offset, not "
                             f"{counts} and {offsets}")
        if any(c + o > out_count for c, o in zip(counts, offsets)):
            raise ValueError(f"inputs {counts} at offsets {offsets} do not fit {out_count}")
        self.counts, self.offsets, self.out_count = list(counts), list(offsets), out_count
        super().__init__({**{f"i{k}": In(event_signature(c)) for k, c in enumerate(counts)},
                          "o": Out(event_signature(out_count)), "err": Out(1)})

    def inputs(self) -> list:
        return [getattr(self, f"i{k}") for k in range(len(self.counts))]

    def _open(self, port, done):
        """Whether input ``port`` may send now (the proofs break this)."""
        return port.valid & ~done

    def elaborate(self, platform):
        m = Module()
        ins = self.inputs()
        n = len(ins)
        layout = self.o.payload.shape()
        out = m.submodules.out = fifo.SyncFIFOBuffered(width=layout.size, depth=3)
        m.d.comb += [self.o.valid.eq(out.r_rdy), self.o.payload.eq(out.r_data),
                     out.r_en.eq(self.o.ready)]
        w_data = data.View(layout, out.w_data)

        done = Signal(n)            # input k's eot of this timestep is in
        open_ = Cat(*[self._open(i, done[k]) for k, i in enumerate(ins)])
        err = Signal()
        m.d.comb += self.err.eq(err)
        with m.If(done.all()):
            # Every input's timestep has ended: the merge's own eot, then the next timestep.
            m.d.comb += [w_data.eot.eq(1), w_data.index.eq(0), out.w_en.eq(1)]
            with m.If(out.w_rdy):
                m.d.sync += done.eq(0)
        with m.Else():
            # The lowest-numbered input that may send.
            for k in reversed(range(n)):
                beat, lower = ins[k].payload, open_[:k]
                with m.If(open_[k] & ~(lower.any() if k else Const(0))):
                    inside = beat.index < self.counts[k]
                    with m.If(beat.eot):
                        m.d.comb += ins[k].ready.eq(1)
                        m.d.sync += done[k].eq(1)
                    with m.Elif(~inside):
                        m.d.comb += ins[k].ready.eq(1)
                        m.d.sync += err.eq(1)
                    with m.Else():
                        m.d.comb += [w_data.index.eq(beat.index + self.offsets[k]),
                                     w_data.eot.eq(0), out.w_en.eq(1),
                                     ins[k].ready.eq(out.w_rdy)]
        return m
