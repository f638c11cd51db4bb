"""Max pooling of a convolution's currents before its neurons (SPEC 6, ``current_pool``).

:class:`CurrentPool` wraps a :class:`~dalif_hw.hw.conv_accumulate.ConvAccumulator` of the
convolution alone (its pre-pool positions (K, HO, WO)) and stands, behind the same
:class:`~dalif_hw.hw.accumulate.AccumulatorSignature`, for an accumulator of the pooled
neurons (K, HP, WP), HP = HO // PKH, WP = WO // PKW: the neurons behind see only pooled
groups.

The inner accumulator runs PKW P lanes over pre-pool columns, so that its group (k, yo, xb)
holds the windows' columns of pooled group (k, yo // PKH, xb) of P lanes (block xb covers
pooled columns xb P .. xb P + P - 1 in both). Its pass goes through every pre-pool group in
order; here, per group:

- *issue* (the inner's): counters in step with the pass give its row in the window
  (``yo % PKH``), its block and whether it is kept (rows and blocks past the last whole
  window are dropped); a window's last row issues the pooled group to the neurons a cycle
  later, so that they read their memories for it;
- *reduce* (the inner's pass, two cycles after issue): the max over each window's PKW
  columns; a window's first row starts a running max in a row buffer (a word per block,
  read and written in this cycle), the rows after it take the max with it, and the last row
  registers the pooled currents for the neurons;
- *hand on* (a cycle later, two after the pooled issue): the pooled currents plus the bias
  (the bias is added once, after the max; the inner accumulator adds none).

The pooled groups reach the neurons in ascending flat order, at most one a cycle; a pass
costs the inner's pre-pool groups in cycles (:mod:`.cost`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from ..core.config import index_width
from ..core.conv import ConvShape
from ..core.layout import MemorySpec, conv_groups
from .accumulate import AccumulatorSignature, pass_layout
from .conv_accumulate import ConvAccumulator

__all__ = ["CurrentPool"]


class CurrentPool(wiring.Component):
    """The accumulator of a conv2d layer whose currents are max-pooled before its neurons.

    Parameters
    ----------
    shape : ConvShape
        The layer's shape, with ``pool``.
    lanes, acc_lanes : int
        The neurons' P and A = PK P (the inner accumulator gets PKW P and PKW A).
    Others
        As for :class:`~dalif_hw.hw.conv_accumulate.ConvAccumulator`.
    """

    LATENCY = ConvAccumulator.LATENCY
    assert LATENCY == 2, "the tags below are carried two cycles, the inner pass's latency"
    #: The inner pass's LEAD, and the reduce stage's register more in flight.
    LEAD = ConvAccumulator.LEAD
    SLACK = ConvAccumulator.SLACK + 1

    def __init__(self, *, shape: ConvShape, lanes: int, acc_lanes: int, T: int,
                 weights: MemorySpec, acc_width: int, base_width: int, pass_gap: int,
                 cfg_widths: dict, beat_cap: int | None = None,
                 weight_image: list | None = None, weight_ram: str = "block", shifts: int = 1,
                 overlap: bool | None = None):
        if shape.pool is None:
            raise ValueError("CurrentPool needs a shape with a current_pool window")
        self.shape, self.lanes, self.acc_width = shape, lanes, acc_width
        conv, inner_lanes, inner_acc = shape.accumulator(lanes, acc_lanes)
        self.inner = ConvAccumulator(
            shape=conv, lanes=inner_lanes, acc_lanes=inner_acc, T=T, weights=weights,
            acc_width=acc_width, base_width=index_width(conv.neurons), pass_gap=pass_gap,
            cfg_widths=cfg_widths, beat_cap=beat_cap, weight_image=weight_image,
            weight_ram=weight_ram, shifts=shifts, overlap=overlap)
        self.groups, self.blocks = conv_groups(shape, lanes)
        self.inputs, self.T, self.beat_cap = self.inner.inputs, T, self.inner.beat_cap
        self.weight_ram, self.overlap = self.inner.weight_ram, self.inner.overlap
        self.probes = self.inner.probes
        super().__init__(AccumulatorSignature(
            inputs=self.inputs, groups=self.groups, lanes=lanes, acc_width=acc_width,
            base_width=base_width, cfg_widths=cfg_widths, channels=shape.channels,
            shifts=shifts))

    def elaborate(self, platform):
        m = Module()
        inner = m.submodules.conv = self.inner
        P, AW, G, XBP = self.lanes, self.acc_width, self.groups, self.blocks
        (K, HO, _), XB = inner.shape.out_shape, inner.blocks
        (_, HP, WP), (PKH, PKW) = self.shape.out_shape, self.shape.pool
        wiring.connect(m, wiring.flipped(self.i), inner.i)
        wiring.connect(m, wiring.flipped(self.cfg), inner.cfg)
        m.d.comb += [self.err.eq(inner.err), inner.room.eq(self.room)]
        m.d.comb += [inner.bias[p].eq(0) for p in range(len(inner.bias))]

        # -- issue: where the inner pass's group lies, in step with it ------------------------
        xb, yo, row = Signal(range(XB)), Signal(range(HO)), Signal(range(PKH))
        k = Signal(range(K))
        g_out, base = Signal(range(G)), Signal(len(self.pass_.payload.base))
        tag_layout = data.StructLayout({
            "keep": 1, "first_row": 1, "emit": 1, "xb": range(XBP), "g": range(G), "k": range(K),
            "base": len(base), "last": 1, "partial": 1})
        tag = Signal(tag_layout)
        keep = (yo < HP * PKH) & (xb < XBP)
        m.d.comb += [tag.keep.eq(keep), tag.first_row.eq(row == 0),
                     tag.emit.eq(keep & (row == PKH - 1)), tag.xb.eq(xb), tag.g.eq(g_out),
                     tag.k.eq(k), tag.base.eq(base), tag.last.eq(g_out == G - 1),
                     tag.partial.eq(xb == XBP - 1)]
        with m.If(inner.issue.valid):
            row_done = xb == XB - 1
            m.d.sync += xb.eq(Mux(row_done, 0, xb + 1))
            with m.If(row_done):
                with m.If(yo == HO - 1):
                    m.d.sync += [yo.eq(0), row.eq(0), k.eq(Mux(k == K - 1, 0, k + 1))]
                with m.Else():
                    m.d.sync += [yo.eq(yo + 1), row.eq(Mux(row == PKH - 1, 0, row + 1))]
            with m.If(tag.emit):
                last = g_out == G - 1
                m.d.sync += [g_out.eq(Mux(last, 0, g_out + 1)),
                             base.eq(Mux(last, 0, base + Mux(xb == XBP - 1,
                                                             WP - (XBP - 1) * P, P)))]

        # The pooled group's issue, a cycle after the inner's; its tag beside the inner's pass,
        # two cycles after its issue (the inner's LATENCY).
        t1_valid = Signal()
        t1 = Signal(tag_layout, reset_less=True)
        t2 = Signal(tag_layout, reset_less=True)
        m.d.sync += [t1_valid.eq(inner.issue.valid), t1.eq(tag), t2.eq(t1)]
        m.d.comb += [self.issue.valid.eq(t1_valid & t1.emit), self.issue.g.eq(t1.g),
                     self.issue.channel.eq(t1.k)]

        # -- reduce: the max over each window's columns, then over its rows ---------------------
        def larger(a, b):
            return Mux(a > b, a, b)

        columns = inner.pass_.payload.acc
        across = []
        for q in range(P):
            best = columns[q * PKW]
            for j in range(1, PKW):
                best = larger(best, columns[q * PKW + j])
            across.append(best)
        lanes_layout = data.ArrayLayout(signed(AW), P)
        rows_mem = m.submodules.row_max = Memory(shape=lanes_layout, depth=XBP, init=[])
        rd, wr = rows_mem.read_port(domain="comb"), rows_mem.write_port()
        reduced = Signal(lanes_layout)
        m.d.comb += [rd.addr.eq(t2.xb), wr.addr.eq(t2.xb), wr.data.eq(reduced)]
        for q in range(P):
            m.d.comb += reduced[q].eq(Mux(t2.first_row, across[q], larger(rd.data[q], across[q])))
        here = inner.pass_.valid & t2.keep
        m.d.comb += wr.en.eq(here & ~t2.emit)

        # -- hand on: the pooled group, plus its bias ------------------------------------------
        out_valid = Signal()
        out = Signal(pass_layout(G, len(base), P, AW), reset_less=True)
        m.d.sync += [out_valid.eq(here & t2.emit),
                     out.g.eq(t2.g), out.first_step.eq(inner.pass_.payload.first_step),
                     out.last.eq(t2.last), out.partial.eq(t2.partial), out.base.eq(t2.base),
                     out.acc.eq(reduced)]
        payload = self.pass_.payload
        m.d.comb += [self.pass_.valid.eq(out_valid), payload.g.eq(out.g),
                     payload.first_step.eq(out.first_step), payload.last.eq(out.last),
                     payload.partial.eq(out.partial), payload.base.eq(out.base)]
        m.d.comb += [payload.acc[p].eq(out.acc[p] + self.bias[p]) for p in range(P)]
        return m
