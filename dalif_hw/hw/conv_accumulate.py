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
first column offset, from a one-hot select computed a cycle ahead. A ROM gives, per input
index, where the walk starts and how many rows and runs it takes, so that the walk needs
adders only; it is read as a beat enters the input buffer, and its word comes from the block
RAMs' output registers a cycle after the beat is taken, when the walk is launched
(:func:`~dalif_hw.hw.rom.late_rom`). The next beat is taken a cycle before the walk ahead of it
ends, so spikes still follow each other with no bubble. The kernel word is read a cycle ahead
(at the address the walk takes next) for its output register likewise.

Each bank word carries a *touched* bit: the first operation of a timestep on a word starts
from zero instead of what is stored. The update pass reads all P banks at one address (a
group) and hands on the lanes of its channel; the last channel of a word's channel group
clears the word. Banks of a few words are LUT RAM, read in the cycle of the add and the
write, so that spikes follow each other with no bubble and nothing in flight; deeper ones
are block RAM, read two cycles ahead, and the two writes in flight are forwarded bank by
bank (as in :mod:`.accumulate`).

Where a second set of banks is cheap (:meth:`ConvAccumulator.overlaps`), timestep t
accumulates into set t % 2 while the pass of t - 1 reads and clears the other: a timestep
then costs about max(operations, groups) cycles instead of their sum (:mod:`.cost`).

The input buffer, beat counting (the beat cap), the pass issue and the credit (``room``) are
those of :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`, and the pass is handed on as
there (:func:`~dalif_hw.hw.accumulate.hand_on`).
"""

from __future__ import annotations

import itertools

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
    hand_on,
    input_buffer,
    input_probes,
    lanes_of,
    pass_spacing,
    second_set,
    shifted,
    shifted_width,
    stages,
    weight_memory,
)
from .rom import late_rom
from .streams import beat_shift

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
    acc_width, base_width, pass_gap, cfg_widths, beat_cap, weight_image, shifts
        As for :class:`~dalif_hw.hw.accumulate.SpikeAccumulator` (a beat with counts: each
        lane's weight shifted as it is picked from the kernel word).
    """

    LATENCY = SpikeAccumulator.LATENCY
    #: Banks of at most this many words (one LUT-RAM cell deep) are read in the cycle of the
    #: add and write: no writes in flight to forward. Deeper ones (block RAM) are read two
    #: cycles ahead, with the two writes in flight forwarded.
    LUT_DEPTH = 16
    #: A pass operation is issued a cycle after it starts (its lanes are picked from the
    #: channel group's word in a stage of their own).
    LEAD = 1
    SLACK = 2 + LEAD

    def __init__(self, *, shape: ConvShape, lanes: int, acc_lanes: int, T: int,
                 weights: MemorySpec, acc_width: int, base_width: int, pass_gap: int,
                 cfg_widths: dict, beat_cap: int | None = None,
                 weight_image: list | None = None, weight_ram: str = "block", shifts: int = 1,
                 overlap: bool | None = None):
        self.shape, self.lanes, self.T, self.weights = shape, lanes, T, weights
        self.shifts = shifts
        self.weight_ram = check_weight_ram(weight_ram)
        self.inputs = shape.inputs
        self.beat_cap = self.inputs if beat_cap is None else beat_cap
        self.groups, self.blocks = conv_groups(shape, lanes)
        self.channel_groups, self.channel_lanes = conv_channel_groups(shape, lanes, acc_lanes)
        self.acc_width, self.base_width, self.pass_gap = acc_width, base_width, pass_gap
        self.weight_image = checked_image(weights, weight_image)
        self.rom = window_rom(shape, lanes)
        self.overlap = self.overlaps(shape, lanes, acc_lanes, acc_width, overlap)
        self.lut_banks = self.bank_depth(shape, lanes, acc_lanes) <= self.LUT_DEPTH
        super().__init__(AccumulatorSignature(
            inputs=self.inputs, groups=self.groups, lanes=lanes, acc_width=acc_width,
            base_width=base_width, cfg_widths=cfg_widths, channels=shape.channels,
            shifts=shifts))
        self.probes = input_probes(self)

    @staticmethod
    def bank_depth(shape: ConvShape, lanes: int, acc_lanes: int) -> int:
        """Words of a bank: KG HO XB."""
        return conv_channel_groups(shape, lanes, acc_lanes)[0] * shape.out_shape[1] * \
            conv_groups(shape, lanes)[1]

    @classmethod
    def overlaps(cls, shape: ConvShape, lanes: int, acc_lanes: int, acc_width: int,
                 given: bool | None = None) -> bool:
        """Whether the layer gets the second set of banks (:func:`.accumulate.second_set` of
        its P banks of :meth:`bank_depth` words of PK AW + 1 bits, or ``given``): by the rule
        the digits network's layer does, the MNIST-shaped network's do not."""
        PK = acc_lanes // lanes
        return second_set(lanes * cls.bank_depth(shape, lanes, acc_lanes) * (PK * acc_width + 1),
                          given)

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
        # With overlap, two sets of banks: timestep t accumulates into set t % 2 while the
        # pass of t - 1 reads and clears the other.
        sets = 2 if self.overlap else 1
        banks = [[None] * P for _ in range(sets)]
        for e, p in itertools.product(range(sets), range(P)):
            bank = m.submodules[f"acc_bank{p}_{e}"] = Memory(
                shape=unsigned(word_width), depth=depth, init=[])
            banks[e][p] = (bank.read_port(domain="comb" if self.lut_banks else "sync"),
                           bank.write_port())

        # The walk's start per input index (and its operations, KG rows runs), read when the
        # beat enters the buffer, there from registers (:func:`.rom.late_rom`) a cycle after
        # the beat is taken: the walk is *launched* then.
        rows_max = max([e["rows"] for e in self.rom] + [1])
        runs_max = max([e["runs"] for e in self.rom] + [1])
        ops = [KG * e["rows"] * e["runs"] for e in self.rom]     # of each input index
        ops_max = KG * rows_max * runs_max
        rom_layout = data.StructLayout({
            "ab0": range(max(2, HO * XB)), "wa0": range(max(2, C * KH)), "phase": range(P),
            "r0": range(KW), "rows": range(rows_max + 1), "runs": range(runs_max + 1),
            "tail": range(P + 1), "ops": range(ops_max + 1)})
        beat_v, beat, consume = input_buffer(m, self)
        # Of the beat taken the cycle before (read a cycle later than a read port would).
        start = late_rom(m, "window_rom", rom_layout,
                         [dict(e, ops=n) for e, n in zip(self.rom, ops)],
                         self.i.payload.index, self.i.valid & self.i.ready)
        launch = Signal()
        # Whether that walk takes at most one operation, registered beside it from a ROM in
        # LUTs at the buffered beat's index: the take of the next beat waits on it, and a
        # path from the block RAM's output through the take back to its enable was the
        # critical path (2.6 ns of logic, 11.1 of routing on the ECP5-85F). ``ram_style =
        # "logic"``: else Yosys merges ``short`` into the ROM as a synchronous read and puts a
        # deep one into a block RAM without its output register (that path again, 6.8 ns of
        # logic and 8.4 of routing in the MNIST-shaped network's conv1, 65.8 MHz).
        flags = Memory(shape=1, depth=len(self.rom), init=[int(n <= 1) for n in ops],
                       attrs={"ram_style": "logic"})
        m.submodules.short_rom = flags
        flag = flags.read_port(domain="comb")
        short = Signal()
        m.d.comb += flag.addr.eq(beat.index)
        m.d.sync += short.eq(flag.data)

        # -- the walk of a spike: channel groups, rows, runs ----------------------------------
        walking = Signal()
        remaining = Signal(range(ops_max + 1))   # operations of the walk, this one included
        parity = Signal()                 # the set of banks this timestep accumulates into
        kg_i = Signal(range(KG))
        row_i, run_i = Signal(range(rows_max + 1)), Signal(range(runs_max + 1))
        rows, runs = Signal(range(rows_max + 1)), Signal(range(runs_max + 1))
        tail, phase = Signal(range(P + 1)), Signal(range(P))
        ab_kg, ab_row, ab = (Signal(range(depth + 1), name=n) for n in ("ab_kg", "ab_row", "ab"))
        wa_kg, wa = Signal(range(KG * C * KH)), Signal(range(KG * C * KH))
        wa_next = Signal.like(wa)         # what wa takes at the clock: the kernel's read
        m.d.comb += wa_next.eq(wa)        # address (see "the walk, stage 1 -> 2")
        m.d.sync += wa.eq(wa_next)
        r0, r = Signal(range(KW)), Signal(range(KW))
        last_run = run_i == runs - 1
        last_row = row_i == rows - 1
        walk_last = remaining == 1

        shift, launch_shift = Signal(range(self.shifts)), Signal(range(self.shifts))
        walk_layout = data.StructLayout({
            "parity": 1, "addr": data.ArrayLayout(range(depth + 1), P), "en": P,
            "shift": range(self.shifts)})
        walk_valid, walk = Signal(), Signal(walk_layout)
        columns = Mux(last_run, tail, P)
        ab_next = ab + 1
        # Bank p takes column x0 + d of the run, d = (p - x0) mod P: enabled if d < columns,
        # at word ab (+ 1 below the phase), with weight kx = r - SW d (one-hot, for stage 1).
        offsets = [Array([Const((p - ph) % P, range(P)) for ph in range(P)])[phase]
                   for p in range(P)]
        pick = Signal(data.ArrayLayout(KW, P))
        for p, d in enumerate(offsets):
            m.d.comb += [walk.addr[p].eq(Mux(p < phase, ab_next, ab)),
                         walk.en[p].eq(d < columns)]
            kx = r - d * SW             # unsigned - unsigned: signed
            m.d.comb += pick[p].eq(Cat(*[kx == c for c in range(KW)]))
        m.d.comb += [walk_valid.eq(walking), walk.parity.eq(parity), walk.shift.eq(shift)]

        # -- the pass: every group in order; lanes of channel k from word (kg, yo, xb) ---------
        passing = Signal()
        p_g, p_xb = Signal(range(G)), Signal(range(XB))
        p_k, p_in_k = Signal(range(K)), Signal(range(HO * XB))
        p_kk = Signal(range(PK))
        p_ab, p_kbase = Signal(range(depth)), Signal(range(depth))
        p_base = Signal(self.base_width)
        p_first_step, p_parity = Signal(), Signal()
        credit = Signal()
        m.d.sync += credit.eq(self.room)
        pass_layout_ = data.StructLayout({
            "parity": 1, "g": range(G), "k": range(K), "kk": range(PK),
            "first_step": 1, "last": 1, "partial": 1, "base": self.base_width,
            "addr": range(depth), "clear": 1})
        op_valid, op = Signal(), Signal(pass_layout_)
        m.d.comb += [
            op_valid.eq(passing & credit), op.parity.eq(p_parity),
            op.g.eq(p_g), op.k.eq(p_k), op.kk.eq(p_kk), op.first_step.eq(p_first_step),
            op.last.eq(p_g == G - 1), op.partial.eq(p_xb == XB - 1), op.base.eq(p_base),
            op.addr.eq(p_ab),
            op.clear.eq((p_kk == PK - 1) | (p_k == K - 1))]   # the word's last channel

        # -- stages: the walk's 1 and 2 (write), the pass's 1 (issue), 2 (clear) and 3 ---------
        w_valid, w_stage = stages(m, walk_valid, walk, "s", 2)
        p_valid, p_stage = stages(m, op_valid, op, "p")
        s1, s2 = w_stage[1:]
        p1, p2, p3 = p_stage[1:]

        # A pass of timestep t starts once the walk's writes of t have landed, when the one
        # before it is over (its clears written), spaced from it for the update behind
        # (pass_gap) and with room behind; the walk of t + 1 goes on beside it, into the other
        # set of banks, but the walk of t + 2 waits for it (the same set).
        due, due_first = Signal(), Signal()
        pass_busy = passing | p_valid[1] | p_valid[2]
        drained = ~((w_valid[1] & (s1.parity != parity)) | (w_valid[2] & (s2.parity != parity)))
        quiet_ok = pass_spacing(m, self.pass_gap, op_valid)
        go = due & ~pass_busy & drained & quiet_ok
        # A spike is taken when the walker is free the next cycle, when its walk is launched:
        # one launched now of at most one operation, or none launched and at most one more
        # to go. An eot waits until the walks of its timestep are out of the walker (the last
        # in this cycle), since its pass flips the set that they write.
        spike_ready = Mux(launch, short, ~walking | (remaining <= 2))
        eot_ready = ~launch & (~walking | walk_last)
        # A spike waits while its set is being passed (or due to be, with one set); an eot
        # while a pass is still due.
        set_busy = pass_busy & (p_parity == parity) if self.overlap else pass_busy | due
        ready = Mux(beat.eot, eot_ready & ~due, spike_ready & ~set_busy)
        walk_start, pass_start, first_step = count_beats(
            m, self, beat_v, beat, consume, ready=ready, pass_every=1)
        m.d.sync += [launch.eq(walk_start), launch_shift.eq(beat_shift(beat))]
        with m.If(pass_start):
            m.d.sync += [due.eq(1), due_first.eq(first_step), parity.eq(~parity)]
        with m.Elif(go):
            m.d.sync += due.eq(0)
        with m.If(go):
            m.d.sync += [passing.eq(1), p_first_step.eq(due_first), p_parity.eq(~parity)]

        with m.If(launch & (start.ops != 0)):
            m.d.sync += [walking.eq(1), remaining.eq(start.ops),
                         kg_i.eq(0), row_i.eq(0), run_i.eq(0),
                         rows.eq(start.rows), runs.eq(start.runs), tail.eq(start.tail),
                         phase.eq(start.phase), ab_kg.eq(start.ab0), ab_row.eq(start.ab0),
                         ab.eq(start.ab0), wa_kg.eq(start.wa0), r0.eq(start.r0),
                         r.eq(start.r0), shift.eq(launch_shift)]
            m.d.comb += wa_next.eq(start.wa0)
        with m.Elif(walking):
            m.d.sync += remaining.eq(remaining - 1)
            with m.If(~last_run):
                m.d.sync += [run_i.eq(run_i + 1), ab.eq(ab_next), r.eq(r - P * SW)]
            with m.Elif(~last_row):
                m.d.sync += [run_i.eq(0), row_i.eq(row_i + 1), ab_row.eq(ab_row + XB),
                             ab.eq(ab_row + XB), r.eq(r0)]
                m.d.comb += wa_next.eq(wa - SH)
            with m.Elif(kg_i != KG - 1):
                m.d.sync += [run_i.eq(0), row_i.eq(0), kg_i.eq(kg_i + 1),
                             ab_kg.eq(ab_kg + HO * XB), ab_row.eq(ab_kg + HO * XB),
                             ab.eq(ab_kg + HO * XB), r.eq(r0), wa_kg.eq(wa_kg + C * KH)]
                m.d.comb += wa_next.eq(wa_kg + C * KH)
            with m.Else():
                m.d.sync += walking.eq(0)

        with m.If(op_valid):
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

        m.d.comb += [self.issue.valid.eq(p_valid[1]), self.issue.g.eq(p1.g),
                     self.issue.channel.eq(p1.k)]

        # -- the banks' ports: each set serves the walk or the pass (never both at once) -------
        # LUT-RAM banks are read at stage 2, in the cycle of the add and the write; block-RAM
        # banks at stage 0, their words registered at stage 2, a register per bank and set.
        m.d.comb += w_rd.addr.eq(wa_next)
        # A LUT-RAM bank's address (read and write, both at stage 2) is picked a stage early,
        # so that it comes straight from a register (its select reaches every bank).
        news = [Signal(word_width, name=f"new_bank{p}") for p in range(P)]
        for e in range(sets):
            pass_here = [p_valid[n] & ((p_stage[n].parity == e) | (sets == 1))
                         for n in range(3)]
            for p, (rd, wr) in enumerate(banks[e]):
                if self.lut_banks:
                    addr = Signal(range(depth + 1), name=f"s2_addr_bank{p}_{e}",
                                  reset_less=True)
                    m.d.sync += addr.eq(Mux(pass_here[1], p1.addr, s1.addr[p]))
                    m.d.comb += rd.addr.eq(addr)
                else:
                    addr = Mux(pass_here[2], p2.addr, s2.addr[p])
                    m.d.comb += rd.addr.eq(Mux(pass_here[0], op.addr, walk.addr[p]))
                m.d.comb += [
                    wr.addr.eq(addr),
                    # A pass clears the touched bit alone: an untouched word's lanes are
                    # never read.
                    wr.data.eq(Cat(news[p][:-1], ~pass_here[2])),
                    wr.en.eq(Mux(pass_here[2], p2.clear,
                                 w_valid[2] & ((s2.parity == e) | (sets == 1)) & s2.en[p]))]

        # Each bank's word at stage 2, in each set: LUT RAM's read in that cycle; block RAM's
        # registered alone, so that the block RAM's own output register holds it
        # (flow/hardregs), and the set picked after it.
        words = [[banks[e][p][0].data for p in range(P)] for e in range(sets)]
        if not self.lut_banks:
            registered = [[Signal(word_width, name=f"s2_bank{p}_{e}", reset_less=True)
                           for p in range(P)] for e in range(sets)]
            for e, p in itertools.product(range(sets), range(P)):
                m.d.sync += registered[e][p].eq(words[e][p])
            words = registered

        def word_of(p, stage):
            """Bank p's word at stage 2 for the operation at ``stage`` (its set's)."""
            return words[0][p] if sets == 1 else Mux(stage.parity, words[1][p], words[0][p])

        acc2 = [word_of(p, s2) for p in range(P)]
        pass2 = [word_of(p, p2) for p in range(P)]

        # -- the walk, stage 1 -> 2: each lane's weight, picked from the kernel word on its
        # way into the register. The kernel word is read a cycle ahead (at the address the
        # walk takes next) and registered alone, so that the block RAM's own output register
        # holds it (flow/hardregs) and the pick starts from a register. -----------------------
        pick1 = Signal.like(pick, reset_less=True)
        m.d.sync += pick1.eq(pick)
        kernel_word = Signal.like(w_rd.data, name="s1_kernel", reset_less=True)
        m.d.sync += kernel_word.eq(w_rd.data)
        kernel = lanes_of(kernel_word, PK * KW, WB)
        w2 = Signal(data.ArrayLayout(data.ArrayLayout(signed(shifted_width(WB, self.shifts)), PK),
                                     P), reset_less=True)
        for p in range(P):
            for kk in range(PK):
                m.d.sync += w2[p][kk].eq(shifted(
                    _or_select(pick1[p], kernel[kk * KW:(kk + 1) * KW], WB), s1.shift,
                    self.shifts))

        # -- the walk, stage 2: accumulate, bank by bank ----------------------------------------
        # Block-RAM banks: the two writes still in flight are not in the word read at stage 0;
        # forward them (decided at stage 1, from registers; the set is part of the address: a
        # timestep's first walk may follow the last one of the timestep before on the same
        # word of the other set).
        for p in range(P):
            en = w_valid[2] & s2.en[p]
            word = acc2[p]
            if not self.lut_banks:
                at = lambda stage: Cat(stage.addr[p], stage.parity)  # noqa: E731
                wl1 = Signal(len(at(s2)) + word_width + 1, name=f"wl1_bank{p}")
                wl2 = Signal.like(wl1, name=f"wl2_bank{p}")
                fwd1, fwd2 = Signal(name=f"fwd1_bank{p}"), Signal(name=f"fwd2_bank{p}")
                m.d.sync += [wl1.eq(Cat(en, at(s2), news[p])), wl2.eq(wl1),
                             fwd1.eq(en & (at(s2) == at(s1))),
                             fwd2.eq(wl1[0] & (wl1[1:1 + len(at(s1))] == at(s1)))]
                word = Mux(fwd1, wl1[-word_width:], Mux(fwd2, wl2[-word_width:], word))
            lanes = [Mux(word[-1], v, 0) for v in lanes_of(word[:PK * AW], PK, AW)]
            m.d.comb += news[p].eq(Cat(*[(a + w2[p][kk])[:AW] for kk, a in enumerate(lanes)],
                                       Const(1, 1)))   # touched

        # -- the pass, stage 2 -> 3: its channel's lanes of the word (0 if untouched) ----------
        pass_lanes = Signal(data.ArrayLayout(signed(AW), P), reset_less=True)
        for p in range(P):
            lanes = lanes_of(pass2[p][:PK * AW], PK, AW)
            lane = Array(lanes)[p2.kk] if PK > 1 else lanes[0]
            m.d.sync += pass_lanes[p].eq(Mux(pass2[p][-1], lane, 0))
        hand_on(m, self, p_valid[3], p3, [pass_lanes[p] for p in range(P)], p3.partial)
        return m


def _or_select(onehot, values: list, width: int):
    """The value whose bit is set in ``onehot`` (0 if none): an AND-OR, no priority."""
    result = Const(0, width)
    for bit, value in zip(onehot, values):
        result = result | Mux(bit, value.as_unsigned(), 0)
    return result.as_signed()
