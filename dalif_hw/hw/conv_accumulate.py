"""Spike-driven convolution: the accumulator of a conv2d layer (SPEC 6).

The neurons are grouped as :func:`dalif_hw.core.layout.conv_groups` says: P lanes over
neighbouring output columns of one channel and row, group ``(k HO + yo) XB + xb``, so that the
groups, taken in order, give the neurons in ascending flat index (no reordering behind).

An input spike at (c, y, x) visits only the groups whose windows hold it: for every output
channel k, every row yo whose window holds row y (at most ceil(KH/SH)) and every block of
columns holding an xo whose window holds x (one or two), one operation a cycle. A small ROM
gives, per input index, the first such group, weight word, column offset and the counts of
rows and blocks; the walk steps through them with adders only. The operation reads the
kernel word ``(k C + c) KH + ky`` (KW weights, block RAM) and picks for lane p the weight
``kx = r - p SW`` (0 where that falls outside the kernel), r the block's column offset.

Each group's accumulator word carries a *touched* bit: an operation on an untouched group
starts from zero instead of what is stored, and a pass operation hands the group on (zero if
untouched) plus its ``bias`` and clears the bit. Reads see the two writes still in flight
(forwarded, as in :mod:`.accumulate`), so spikes follow each other with no bubble.

The input buffer, beat counting (the beat cap), the pass issue and the credit (``room``) are
those of :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from ..core.conv import ConvShape
from ..core.layout import MemorySpec, conv_groups
from .accumulate import (
    AccumulatorSignature,
    SpikeAccumulator,
    check_weight_ram,
    checked_image,
    count_beats,
    input_buffer,
    input_probes,
    lanes_of,
    pass_spacing,
    weight_memory,
)

__all__ = ["ConvAccumulator", "window_rom"]


def window_rom(shape: ConvShape, lanes: int) -> list[dict]:
    """Per input index j = (c H + y) W + x: where its walk starts (``g0``: the group of
    channel 0, the first row, the first block; ``wa0``: the kernel word of channel 0;
    ``r0``: the first block's column offset) and how many ``rows`` and ``blocks`` it takes
    (0 rows or blocks: the spike reaches no neuron)."""
    (C, H, W), (_, HO, WO) = shape.in_shape, shape.out_shape
    (KH, KW), (SH, SW), (PH, PW) = shape.kernel, shape.stride, shape.padding
    _, XB = conv_groups(shape, lanes)
    rom = []
    for c in range(C):
        for y in range(H):
            for x in range(W):
                yo_lo = max(0, -((KH - 1 - y - PH) // SH))     # ceil((y + PH - KH + 1) / SH)
                yo_hi = min(HO - 1, (y + PH) // SH)
                xo_lo = max(0, -((KW - 1 - x - PW) // SW))
                xo_hi = min(WO - 1, (x + PW) // SW)
                rows = max(0, yo_hi - yo_lo + 1)
                blocks = xo_hi // lanes - xo_lo // lanes + 1 if xo_lo <= xo_hi else 0
                if rows == 0 or blocks == 0:
                    rom.append({"g0": 0, "wa0": 0, "r0": 0, "rows": 0, "blocks": 0})
                    continue
                xb_lo = xo_lo // lanes
                rom.append({"g0": yo_lo * XB + xb_lo, "wa0": c * KH + y + PH - yo_lo * SH,
                            "r0": x + PW - xb_lo * lanes * SW, "rows": rows, "blocks": blocks})
    return rom


class ConvAccumulator(wiring.Component):
    """The accumulator of a conv2d layer, behind :class:`AccumulatorSignature`.

    Parameters
    ----------
    shape : ConvShape
    lanes : int
        P, at most WO.
    T : int
    weights : MemorySpec
        The kernel memory (:func:`dalif_hw.core.layout.memories` of a conv2d layer).
    acc_width, base_width, pass_gap, cfg_widths, beat_cap, weight_image
        As for :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`.
    """

    LATENCY = SpikeAccumulator.LATENCY
    #: Operations are issued as they start (no lead), so room need not cover one more.
    LEAD = 0
    SLACK = 2

    def __init__(self, *, shape: ConvShape, lanes: int, T: int, weights: MemorySpec,
                 acc_width: int, base_width: int, pass_gap: int, cfg_widths: dict,
                 beat_cap: int | None = None, weight_image: list | None = None,
                 weight_ram: str = "block"):
        self.shape, self.lanes, self.T, self.weights = shape, lanes, T, weights
        self.weight_ram = check_weight_ram(weight_ram)
        self.inputs = shape.inputs
        self.beat_cap = self.inputs if beat_cap is None else beat_cap
        self.groups, self.blocks = conv_groups(shape, lanes)
        self.acc_width, self.base_width, self.pass_gap = acc_width, base_width, pass_gap
        self.weight_image = checked_image(weights, weight_image)
        self.rom = window_rom(shape, lanes)
        super().__init__(AccumulatorSignature(
            inputs=self.inputs, groups=self.groups, lanes=lanes, acc_width=acc_width,
            base_width=base_width, cfg_widths=cfg_widths, channels=shape.channels))
        self.probes = input_probes(self)

    def elaborate(self, platform):
        m = Module()
        P, G, XB, AW = self.lanes, self.groups, self.blocks, self.acc_width
        (C, _, _), (K, HO, WO) = self.shape.in_shape, self.shape.out_shape
        (KH, KW), (SH, SW) = self.shape.kernel, self.shape.stride
        WB = self.weights.lane_width

        w_rd = weight_memory(m, self)
        # Each group's accumulators and its touched bit (the top one).
        acc_mem = m.submodules.acc_mem = Memory(shape=unsigned(P * AW + 1), depth=G, init=[])
        acc_rd, acc_wr = acc_mem.read_port(), acc_mem.write_port()

        # The walk's start per input index, read when the beat enters the buffer.
        rows_max = max(e["rows"] for e in self.rom) if self.rom else 1
        blocks_max = max(e["blocks"] for e in self.rom) if self.rom else 1
        r_range = KW + P * SW
        rom_layout = data.StructLayout({
            "g0": range(G), "wa0": range(max(2, C * KH)), "r0": range(r_range),
            "rows": range(rows_max + 1), "blocks": range(blocks_max + 1)})
        rom = m.submodules.window_rom = Memory(
            shape=rom_layout, depth=len(self.rom), init=self.rom)
        rom_rd = rom.read_port()

        beat_v, beat, consume = input_buffer(m, self)
        m.d.comb += [rom_rd.addr.eq(self.i.payload.index),
                     rom_rd.en.eq(self.i.valid & self.i.ready)]
        start = rom_rd.data   # of the buffered beat

        # -- the walk of a spike: channels, rows, blocks ---------------------------------------
        walking = Signal()
        k_i = Signal(range(K))
        row_i = Signal(range(rows_max + 1))
        blk_i = Signal(range(blocks_max + 1))
        rows = Signal(range(rows_max + 1))
        blocks = Signal(range(blocks_max + 1))
        g_k, g_row, g = Signal(range(G)), Signal(range(G)), Signal(range(G))
        wa_k, wa = Signal(range(K * C * KH)), Signal(range(K * C * KH))
        r0, r = Signal(range(r_range)), Signal(range(r_range))
        last_blk = blk_i == blocks - 1
        last_row = row_i == rows - 1
        walk_last = last_blk & last_row & (k_i == K - 1)

        # -- the pass: every group in order ---------------------------------------------------
        passing = Signal()
        p_g, p_xb = Signal(range(G)), Signal(range(XB))
        p_k, p_in_k = Signal(range(K)), Signal(range(HO * XB))
        p_base = Signal(self.base_width)
        p_first_step = Signal()
        credit = Signal()
        m.d.sync += credit.eq(self.room)

        op_layout = data.StructLayout({
            "pass": 1, "g": range(G), "r": range(r_range), "first_step": 1, "last": 1,
            "partial": 1, "base": self.base_width})
        op_valid, op = Signal(), Signal(op_layout)
        m.d.comb += [
            op_valid.eq(walking | (passing & credit)), op["pass"].eq(passing),
            op.g.eq(Mux(passing, p_g, g)), op.r.eq(r), op.first_step.eq(p_first_step),
            op.last.eq(Mux(passing, p_g == G - 1, walk_last)),
            op.partial.eq(p_xb == XB - 1), op.base.eq(p_base)]
        at_last = op_valid & op.last
        quiet_ok = pass_spacing(m, self.pass_gap, op_valid & op["pass"])
        # One walk or pass at a time: the next beat is taken with the last operation.
        walk_start, pass_start, first_step, _ = count_beats(
            m, self, beat_v, beat, consume, ready=~(walking | passing) | at_last,
            quiet_ok=quiet_ok, pass_every=1)

        with m.If(walk_start & (start.rows != 0) & (start.blocks != 0)):
            m.d.sync += [walking.eq(1), k_i.eq(0), row_i.eq(0), blk_i.eq(0),
                         rows.eq(start.rows), blocks.eq(start.blocks),
                         g_k.eq(start.g0), g_row.eq(start.g0), g.eq(start.g0),
                         wa_k.eq(start.wa0), wa.eq(start.wa0), r0.eq(start.r0), r.eq(start.r0)]
        with m.Elif(walking & ~passing):
            with m.If(~last_blk):
                m.d.sync += [blk_i.eq(blk_i + 1), g.eq(g + 1), r.eq(r - P * SW)]
            with m.Elif(~last_row):
                m.d.sync += [blk_i.eq(0), row_i.eq(row_i + 1), g_row.eq(g_row + XB),
                             g.eq(g_row + XB), r.eq(r0), wa.eq(wa - SH)]
            with m.Elif(k_i != K - 1):
                m.d.sync += [blk_i.eq(0), row_i.eq(0), k_i.eq(k_i + 1),
                             g_k.eq(g_k + HO * XB), g_row.eq(g_k + HO * XB),
                             g.eq(g_k + HO * XB), r.eq(r0), wa_k.eq(wa_k + C * KH),
                             wa.eq(wa_k + C * KH)]
            with m.Else():
                m.d.sync += walking.eq(0)

        with m.If(passing & op_valid):
            with m.If(op.last):
                m.d.sync += [passing.eq(0), p_g.eq(0), p_xb.eq(0), p_k.eq(0), p_in_k.eq(0),
                             p_base.eq(0)]
            with m.Else():
                m.d.sync += [p_g.eq(p_g + 1),
                             p_xb.eq(Mux(p_xb == XB - 1, 0, p_xb + 1)),
                             p_base.eq(p_base + Mux(p_xb == XB - 1, WO - (XB - 1) * P, P)),
                             p_in_k.eq(Mux(p_in_k == HO * XB - 1, 0, p_in_k + 1)),
                             p_k.eq(p_k + (p_in_k == HO * XB - 1))]
        # After the above: a pass may start with the last operation of the one before.
        with m.If(pass_start):
            m.d.sync += [passing.eq(1), p_first_step.eq(first_step)]

        m.d.comb += [w_rd.addr.eq(wa), acc_rd.addr.eq(op.g),
                     self.issue.valid.eq(op_valid & op["pass"]), self.issue.g.eq(op.g),
                     self.issue.channel.eq(p_k)]

        # -- stages 1 and 2 --------------------------------------------------------------------
        s1_valid, s2_valid = Signal(), Signal()
        s1 = Signal(op_layout, reset_less=True)
        s2 = Signal(op_layout, reset_less=True)
        m.d.sync += [s1_valid.eq(op_valid), s1.eq(op), s2_valid.eq(s1_valid), s2.eq(s1)]
        # Each lane's weight, picked from the kernel word on its way into the register:
        # kx = r - p SW, 0 outside the kernel.
        kernel = lanes_of(w_rd.data, KW, WB)
        w2 = Signal(data.ArrayLayout(self.weights.lane_width, P), reset_less=True)
        for p in range(P):
            pick = Const(0, WB)
            for kx in range(KW):
                pick = Mux(s1.r == kx + p * SW, kernel[kx], pick)
            m.d.sync += w2[p].eq(pick)
        acc2 = Signal(P * AW + 1, reset_less=True)
        m.d.sync += acc2.eq(acc_rd.data)

        # -- stage 2: forward the writes in flight, then accumulate or hand on -----------------
        write_layout = data.StructLayout({"g": range(G), "data": P * AW + 1})
        wl1_valid, wl1 = Signal(), Signal(write_layout, reset_less=True)
        wl2_valid, wl2 = Signal(), Signal(write_layout, reset_less=True)
        fwd1, fwd2 = Signal(), Signal()
        m.d.sync += [fwd1.eq(s2_valid & (s2.g == s1.g)), fwd2.eq(wl1_valid & (wl1.g == s1.g))]
        word = Mux(fwd1, wl1.data, Mux(fwd2, wl2.data, acc2))
        touched = word[-1]
        lanes = [Mux(touched, v, 0) for v in lanes_of(word[:P * AW], P, AW)]
        acc_sum = Cat(*[(a + w.as_signed())[:AW] for a, w in
                        zip(lanes, [w2[p] for p in range(P)])])
        new = Mux(s2["pass"], 0, Cat(acc_sum, Const(1, 1)))
        m.d.comb += [acc_wr.addr.eq(s2.g), acc_wr.data.eq(new), acc_wr.en.eq(s2_valid)]
        m.d.sync += [wl1_valid.eq(s2_valid), wl1.g.eq(s2.g), wl1.data.eq(new),
                     wl2_valid.eq(wl1_valid), wl2.eq(wl1)]
        out = self.pass_.payload
        m.d.comb += [self.pass_.valid.eq(s2_valid & s2["pass"]), out.g.eq(s2.g),
                     out.first_step.eq(s2.first_step),
                     out.last.eq(s2.last), out.partial.eq(s2.partial), out.base.eq(s2.base)]
        m.d.comb += [out.acc[p].eq(v + self.bias[p]) for p, v in enumerate(lanes)]
        return m
