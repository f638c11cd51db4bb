"""Spike-driven accumulation: the input side shared by neuron arrays and readouts.

The accumulators sit in GA = ceil(N / A) words of A lanes (A, the accumulation lanes, is P
unless set: ``ArrayConfig.acc_lanes``). An input spike beat with index j walks the GA words,
one a cycle: it reads weight word ``a * M + j`` and accumulator word a and writes back their
lane-wise sums. Silent inputs cost nothing. The read-modify-write takes four cycles (the
weight word addressed, then the accumulator word; both registered, the weight word twice;
add and write); the two writes still in flight are forwarded to a read of the same word
(with GA >= 3 there never are any), so beats follow each other with no bubble whatever GA.
The first beat after a pass of its set starts from zero instead of what the word holds, so
the accumulators never need clearing.

Every ``pass_every``-th ``eot`` beat (every one for a neuron array, every T-th for a readout)
makes a *pass* due: one operation per group of P lanes (A / P to a word), one a cycle, from
a walker of its own, that reads the accumulators, adds the group's ``bias`` and hands them
to the datapath behind (``pass_``, two cycles after issue, with the group number on
``issue`` at issue time so that it can read its own memories in step). It starts once the
last write of its beats has landed. Where a second set of accumulators is cheap
(:func:`second_set`, ``overlap``), the beats after the eot go into the other set while the
pass reads this one, and a timestep of E counted beats takes about max(GA E, G) cycles; with
one set they wait for the pass: GA E + G. A lanes need adders and memory width, P lanes the
update's multipliers.

Beats with an index of M or more, and beats beyond the B-th counted one of a timestep (the beat
cap B, default M), are dropped and raise the sticky ``err``.

Behind a counting sum pool (``shifts`` > 1, :mod:`.pool`), a beat carries a ``shift``: it
stands for 2 ** shift beats of its index, counts as many against the beat cap (all or none),
and adds its weights shifted left by ``shift`` (in the stage that registers the weight word
in the fabric: a multiplexer, no multiplier).
"""

from __future__ import annotations

import types

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..core.layout import MemorySpec
from .streams import ConfigSignature, beat_shift, event_signature

__all__ = ["SpikeAccumulator", "AccumulatorSignature", "pass_layout", "issue_signature",
           "lanes_of", "second_set", "OVERLAP_BITS",
           "config_write_port", "config_widths", "read_in_step", "shifted", "shifted_width"]


def pass_layout(groups: int, base_width: int, lanes: int, acc_width: int) -> data.StructLayout:
    """What a pass operation hands to the neurons behind, per group: ``g``, ``first_step``
    (issued by the first timestep of a sample), ``last`` (last group), ``partial`` (only the
    group's first ``tail`` lanes are neurons: the array's last group, a convolution's last
    block of columns in a row), ``base`` (the index of lane 0) and ``acc`` (the group's
    currents, one signed lane each: the bias plus the weights of the counted beats)."""
    return data.StructLayout({
        "g": range(groups), "first_step": 1, "last": 1, "partial": 1,
        "base": base_width, "acc": data.ArrayLayout(signed(acc_width), lanes)})


def issue_signature(groups: int, channels: int = 1) -> wiring.Signature:
    return wiring.Signature({"valid": Out(1), "g": Out(range(groups)),
                             "channel": Out(range(channels))})


class AccumulatorSignature(wiring.Signature):
    """The narrow interface between an accumulator and the neurons behind it: what a second
    accumulator (over a convolution's kernel window, say) must provide.

    ``i`` (events in), ``cfg`` (its weight memory's share of the configuration port), ``err``
    (sticky: a beat dropped); ``issue`` (``valid``: a pass operation issued this cycle, for
    group ``g`` of output ``channel`` (0 for a dense array), so that the neurons can address
    their memories with it);
    ``pass_`` (``valid`` and a :func:`pass_layout` payload, ``LATENCY`` cycles after issue);
    ``bias`` (in, in step with ``pass_``: what the pass adds to the group's accumulators) and
    ``room`` (in: the neurons behind can take every pass operation in flight plus ``SLACK``).
    ``shifts`` > 1: ``i`` carries counts (:mod:`.streams`).
    """

    def __init__(self, *, inputs: int, groups: int, lanes: int, acc_width: int,
                 base_width: int, cfg_widths: dict, channels: int = 1, shifts: int = 1):
        super().__init__({
            "i": In(event_signature(inputs, shifts)),
            "cfg": In(ConfigSignature(**cfg_widths)),
            "err": Out(1),
            "issue": Out(issue_signature(groups, channels)),
            "pass_": Out(wiring.Signature({
                "valid": Out(1),
                "payload": Out(pass_layout(groups, base_width, lanes, acc_width))})),
            "bias": In(data.ArrayLayout(signed(acc_width), lanes)),
            "room": In(1),
        })


def shifted_width(width: int, shifts: int) -> int:
    """Bits of a signed weight of ``width`` bits shifted left by up to ``shifts`` - 1."""
    return width + shifts - 1


def shifted(value, shift, shifts: int):
    """A signed ``value`` times 2 ** ``shift`` (``shift`` below ``shifts``), of
    :func:`shifted_width` bits: a multiplexer over its shifts."""
    result = value.as_signed()
    for s in range(1, shifts):
        result = Mux(shift == s, value.as_signed() << s, result)
    return result[:shifted_width(len(value), shifts)].as_signed()


def lanes_of(word, lanes: int, width: int, signed: bool = True) -> list:
    """Split a memory word into its ``lanes`` lanes of ``width`` bits."""
    parts = [word[p * width:(p + 1) * width] for p in range(lanes)]
    return [part.as_signed() if signed else part for part in parts]


def config_write_port(m: Module, memory: Memory, spec: MemorySpec, cfg, addr=None):
    """Connect a write port of ``memory`` to the configuration port (one lane per write);
    return whether a write hits it this cycle. ``addr`` replaces the port's address (a
    single-port memory's, shared with its read port)."""
    wp = memory.write_port(granularity=spec.lane_width)
    hit = (cfg.en & (cfg.sel == spec.select) & (cfg.addr < spec.depth) &
           (cfg.lane < spec.lanes))
    m.d.comb += [
        wp.addr.eq(cfg.addr if addr is None else addr),
        wp.data.eq(Cat(*[cfg.data[:spec.lane_width]] * spec.lanes)),
        wp.en.eq(Mux(hit, Const(1, spec.lanes) << cfg.lane, 0)),
    ]
    return hit


def config_widths(specs: list[MemorySpec], data_width: int) -> dict:
    """Widths of the configuration port of an array with memories ``specs`` (its widest
    memory, in lanes, sets the lane field: the weights' accumulation lanes, say)."""
    depth = max(spec.depth for spec in specs)
    lanes = max(spec.lanes for spec in specs)
    return {"addr": max(1, ceil_log2(depth)), "lane": max(1, ceil_log2(lanes)),
            "data": data_width}


def read_in_step(m: Module, memory: Memory, addr, name: str, early: bool = False):
    """Read ``memory`` at ``addr`` (an operation's group at issue time); return the word,
    registered, two cycles later: in step with ``SpikeAccumulator.pass_``. With ``early``,
    return ``(word one cycle after issue, word two cycles after)``."""
    port = memory.read_port()
    word = Signal(len(port.data), name=f"s2_{name}", reset_less=True)
    m.d.comb += port.addr.eq(addr)
    m.d.sync += word.eq(port.data)
    return (port.data, word) if early else word


def input_buffer(m: Module, acc) -> tuple:
    """The one-beat input buffer of an accumulator ``acc`` (its ``probes`` name the
    signals), so that ready comes straight from registers. Returns ``(held, beat, taken)``;
    the caller drives ``taken``."""
    beat_v, beat, consume = acc.probes["held"], acc.probes["beat"], acc.probes["taken"]
    m.d.comb += acc.i.ready.eq(~beat_v | consume)
    with m.If(acc.i.valid & acc.i.ready):
        m.d.sync += [beat_v.eq(1), beat.eq(acc.i.payload)]
    with m.Elif(consume):
        m.d.sync += beat_v.eq(0)
    return beat_v, beat, consume


def count_beats(m: Module, acc, beat_v, beat, consume, *, ready, pass_every: int):
    """Take the buffered beat when the accumulator is ``ready`` for it; count it against the
    beat cap, drop it (sticky ``err``) or end the timestep. Returns the strobes
    ``(walk_start, pass_start)``, a counted spike beat taken or an eot that makes a pass
    due (every ``pass_every``-th) taken this cycle, and ``first_step``, whether the
    timestep now ending is a sample's first."""
    M, T = acc.inputs, acc.T
    count = acc.probes["count"]
    t = Signal(range(T))
    steps = Signal(range(pass_every))   # timesteps since the last pass
    err = Signal()
    m.d.comb += acc.err.eq(err)
    pass_due = beat.eot & (steps == pass_every - 1)
    # A beat with counts stands for 2 ** shift beats, all counted or none.
    weight = 1 << beat_shift(beat)
    counted = (beat.index < M) & (count + weight <= acc.beat_cap) if acc.shifts > 1 else \
        (beat.index < M) & (count != acc.beat_cap)
    m.d.comb += consume.eq(beat_v & ready)
    walk_start, pass_start = Signal(), Signal()
    m.d.comb += [walk_start.eq(consume & ~beat.eot & counted),
                 pass_start.eq(consume & pass_due)]
    with m.If(consume):
        with m.If(beat.eot):
            m.d.sync += [count.eq(0), t.eq(Mux(t == T - 1, 0, t + 1))]
            with m.If(pass_due):
                m.d.sync += steps.eq(0)
            with m.Else():
                m.d.sync += steps.eq(steps + 1)
        with m.Elif(counted):
            m.d.sync += count.eq(count + weight)
        with m.Else():
            m.d.sync += err.eq(1)
    return walk_start, pass_start, t == 0


def checked_image(weights: MemorySpec, weight_image: list | None) -> list:
    """The weight memory's initial words: ``weight_image`` (possibly more words than the
    memory's depth: see :class:`SpikeAccumulator`), else the spec's own."""
    image = list(weights.words if weight_image is None else weight_image)
    if len(image) < weights.depth:
        raise ValueError(f"the weight image has {len(image)} words, fewer than the memory's "
                         f"{weights.depth}")
    return image


def input_probes(acc) -> dict:
    """An accumulator's probes (see :class:`SpikeAccumulator`), named as the signals they
    stand for."""
    return {"taken": Signal(name="consume"), "held": Signal(name="beat_v"),
            "beat": Signal.like(acc.i.payload, name="beat"),
            "count": Signal(range(acc.beat_cap + 1), name="count")}


#: Where an accumulator's weights live (``weight_ram``): ``block``, block RAM with initial
#: contents; ``spram``, a single-port memory without them, for the iCE40 UP5K's SPRAM.
WEIGHT_RAMS = ("block", "spram")


def check_weight_ram(weight_ram: str) -> str:
    if weight_ram not in WEIGHT_RAMS:
        raise ValueError(f"weight_ram must be one of {', '.join(WEIGHT_RAMS)}, not "
                         f"{weight_ram!r}")
    return weight_ram


def weight_memory(m: Module, acc):
    """An accumulator's weight memory, on its configuration port; returns its read port
    (an object with ``addr`` and ``data``).

    ``acc.weight_ram == "block"``: block RAM always, even when small: its contents can then
    be swapped in a finished bitstream (python -m dalif_hw.patch). A configuration write and
    a read of the same word in one cycle may return either word ("no_rw_check": no bypass
    logic in front of the block RAM's output register); the configuration port is for use
    between samples, when no read is in flight.

    ``"spram"``: one address for reads and writes (a configuration write takes it, and the
    read port keeps its last word that cycle: SPRAM's "no change"), no initial contents
    (SPRAM has none: the parameters are loaded at run time; :func:`dalif_hw.hw.emit.to_verilog`
    drops the zeros Amaranth writes), ``ram_style = "huge"`` (SB_SPRAM256KA on iCE40)."""
    if acc.weight_ram == "spram":
        memory = m.submodules.weights_mem = Memory(
            shape=unsigned(acc.weights.width), depth=acc.weights.depth, init=[],
            attrs={"ram_style": "huge"})
        shared = Signal(range(acc.weights.depth), name="w_addr")
        hit = config_write_port(m, memory, acc.weights, acc.cfg, addr=shared)
        w_rd = memory.read_port()
        read_addr = Signal(len(w_rd.addr), name="w_rd_addr")
        m.d.comb += [shared.eq(Mux(hit, acc.cfg.addr, read_addr)), w_rd.addr.eq(shared),
                     w_rd.en.eq(~hit)]
        return types.SimpleNamespace(addr=read_addr, data=w_rd.data)
    memory = m.submodules.weights_mem = Memory(
        shape=unsigned(acc.weights.width), depth=len(acc.weight_image), init=acc.weight_image,
        attrs={"ram_style": "block", "no_rw_check": 1})
    config_write_port(m, memory, acc.weights, acc.cfg)
    w_rd = memory.read_port()   # Amaranth names the port's signals after this variable
    return w_rd


def hand_on(m: Module, acc, valid, op, lanes, partial) -> None:
    """Drive ``acc.pass_`` from a pass operation ``op`` (``g``, ``first_step``, ``last``,
    ``base``) at its last stage, ``valid`` when it is one: the group's accumulator ``lanes``
    plus the bias read beside them, and whether the group is ``partial``."""
    out = acc.pass_.payload
    m.d.comb += [acc.pass_.valid.eq(valid), out.g.eq(op.g),
                 out.first_step.eq(op.first_step), out.last.eq(op.last),
                 out.partial.eq(partial), out.base.eq(op.base)]
    m.d.comb += [out.acc[p].eq(v + acc.bias[p]) for p, v in enumerate(lanes)]


#: A second set of accumulators (so that the next timestep accumulates during the update pass)
#: where the two sets hold at most this many bits: :func:`second_set`.
OVERLAP_BITS = 1 << 16


def second_set(bits: int, given: bool | None = None) -> bool:
    """Whether an accumulator whose accumulators take ``bits`` bits gets a second set: a
    timestep then costs about max(operations, pass) cycles instead of their sum
    (:mod:`.cost`). ``given`` (the layer's ``ArrayConfig.second_set``) where it is not None;
    else where the two sets hold at most :data:`OVERLAP_BITS`: a small layer's pass is long
    beside its input work and its accumulators cheap; a large layer's second set takes block
    RAM (the MNIST-shaped network's first convolution: 32 more, 195 of the ECP5-85F's 208),
    which the user may spare (``second_set=True``)."""
    return 2 * bits <= OVERLAP_BITS if given is None else given


def pass_spacing(m: Module, pass_gap: int, pass_issued) -> Signal:
    """Whether a pass whose first operation is issued in the next cycle may start, from
    registers (a pass may not be under way: the caller's to check): the datapath behind
    reads back what a pass writes, so ``pass_gap`` cycles must separate the last operation
    of a pass (``pass_issued``) from the first of the next."""
    quiet_ok = Signal()
    if pass_gap > 0:
        quiet = Signal(range(pass_gap + 2), init=pass_gap + 1)
        with m.If(pass_issued):
            m.d.sync += quiet.eq(1)
        with m.Elif(quiet <= pass_gap):
            m.d.sync += quiet.eq(quiet + 1)
        m.d.comb += quiet_ok.eq(quiet >= pass_gap)
    else:
        m.d.comb += quiet_ok.eq(1)
    return quiet_ok


class SpikeAccumulator(wiring.Component):
    """Input stream, weight memory, accumulators and pass issue (see the module docstring).

    Parameters
    ----------
    inputs : int
        M.
    beat_cap : int, optional
        B: beats of a timestep beyond the B-th counted one are dropped (default M).
    T : int
        Timesteps per sample.
    weights : MemorySpec
        The weight memory: A lanes of WB bits (A = ``weights.lanes``, the accumulation
        lanes), depth GA * M (GA = ceil(N / A), the words a beat walks).
    lanes : int, optional
        P, the lanes a pass operation hands on (default A); A must be a multiple of P.
    groups : int, optional
        G, the pass operations of a pass (default GA): group g holds accumulation word
        ``g * P // A``, lanes ``g * P % A ..`` of it.
    acc_width : int
        Signed bits of one accumulator lane.
    base_width : int
        Bits of ``pass_.base`` (the index of lane 0 of the group, g * P).
    pass_every : int
        1: a pass after every timestep (accumulators restart each timestep); T: after every
        sample (they sum over the sample).
    pass_gap : int
        Cycles that must separate the last operation of a pass from the first of the next
        (the datapath behind reads back what a pass writes); 0 for none.
    cfg_widths : dict
        Widths of the configuration port (shared with the rest of the array).
    weight_image : list of int, optional
        The weight memory's initial words instead of ``weights.words``, possibly more than
        its depth (words never addressed, filling the block RAMs: a placeholder image that
        ``python -m dalif_hw.patch`` can find in a bitstream, see ``synth``).
    weight_ram : str
        :data:`WEIGHT_RAMS`: ``block`` (default) or ``spram`` (see :func:`weight_memory`).
    shifts : int
        1 (default): one beat is one spike; more: the input carries counts, a ``shift`` below
        ``shifts`` (see the module docstring).

    Attributes
    ----------
    (ports) : AccumulatorSignature
        ``issue.g`` is the group of the pass operation issued this cycle; ``pass_`` comes
        :attr:`LATENCY` cycles after issue; ``bias`` is read beside it (read it with
        :func:`read_in_step` at ``issue.g``) and is zero unless driven; ``room`` is
        registered here, so it may be one cycle old.
    probes : dict
        Not ports, for checkers (:mod:`dalif_hw.hw.checks`): ``taken``, a beat leaves the
        one-beat input buffer this cycle (counted, dropped, or an ``eot``); ``held`` and
        ``beat``, the buffer; ``count``, beats counted in this timestep.
    """

    #: Cycles from issue to ``pass_``.
    LATENCY = 2
    #: Cycles from an operation's start in the walker to its issue: the walker addresses the
    #: weight memory first, so that its word has one more register (in the fabric, near the
    #: adders) before the add.
    LEAD = 1
    #: What ``room`` must leave beyond the pass operations between issue and their push:
    #: the push under way when ``room`` was sampled (it is registered), the operation
    #: started now and those between the walker and issue.
    SLACK = 2 + LEAD

    @staticmethod
    def beat_operations(config) -> int:
        """Operations (cycles) of one counted beat in an array of ``config``: GA = ceil(N / A),
        the words it walks (:mod:`dalif_hw.hw.cost`)."""
        return config.acc_groups

    @staticmethod
    def overlaps(acc_groups: int, acc_lanes: int, acc_width: int,
                 given: bool | None = None) -> bool:
        """Whether an accumulator of GA = ``acc_groups`` words of ``acc_lanes`` lanes of
        ``acc_width`` bits gets the second set (:func:`second_set`; ``given``, its
        ``ArrayConfig.second_set``)."""
        return second_set(acc_groups * acc_lanes * acc_width, given)

    def __init__(self, *, inputs: int, T: int, weights: MemorySpec, acc_width: int,
                 base_width: int, pass_every: int, pass_gap: int, cfg_widths: dict,
                 weight_image: list | None = None, beat_cap: int | None = None,
                 weight_ram: str = "block", lanes: int | None = None,
                 groups: int | None = None, overlap: bool | None = None, shifts: int = 1):
        self.inputs, self.T, self.weights, self.shifts = inputs, T, weights, shifts
        self.weight_ram = check_weight_ram(weight_ram)
        self.beat_cap = inputs if beat_cap is None else beat_cap
        self.weight_image = checked_image(weights, weight_image)
        self.pass_gap = pass_gap
        self.acc_lanes, self.acc_groups = weights.lanes, weights.depth // inputs
        self.lanes = self.acc_lanes if lanes is None else lanes
        self.groups = self.acc_groups if groups is None else groups
        if self.acc_lanes % self.lanes or \
                -(-self.groups * self.lanes // self.acc_lanes) != self.acc_groups:
            raise ValueError(f"{self.acc_groups} words of {self.acc_lanes} accumulators do not "
                             f"hand on as {self.groups} groups of {self.lanes}")
        self.acc_width, self.pass_every = acc_width, pass_every
        self.base_width = base_width
        self.overlap = self.overlaps(self.acc_groups, self.acc_lanes, acc_width, overlap)
        #: Cycles a pass may wait, beyond the one after the eot that makes it due, for the
        #: last writes of its set to land (see ``drained`` in :meth:`elaborate`).
        self.pass_wait = max(0, 3 - self.acc_groups)
        super().__init__(AccumulatorSignature(
            inputs=inputs, groups=self.groups, lanes=self.lanes, acc_width=acc_width,
            base_width=base_width, cfg_widths=cfg_widths, shifts=shifts))
        self.probes = input_probes(self)

    def elaborate(self, platform):
        m = Module()
        M, P, G = self.inputs, self.lanes, self.groups
        A, GA = self.acc_lanes, self.acc_groups
        k = A // P                   # groups a word holds
        AW = self.acc_width
        sets = 2 if self.overlap else 1

        w_rd = weight_memory(m, self)
        # With overlap, two sets of accumulators: the beats of a timestep (of a sample, for a
        # readout) go into set ``parity`` while the pass of the one before reads the other.
        ports = []
        for e in range(sets):
            memory = m.submodules[f"acc_mem{e}" if e else "acc_mem"] = Memory(
                shape=unsigned(A * AW), depth=GA, init=[])
            ports.append((memory.read_port(), memory.write_port()))

        beat_v, beat, consume = input_buffer(m, self)
        parity = Signal()            # the set this timestep's beats accumulate into
        # Per set: no beat walked into it since its last pass (its words are stale: a beat
        # starts from 0, a pass hands on the bias alone), so nothing is ever cleared.
        first = Signal(sets, init=(1 << sets) - 1)

        # -- the beat walker: a beat walks the GA words, one a cycle, from registers ---------
        busy = Signal()
        a = Signal(range(GA))        # the word of this cycle's operation
        waddr = Signal(range(GA * M + M))   # its weight address, a * M + j
        walk_zero = Signal()
        walk_shift = Signal(range(self.shifts))   # the beat's count's shift (0 without counts)
        walk_layout = data.StructLayout({"parity": 1, "a": range(GA), "zero": 1, "last": 1,
                                         "shift": range(self.shifts)})
        walk_valid, walk = Signal(), Signal(walk_layout)
        # Whether a walk is at its last word or group: registers set from the next value, so
        # that the end of a walk, and the take of the next beat behind it, start from
        # flip-flops rather than from a compare.
        a_last = walker_end(m, walk_valid, walk.last, a, GA, "a")
        m.d.comb += [walk_valid.eq(busy), walk.parity.eq(parity), walk.a.eq(a),
                     walk.zero.eq(walk_zero), walk.last.eq(a_last), walk.shift.eq(walk_shift)]

        # -- the pass walker: one operation per group of P lanes, k to a word ----------------
        passing = Signal()           # a pass under way (after the cycle it starts in, ``go``)
        go = Signal()
        pg = Signal(range(G))
        base = Signal(self.base_width)   # pg * P
        p_parity, p_zero, p_first_step = Signal(), Signal(), Signal()
        credit = Signal()            # room behind for every operation in flight (registered)
        m.d.sync += credit.eq(self.room)
        pass_layout_ = data.StructLayout({
            "parity": 1, "g": range(G), "a": range(GA), "sub": range(k), "zero": 1,
            "first_step": 1, "last": 1, "base": len(base)})
        op_valid, op = Signal(), Signal(pass_layout_)
        g_last = walker_end(m, op_valid, op.last, pg, G, "g")
        # A pass's flags: registered at its start, and in the cycle it starts, their sources.
        p_parity_now, p_zero_now, due_first = Signal(), Signal(), Signal()
        m.d.comb += [op_valid.eq((passing | go) & credit), op.g.eq(pg),
                     op.parity.eq(Mux(passing, p_parity, p_parity_now)),
                     op.zero.eq(Mux(passing, p_zero, p_zero_now)),
                     op.first_step.eq(Mux(passing, p_first_step, due_first)),
                     op.last.eq(g_last), op.base.eq(base)]
        if k == 1:
            m.d.comb += op.a.eq(pg)
        else:
            pa, sub = Signal(range(GA)), Signal(range(k))
            m.d.comb += [op.a.eq(pa), op.sub.eq(sub)]
            with m.If(op_valid):
                with m.If(op.last):
                    m.d.sync += [pa.eq(0), sub.eq(0)]
                with m.Elif(sub == k - 1):
                    m.d.sync += [pa.eq(pa + 1), sub.eq(0)]
                with m.Else():
                    m.d.sync += sub.eq(sub + 1)
        with m.If(op_valid):
            m.d.sync += [pg.eq(Mux(op.last, 0, pg + 1)), base.eq(Mux(op.last, 0, base + P))]
        with m.If(op_valid & op.last):
            m.d.sync += passing.eq(0)
        with m.Elif(go):
            m.d.sync += passing.eq(1)

        # Stages 1 to 3 of both. Only the valid bits need a reset.
        w_valid, w_stage = stages(m, walk_valid, walk, "s")
        p_valid, p_stage = stages(m, op_valid, op, "p")
        s1, s2, s3 = w_stage[1:]
        p1, p2, p3 = p_stage[1:]

        # -- taking beats; the pass of a timestep once its beats' writes have landed ---------
        at_last = walk_valid & walk.last
        # a and the walk's flags return to 0 at the end of every walk, so a new walk needs no
        # load of them; waddr takes the buffered beat's index whenever it is not stepping (it
        # matters only once that beat is taken).
        with m.If(walk_valid):
            m.d.sync += a.eq(Mux(walk.last, 0, a + 1))
        with m.If(walk_valid & ~walk.last):
            m.d.sync += waddr.eq(waddr + M)
        with m.Else():
            m.d.sync += waddr.eq(beat.index)
        with m.If(at_last):
            m.d.sync += busy.eq(0)
        # A pass starts (``go``: its first operation, with credit) when the one before it is
        # over, spaced from it for the update behind (pass_gap), and once the writes of its
        # set have landed. A write lands at stage 3, and a pass reads word a (or a later one)
        # at its stage 1, a + 1 cycles after it starts or later; the last walk of its set
        # wrote word a at stage 3, 4 - GA + a cycles after the eot was taken (the walk's last
        # operation, word GA - 1, was at stage 0 then). So a pass starting a cycle or more
        # after the eot (``due`` is a register) reads what was written whenever GA >= 3; with
        # fewer words, once that walk's last operation is out of stages 1 to 3 - GA. A beat
        # waits while its set is being passed (or, with one set, while a pass is due or under
        # way); an eot while a pass is still due, and until the walk of its timestep is at its
        # last word (its pass flips the set that the walk writes).
        due = Signal()
        # (A pass issues its first operation in the cycle it starts, not the one after.)
        quiet_ok = pass_spacing(m, self.pass_gap + 1, op_valid)
        drained = ~Cat(*[w_valid[n] & (w_stage[n].parity != parity)
                         for n in range(1, 1 + self.pass_wait)]).any() if self.pass_wait else 1
        m.d.comb += go.eq(due & ~passing & drained & quiet_ok)
        walker_free = ~busy | at_last
        set_busy = passing & (p_parity == parity) if self.overlap else passing | due
        ready = walker_free & Mux(beat.eot, ~due, ~set_busy)
        walk_start, pass_start, first_step = count_beats(
            m, self, beat_v, beat, consume, ready=ready, pass_every=self.pass_every)
        # The walk's zero flag matters only while busy: it loads whenever the walker could
        # take a beat, whether it does or not, so that it waits on no ``consume``.
        with m.If(walker_free):
            m.d.sync += [walk_zero.eq(first.bit_select(parity, 1) if sets > 1 else first),
                         walk_shift.eq(beat_shift(beat))]
        with m.If(walk_start):
            m.d.sync += busy.eq(1)
        with m.If(pass_start):
            m.d.sync += [due.eq(1), due_first.eq(first_step), parity.eq(~parity)]
        with m.Elif(go):
            m.d.sync += due.eq(0)
        # The set passed is the one the beats just left (parity flipped when the pass fell due).
        done = ~parity if sets > 1 else Const(0, 1)
        m.d.comb += [p_parity_now.eq(~parity),
                     p_zero_now.eq(first.bit_select(done, 1) if sets > 1 else first)]
        with m.If(go):
            m.d.sync += [p_parity.eq(p_parity_now), p_first_step.eq(due_first),
                         p_zero.eq(p_zero_now)]
        for e in range(sets):
            with m.If(go & (done == e)):
                m.d.sync += first[e].eq(1)
            with m.Elif(walk_start & ((parity == e) | (sets == 1))):
                m.d.sync += first[e].eq(0)

        # -- memories: the weights at stage 0, the accumulators (and, through ``issue``, the
        # memories of the update behind) at stage 1 (LEAD); a set serves the beats or the pass
        m.d.comb += [w_rd.addr.eq(waddr[:len(w_rd.addr)]),
                     self.issue.valid.eq(p_valid[1]), self.issue.g.eq(p1.g)]

        def of_set(stage, e):
            return (stage.parity == e) | (sets == 1)

        def word_of(stage):
            """The accumulator word read for the operation at ``stage`` (from its set)."""
            words = [rd.data for rd, _ in ports]
            return words[0] if sets == 1 else Mux(stage.parity, words[1], words[0])

        # The weight word registered twice (the block RAM's output register, then one in the
        # fabric: the block RAMs lie all over the chip), the accumulators once: stage 3 sees
        # both beside the operation. A stale word counts as zero (no clearing, no bias in front
        # of the adders): the register's synchronous reset, off the adders' path.
        # A beat with counts: each weight shifted on its way into the second register.
        WB = self.weights.lane_width
        w2 = Signal(len(w_rd.data), reset_less=True)
        w3 = Signal(A * shifted_width(WB, self.shifts), reset_less=True)
        acc3 = Signal(A * AW, reset_less=True)
        m.d.sync += [w2.eq(w_rd.data), acc3.eq(Mux(s2.zero, 0, word_of(s2))),
                     w3.eq(Cat(*[shifted(w, s2.shift, self.shifts) for w in lanes_of(w2, A, WB)]))]
        # A pass keeps its group's P lanes of the word alone.
        group3 = Signal(P * AW, reset_less=True)
        picked = word_of(p2) if k == 1 else word_of(p2).word_select(p2.sub, P * AW)
        m.d.sync += group3.eq(Mux(p2.zero, 0, picked))

        # -- stage 3: forward the writes in flight, then accumulate ---------------------------
        # A read at cycle c + 1 (stage 1 of an operation started at c) sees writes up to c;
        # the operations started at c - 2 and c - 1 write at c + 1 and c + 2, so stage 3 (at
        # c + 3) takes those from wl2 and wl1. Operations on one word are at least GA cycles
        # apart (every walk visits the words in order, one a cycle), so with three words or
        # more nothing is ever forwarded and the forwarding is left out: no wide multiplexers,
        # no select of high fan-out. Which write to forward is decided a cycle early, in
        # stage 2, from registers.
        lanes_layout = data.ArrayLayout(signed(AW), A)
        write_layout = data.StructLayout({"at": 1 + len(s2.a), "data": lanes_layout})
        wl1_valid, wl1 = Signal(), Signal(write_layout, reset_less=True)
        wl2_valid, wl2 = Signal(), Signal(write_layout, reset_less=True)
        lanes_v = lanes_of(acc3, A, AW)
        if GA < 3:
            def at(stage):
                return Cat(stage.a, stage.parity)
            fwd1, fwd2 = Signal(), Signal()
            m.d.sync += [fwd1.eq(w_valid[3] & (at(s3) == at(s2)) & ~s2.zero),
                         fwd2.eq(wl1_valid & (wl1.at == at(s2)) & ~s2.zero)]
            lanes_v = [Mux(fwd1, wl1.data[p], Mux(fwd2, wl2.data[p], lanes_v[p]))
                       for p in range(A)]
        acc_sum = Cat(*[(v + w)[:AW] for v, w in
                        zip(lanes_v, lanes_of(w3, A, shifted_width(WB, self.shifts)))])
        for e, (_, wr) in enumerate(ports):
            m.d.comb += [wr.addr.eq(s3.a), wr.data.eq(acc_sum),
                         wr.en.eq(w_valid[3] & of_set(s3, e))]
        m.d.sync += [wl1_valid.eq(w_valid[3]), wl1.at.eq(Cat(s3.a, s3.parity)),
                     wl1.data.eq(acc_sum), wl2_valid.eq(wl1_valid), wl2.eq(wl1)]
        for e, (rd, _) in enumerate(ports):
            m.d.comb += rd.addr.eq(Mux(p_valid[1] & of_set(p1, e), p1.a, s1.a))
        # The pass hands on its group plus the bias.
        hand_on(m, self, p_valid[3], p3, lanes_of(group3, P, AW), partial=p3.last)
        return m


def walker_end(m: Module, valid, last, counter, n: int, name: str) -> Signal:
    """Whether a walker's ``counter`` (0 .. n - 1, one step per ``valid`` cycle, back to 0
    after ``last``) is at n - 1: a register set from the counter's next value."""
    end = Signal(name=f"{name}_is_{n - 1}", init=n == 1)
    if n > 1:
        with m.If(valid):
            m.d.sync += end.eq(Mux(last, 0, counter == n - 2))
    return end


def stages(m: Module, valid, op, prefix: str, n: int = 3) -> tuple[list, list]:
    """Stages 1 to ``n`` behind an operation ``op`` (a layout signal, stage 0) and its
    ``valid``: lists of the valid bits and the operations, stage 0 first. Only the valid
    bits have a reset."""
    valids, ops = [valid], [op]
    for s in range(1, n + 1):
        valids.append(Signal(name=f"{prefix}{s}_valid"))
        ops.append(Signal(op.shape(), name=f"{prefix}{s}", reset_less=True))
        m.d.sync += [valids[s].eq(valids[s - 1]), ops[s].eq(ops[s - 1])]
    return valids, ops
