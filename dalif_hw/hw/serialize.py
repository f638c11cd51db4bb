"""The output serializer: groups' spike masks in, one event per spike out.

Entries (:func:`~dalif_hw.hw.update.spike_entry_layout`: mask, base, last, count) wait in a
ring FIFO with registered pointers. ``fifo_ram`` says how the ring is read: ``distributed``
(default, ECP5), combinationally at the head, so that it is LUT RAM (in a block RAM, its
clock-to-output limited the array to about 110 MHz); ``block`` (iCE40, which has no
distributed RAM: in flip-flops the ring of a 2-lane array of 256 neurons took 6,400),
synchronously, the read address being the next cycle's head and a write in the same cycle
passed through, so that it maps to block RAM. A ring deeper than :data:`LUT_RING_DEPTH`
entries is read the ``block`` way whatever ``fifo_ram`` says: a large convolution's ring
holds two passes of thousands of groups (4,096 entries of 27 bits in the first layer of
``benchmarks/conv.py``: 110 kbit, about 1,700 LUT-RAM cells spread over the part, whose read
mux was that design's critical path at 58 MHz), where a few block RAMs hold it. Both ways
give the same cycles.

The entry being sent sits in registers with its spike count, so that the decision to take
the next one depends on registers and the output handshake only: one beat per spike, lowest
lane first (ascending index, SPEC 3), then, for an entry that ends the timestep, one ``eot``
beat.

The producer pushes without a ready: it must only issue work when ``room`` says that the
FIFO can take everything in flight (``reserve`` entries beyond its level).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..core.config import index_width
from .streams import event_signature
from .update import spike_entry_layout

__all__ = ["SpikeSerializer", "FIFO_RAMS", "LUT_RING_DEPTH"]

#: Where the spike ring lives (see the module docstring).
FIFO_RAMS = ("distributed", "block")
#: The deepest ring kept in distributed RAM; deeper ones go into block RAM. (The default
#: array's ring has 64 entries and stays in LUT RAM; the digits network's convolution's has
#: 512, the MNIST-shaped network's 4,096 and 1,024.)
LUT_RING_DEPTH = 256


class SpikeSerializer(wiring.Component):
    """Spike masks to an event stream (see the module docstring).

    Parameters
    ----------
    lanes : int
        P, bits of a mask.
    neurons : int
        N, the indices' range.
    depth : int
        FIFO entries, a power of two (the ring pointers wrap by themselves).
    reserve : int
        ``room`` is 1 while ``level + reserve <= depth``.
    aligned : bool
        Every entry's ``base`` is a multiple of P (a dense array's; not a convolution's
        whose rows are not a multiple of P wide).
    fifo_ram : str
        :data:`FIFO_RAMS`: ``distributed`` (default; block RAM all the same beyond
        :data:`LUT_RING_DEPTH` entries) or ``block``; ``ring_ram`` says which it is.

    Attributes
    ----------
    push : In
        ``valid`` and an entry; never refused.
    o : Out(stream)
        Events: ``index``, ``eot``.
    room : Out(1)
    fifo : dict of Signal
        Not ports, for checkers (:mod:`dalif_hw.hw.checks`): ``push``, ``pop`` and ``level``.
    """

    def __init__(self, *, lanes: int, neurons: int, depth: int, reserve: int,
                 aligned: bool = True, fifo_ram: str = "distributed"):
        if depth & (depth - 1):
            raise ValueError(f"depth must be a power of two, not {depth}")
        if fifo_ram not in FIFO_RAMS:
            raise ValueError(f"fifo_ram must be one of {', '.join(FIFO_RAMS)}, not "
                             f"{fifo_ram!r}")
        self.ring_ram = "block" if depth > LUT_RING_DEPTH else fifo_ram
        self.lanes, self.neurons, self.depth, self.reserve = lanes, neurons, depth, reserve
        self.aligned = aligned
        self.layout = spike_entry_layout(lanes, index_width(neurons))
        self.fifo = {"push": Signal(name="fifo_push"), "pop": Signal(name="fifo_pop"),
                     "level": Signal(range(depth + 1), name="fifo_level")}
        super().__init__({
            "push": In(wiring.Signature({"valid": Out(1), "payload": Out(self.layout)})),
            "o": Out(event_signature(neurons)),
            "room": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P = self.lanes
        ring = m.submodules.spikes = Memory(shape=self.layout, depth=self.depth, init=[])
        if self.ring_ram == "block":
            ring_wr = ring.write_port()
            ring_rd = ring.read_port(transparent_for=(ring_wr,))
        else:
            ring_wr, ring_rd = ring.write_port(), ring.read_port(domain="comb")
        wp = Signal(range(self.depth))
        rp = Signal(range(self.depth))
        level, push, pop = self.fifo["level"], self.fifo["push"], self.fifo["pop"]
        m.d.comb += [push.eq(self.push.valid), ring_wr.data.eq(self.push.payload),
                     ring_wr.addr.eq(wp), ring_wr.en.eq(push),
                     # the head: now (combinational), or the next cycle's (synchronous)
                     ring_rd.addr.eq(Mux(pop, rp + 1, rp) if self.ring_ram == "block" else rp)]
        with m.If(push):
            m.d.sync += wp.eq(wp + 1)
        with m.If(pop):
            m.d.sync += rp.eq(rp + 1)
        m.d.sync += level.eq(level + push - pop)
        m.d.comb += self.room.eq(level + self.reserve <= self.depth)

        # -- output: one beat per spike of the current entry, then eot ------------------------
        cur_v = Signal()
        cur = Signal(self.layout)
        head = ring_rd.data
        lowest = Signal(P)
        lane = Signal(range(P))
        m.d.comb += lowest.eq(cur.mask & (~cur.mask + 1)[:P])
        for p in range(P):
            with m.If(lowest[p]):
                m.d.comb += lane.eq(p)
        is_eot = cur.count == 0
        # base + lane; where every base is a multiple of P, a power of two, the lane bits of
        # the base are zero.
        index = cur.base | lane if self.aligned and P & (P - 1) == 0 else cur.base + lane
        m.d.comb += [self.o.valid.eq(cur_v), self.o.payload.eot.eq(is_eot),
                     self.o.payload.index.eq(Mux(is_eot, 0, index))]
        done = is_eot | ((cur.count == 1) & ~cur.last)
        take = (level != 0) & (~cur_v | (self.o.ready & done))
        m.d.comb += pop.eq(take)
        with m.If(take):
            m.d.sync += [cur_v.eq(1), cur.eq(head)]
        with m.Elif(self.o.ready & cur_v):
            with m.If(done):
                m.d.sync += cur_v.eq(0)
            with m.Else():
                m.d.sync += [cur.mask.eq(cur.mask & ~lowest), cur.count.eq(cur.count - 1)]
        return m
