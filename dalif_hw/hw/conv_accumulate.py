"""Spike-driven convolution: the accumulator of a conv2d layer (SPEC 6).

The neurons are grouped for the update as :func:`dalif_hw.core.layout.conv_groups` says: P
lanes over neighbouring output columns of one channel and row, group ``(k HO + yo) XB + xb``,
so that the groups, taken in order, give the neurons in ascending flat index (no reordering
behind).

An input spike at (c, y, x) reaches, in each output row yo whose window holds row y, a run of
at most ceil(KW / SW) consecutive output columns, in every output channel. One operation
takes a run of up to P columns in PK = A / P channels at once (A, the accumulation lanes:
``ArrayConfig.acc_lanes``): so a spike costs ceil(K / PK) x rows x ceil(columns / P)
operations, one a cycle (:func:`beat_operations`), and A accumulators are added in each.

For that, the accumulators are *banked by column*: bank p holds the output columns xo with
``xo % P == p``, at word ``(kg HO + yo) XB + xo // P`` (kg = k // PK), with the PK channels
of a channel group side by side in the word. A run of P consecutive columns starting
anywhere touches each bank once, each at its own address (``xo // P`` is one more in the
banks below the run's start ``x0 % P``); banks past the run's end are not written. The
kernel memory holds one word per (kg, c, ky): the KW weights of the PK channels' kernel row;
the lanes of bank p pick their weight ``kx = r - SW ((p - x0) mod P)``, r being the run's
first column offset, from a one-hot select computed a cycle ahead. A small ROM gives, per
input index, where the walk starts and how many rows and runs it takes, so that the walk
needs adders only.

Each bank word carries a *touched* bit: the first operation of a timestep on a word starts
from zero instead of what is stored. The update pass reads all P banks at one address (a
group) and hands on the lanes of its channel; the last channel of a word's channel group
clears the word. Reads see the two writes still in flight, bank by bank (forwarded, as in
:mod:`.accumulate`), so spikes follow each other with no bubble.

The input buffer, beat counting (the beat cap), the pass issue and the credit (``room``) are
those of :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from ..core.conv import ConvShape
from ..core.layout import MemorySpec, conv_channel_groups, conv_groups
from .accumulate import (
    AccumulatorSignature,
    SpikeAccumulator,
    check_weight_ram,
    checked_image,
    count_beats,
    forward_writes,
    hand_on,
    input_buffer,
    input_probes,
    lanes_of,
    pass_spacing,
    weight_memory,
)

__all__ = ["ConvAccumulator", "window_rom", "beat_operations"]


def window_rom(shape: ConvShape, lanes: int) -> list[dict]:
    """Per input index j = (c H + y) W + x: where its walk starts in channel group 0 (``ab0``:
    the bank word of its first row and run, ``yo XB + x0 // P``; ``wa0``: the
    kernel row ``c KH + ky``; ``phase``: ``x0 % P``; ``r0``: the run's first column offset
    ``x + PW - x0 SW``), how many ``rows`` and ``runs`` (of up to P columns) a row takes, and
    the columns of the last run (``tail``). 0 rows or runs: the spike reaches no neuron."""
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
                rows, columns = max(0, yo_hi - yo_lo + 1), max(0, xo_hi - xo_lo + 1)
                if rows == 0 or columns == 0:
                    rom.append({"ab0": 0, "wa0": 0, "phase": 0, "r0": 0, "rows": 0, "runs": 0,
                                "tail": 0})
                    continue
                runs = -(-columns // lanes)
                rom.append({"ab0": yo_lo * XB + xo_lo // lanes,
                            "wa0": c * KH + y + PH - yo_lo * SH, "phase": xo_lo % lanes,
                            "r0": x + PW - xo_lo * SW, "rows": rows, "runs": runs,
                            "tail": columns - (runs - 1) * lanes})
    return rom


def beat_operations(shape: ConvShape, lanes: int, acc_lanes: int) -> np.ndarray:
    """Operations (cycles) of one counted beat at each input index, [M]: ceil(K / PK) x rows
    x runs, PK = acc_lanes / lanes; a beat that reaches no neuron takes one (its cycle in the
    input buffer)."""
    groups = conv_channel_groups(shape, lanes, acc_lanes)[0]
    return np.array([max(1, groups * e["rows"] * e["runs"])
                     for e in window_rom(shape, lanes)], np.int64)


class ConvAccumulator(wiring.Component):
    """The accumulator of a conv2d layer, behind :class:`AccumulatorSignature`.

    Parameters
    ----------
    shape : ConvShape
    lanes : int
        P, at most WO: the columns of a run, and the lanes handed to the update.
    acc_lanes : int
        A = PK P, PK (at most K) the output channels an operation takes at once.
    T : int
    weights : MemorySpec
        The kernel memory (:func:`dalif_hw.core.layout.memories` of a conv2d layer).
    acc_width, base_width, pass_gap, cfg_widths, beat_cap, weight_image
        As for :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`.
    """

    LATENCY = SpikeAccumulator.LATENCY
    #: A pass operation is issued a cycle after it starts (its lanes are picked from the
    #: channel group's word in a stage of their own).
    LEAD = 1
    SLACK = 2 + LEAD

    def __init__(self, *, shape: ConvShape, lanes: int, acc_lanes: int, T: int,
                 weights: MemorySpec, acc_width: int, base_width: int, pass_gap: int,
                 cfg_widths: dict, beat_cap: int | None = None,
                 weight_image: list | None = None, weight_ram: str = "block"):
        self.shape, self.lanes, self.T, self.weights = shape, lanes, T, weights
        self.weight_ram = check_weight_ram(weight_ram)
        self.inputs = shape.inputs
        self.beat_cap = self.inputs if beat_cap is None else beat_cap
        self.groups, self.blocks = conv_groups(shape, lanes)
        self.channel_groups, self.channel_lanes = conv_channel_groups(shape, lanes, acc_lanes)
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
        KG, PK = self.channel_groups, self.channel_lanes
        (C, _, _), (K, HO, WO) = self.shape.in_shape, self.shape.out_shape
        (KH, KW), (SH, SW) = self.shape.kernel, self.shape.stride
        WB = self.weights.lane_width
        depth = KG * HO * XB              # words of a bank
        word_width = PK * AW + 1           # PK channels' accumulators and the touched bit

        w_rd = weight_memory(m, self)
        banks = []
        for p in range(P):
            bank = m.submodules[f"acc_bank{p}"] = Memory(
                shape=unsigned(word_width), depth=depth, init=[])
            banks.append((bank.read_port(), bank.write_port()))

        # The walk's start per input index, read when the beat enters the buffer.
        rows_max = max([e["rows"] for e in self.rom] + [1])
        runs_max = max([e["runs"] for e in self.rom] + [1])
        rom_layout = data.StructLayout({
            "ab0": range(max(2, HO * XB)), "wa0": range(max(2, C * KH)), "phase": range(P),
            "r0": range(KW), "rows": range(rows_max + 1), "runs": range(runs_max + 1),
            "tail": range(P + 1)})
        rom = m.submodules.window_rom = Memory(
            shape=rom_layout, depth=len(self.rom), init=self.rom)
        rom_rd = rom.read_port()

        beat_v, beat, consume = input_buffer(m, self)
        m.d.comb += [rom_rd.addr.eq(self.i.payload.index),
                     rom_rd.en.eq(self.i.valid & self.i.ready)]
        start = rom_rd.data   # of the buffered beat

        # -- the walk of a spike: channel groups, rows, runs ----------------------------------
        walking = Signal()
        kg_i = Signal(range(KG))
        row_i, run_i = Signal(range(rows_max + 1)), Signal(range(runs_max + 1))
        rows, runs = Signal(range(rows_max + 1)), Signal(range(runs_max + 1))
        tail, phase = Signal(range(P + 1)), Signal(range(P))
        ab_kg, ab_row, ab = (Signal(range(depth + 1), name=n) for n in ("ab_kg", "ab_row", "ab"))
        wa_kg, wa = Signal(range(KG * C * KH)), Signal(range(KG * C * KH))
        r0, r = Signal(range(KW)), Signal(range(KW))
        last_run = run_i == runs - 1
        last_row = row_i == rows - 1
        walk_last = last_run & last_row & (kg_i == KG - 1)

        # -- the pass: every group in order; lanes of channel k from word (kg, yo, xb) ---------
        passing = Signal()
        p_g, p_xb = Signal(range(G)), Signal(range(XB))
        p_k, p_in_k = Signal(range(K)), Signal(range(HO * XB))
        p_kk = Signal(range(PK))
        p_ab, p_kbase = Signal(range(depth)), Signal(range(depth))
        p_base = Signal(self.base_width)
        p_first_step = Signal()
        credit = Signal()
        m.d.sync += credit.eq(self.room)

        op_layout = data.StructLayout({
            "pass": 1, "g": range(G), "k": range(K), "kk": range(PK), "first_step": 1,
            "last": 1, "partial": 1, "base": self.base_width,
            "addr": data.ArrayLayout(range(depth + 1), P), "en": P})
        op_valid, op = Signal(), Signal(op_layout)
        clear = (p_kk == PK - 1) | (p_k == K - 1)   # the word's last channel: clear it
        columns = Mux(last_run, tail, P)
        ab_next = ab + 1
        # Bank p takes column x0 + d of the run, d = (p - x0) mod P: enabled if d < columns,
        # at word ab (+ 1 below the phase), with weight kx = r - SW d (one-hot, for stage 1).
        offsets = [Array([Const((p - ph) % P, range(P)) for ph in range(P)])[phase]
                   for p in range(P)]
        pick = Signal(data.ArrayLayout(KW, P))
        for p, d in enumerate(offsets):
            m.d.comb += [op.addr[p].eq(Mux(passing, p_ab, Mux(p < phase, ab_next, ab))),
                         op.en[p].eq(Mux(passing, clear, d < columns))]
            kx = r - d * SW             # unsigned - unsigned: signed
            m.d.comb += pick[p].eq(Cat(*[kx == c for c in range(KW)]))
        m.d.comb += [
            op_valid.eq(walking | (passing & credit)), op["pass"].eq(passing),
            op.g.eq(p_g), op.k.eq(p_k), op.kk.eq(p_kk), op.first_step.eq(p_first_step),
            op.last.eq(Mux(passing, p_g == G - 1, walk_last)),
            op.partial.eq(p_xb == XB - 1), op.base.eq(p_base)]
        at_last = op_valid & op.last
        quiet_ok = pass_spacing(m, self.pass_gap, op_valid & op["pass"])
        # One walk or pass at a time: the next beat is taken with the last operation.
        walk_start, pass_start, first_step, _ = count_beats(
            m, self, beat_v, beat, consume, ready=~(walking | passing) | at_last,
            quiet_ok=quiet_ok, pass_every=1)

        with m.If(walk_start & (start.rows != 0) & (start.runs != 0)):
            m.d.sync += [walking.eq(1), kg_i.eq(0), row_i.eq(0), run_i.eq(0),
                         rows.eq(start.rows), runs.eq(start.runs), tail.eq(start.tail),
                         phase.eq(start.phase), ab_kg.eq(start.ab0), ab_row.eq(start.ab0),
                         ab.eq(start.ab0), wa_kg.eq(start.wa0), wa.eq(start.wa0),
                         r0.eq(start.r0), r.eq(start.r0)]
        with m.Elif(walking & ~passing):
            with m.If(~last_run):
                m.d.sync += [run_i.eq(run_i + 1), ab.eq(ab_next), r.eq(r - P * SW)]
            with m.Elif(~last_row):
                m.d.sync += [run_i.eq(0), row_i.eq(row_i + 1), ab_row.eq(ab_row + XB),
                             ab.eq(ab_row + XB), r.eq(r0), wa.eq(wa - SH)]
            with m.Elif(kg_i != KG - 1):
                m.d.sync += [run_i.eq(0), row_i.eq(0), kg_i.eq(kg_i + 1),
                             ab_kg.eq(ab_kg + HO * XB), ab_row.eq(ab_kg + HO * XB),
                             ab.eq(ab_kg + HO * XB), r.eq(r0), wa_kg.eq(wa_kg + C * KH),
                             wa.eq(wa_kg + C * KH)]
            with m.Else():
                m.d.sync += walking.eq(0)

        with m.If(passing & op_valid):
            with m.If(op.last):
                m.d.sync += [passing.eq(0), p_g.eq(0), p_xb.eq(0), p_k.eq(0), p_in_k.eq(0),
                             p_kk.eq(0), p_ab.eq(0), p_kbase.eq(0), p_base.eq(0)]
            with m.Else():
                k_done = p_in_k == HO * XB - 1
                m.d.sync += [p_g.eq(p_g + 1),
                             p_xb.eq(Mux(p_xb == XB - 1, 0, p_xb + 1)),
                             p_base.eq(p_base + Mux(p_xb == XB - 1, WO - (XB - 1) * P, P)),
                             p_in_k.eq(Mux(k_done, 0, p_in_k + 1)),
                             p_k.eq(p_k + k_done)]
                with m.If(~k_done):
                    m.d.sync += p_ab.eq(p_ab + 1)
                with m.Elif(p_kk == PK - 1):
                    m.d.sync += [p_kk.eq(0), p_kbase.eq(p_kbase + HO * XB),
                                 p_ab.eq(p_kbase + HO * XB)]
                with m.Else():
                    m.d.sync += [p_kk.eq(p_kk + 1), p_ab.eq(p_kbase)]
        # After the above: a pass may start with the last operation of the one before.
        with m.If(pass_start):
            m.d.sync += [passing.eq(1), p_first_step.eq(first_step)]

        m.d.comb += w_rd.addr.eq(wa)
        for p, (rd, _) in enumerate(banks):
            m.d.comb += rd.addr.eq(op.addr[p])

        # -- stages 1 to 3: only the valid bits need a reset -----------------------------------
        valid, stage = [op_valid], [op]
        for n in (1, 2, 3):
            valid.append(Signal(name=f"s{n}_valid"))
            stage.append(Signal(op_layout, name=f"s{n}", reset_less=True))
            m.d.sync += [valid[n].eq(valid[n - 1]), stage[n].eq(stage[n - 1])]
        s1, s2, s3 = stage[1:]
        pick1 = Signal.like(pick, reset_less=True)
        m.d.sync += pick1.eq(pick)
        m.d.comb += [self.issue.valid.eq(valid[1] & s1["pass"]), self.issue.g.eq(s1.g),
                     self.issue.channel.eq(s1.k)]

        # Stage 1 -> 2: each lane's weight, picked from the kernel word on its way into the
        # register; the banks' words registered.
        kernel = lanes_of(w_rd.data, PK * KW, WB)
        w2 = Signal(data.ArrayLayout(data.ArrayLayout(signed(WB), PK), P), reset_less=True)
        for p in range(P):
            for kk in range(PK):
                row = kernel[kk * KW:(kk + 1) * KW]
                m.d.sync += w2[p][kk].eq(_or_select(pick1[p], row, WB))
        acc2 = [Signal(word_width, name=f"s2_bank{p}", reset_less=True) for p in range(P)]
        m.d.sync += [a.eq(rd.data) for a, (rd, _) in zip(acc2, banks)]

        # -- stage 2: forward the writes in flight, bank by bank, then accumulate or clear ----
        pass_lanes = Signal(data.ArrayLayout(signed(AW), P), reset_less=True)
        for p, (_, wr) in enumerate(banks):
            new = Signal(word_width, name=f"new_bank{p}")
            en = valid[2] & s2.en[p]
            word = forward_writes(m, name=f"bank{p}", read_addr=s1.addr[p], read_word=acc2[p],
                                  write_en=en, write_addr=s2.addr[p], write_data=new)
            touched = word[-1]
            lanes = [Mux(touched, v, 0) for v in lanes_of(word[:PK * AW], PK, AW)]
            acc_sum = Cat(*[(a + w2[p][kk])[:AW] for kk, a in enumerate(lanes)])
            m.d.comb += [new.eq(Mux(s2["pass"], 0, Cat(acc_sum, Const(1, 1)))),
                         wr.addr.eq(s2.addr[p]), wr.data.eq(new), wr.en.eq(en)]
            # A pass hands on its channel's lane of the word (registered: stage 3).
            m.d.sync += pass_lanes[p].eq(Array(lanes)[s2.kk] if PK > 1 else lanes[0])
        hand_on(m, self, valid[3], s3, [pass_lanes[p] for p in range(P)], s3.partial)
        return m


def _or_select(onehot, values: list, width: int):
    """The value whose bit is set in ``onehot`` (0 if none): an AND-OR, no priority."""
    result = Const(0, width)
    for bit, value in zip(onehot, values):
        result = result | Mux(bit, value.as_unsigned(), 0)
    return result.as_signed()
