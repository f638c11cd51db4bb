"""Spike-driven accumulation: the input side shared by neuron arrays and readouts.

The accumulators sit in GA = ceil(N / A) words of A lanes (A, the accumulation lanes, is P
unless set: ``ArrayConfig.acc_lanes``). An input spike beat with index j walks the GA words,
one a cycle: it reads weight word ``a * M + j`` and accumulator word a and writes back their
lane-wise sums. Silent inputs cost nothing. The read-modify-write takes four cycles (the
weight word addressed, then the accumulator word; both registered, the weight word twice;
add and write); the two writes still in flight are forwarded to a read of the same word
(with GA >= 3 there never are any), so beats follow each other with no bubble whatever GA.
The first beat after a pass starts from zero instead of what the word holds, so the
accumulators never need clearing.

Every ``pass_every``-th ``eot`` beat (every one for a neuron array, every T-th for a readout)
starts a *pass*: one operation per group of P lanes (A / P to a word), one a cycle, that
reads the accumulators through the same forwarding path, adds the group's ``bias`` and hands
them to the datapath behind (``pass_``, two cycles after issue, with the group number on
``issue`` at issue time so that it can read its own memories in step). Beats of the next
timestep are taken as soon as the pass is issued. So a timestep of E counted beats takes
GA E + G cycles: A lanes need adders and memory width, P lanes the update's multipliers.

Beats with an index of M or more, and beats beyond the B-th counted one of a timestep (the beat
cap B, default M), are dropped and raise the sticky ``err``.
"""

from __future__ import annotations

import types

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..core.layout import MemorySpec
from .streams import ConfigSignature, event_signature

__all__ = ["SpikeAccumulator", "AccumulatorSignature", "pass_layout", "issue_signature",
           "lanes_of",
           "config_write_port", "config_widths", "read_in_step"]


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
    """

    def __init__(self, *, inputs: int, groups: int, lanes: int, acc_width: int,
                 base_width: int, cfg_widths: dict, channels: int = 1):
        super().__init__({
            "i": In(event_signature(inputs)),
            "cfg": In(ConfigSignature(**cfg_widths)),
            "err": Out(1),
            "issue": Out(issue_signature(groups, channels)),
            "pass_": Out(wiring.Signature({
                "valid": Out(1),
                "payload": Out(pass_layout(groups, base_width, lanes, acc_width))})),
            "bias": In(data.ArrayLayout(signed(acc_width), lanes)),
            "room": In(1),
        })


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


def count_beats(m: Module, acc, beat_v, beat, consume, *, ready, quiet_ok, pass_every: int):
    """Take the buffered beat when the walker is ``ready`` (and, for a pass, ``quiet_ok``);
    count it against the beat cap, drop it (sticky ``err``) or end the timestep. Returns the
    strobes ``(walk_start, pass_start)``, a counted spike beat or a pass starting this cycle,
    ``first_step``, whether the timestep now ending is a sample's first, and ``pass_due``,
    whether the buffered beat starts a pass once taken (from registers only)."""
    M, T = acc.inputs, acc.T
    count = acc.probes["count"]
    t = Signal(range(T))
    steps = Signal(range(pass_every))   # timesteps since the last pass
    err = Signal()
    m.d.comb += acc.err.eq(err)
    pass_due = beat.eot & (steps == pass_every - 1)
    counted = (beat.index < M) & (count != acc.beat_cap)
    m.d.comb += consume.eq(beat_v & ready & (~pass_due | quiet_ok))
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
            m.d.sync += count.eq(count + 1)
        with m.Else():
            m.d.sync += err.eq(1)
    return walk_start, pass_start, t == 0, pass_due


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


def pass_spacing(m: Module, pass_gap: int, pass_issued) -> Signal:
    """Whether a new pass may start: the datapath behind reads back what a pass writes, so a
    pass's first operation must come at least ``pass_gap`` cycles after the last one's."""
    quiet_ok = Signal()
    if pass_gap > 0:
        quiet = Signal(range(pass_gap + 2), init=pass_gap + 1)
        with m.If(pass_issued):
            m.d.sync += quiet.eq(1)
        with m.Elif(quiet <= pass_gap):
            m.d.sync += quiet.eq(quiet + 1)
        m.d.comb += quiet_ok.eq(~pass_issued & (quiet >= pass_gap))
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
    #: The next timestep's beats wait for the pass (one set of accumulators).
    overlap = False
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

    def __init__(self, *, inputs: int, T: int, weights: MemorySpec, acc_width: int,
                 base_width: int, pass_every: int, pass_gap: int, cfg_widths: dict,
                 weight_image: list | None = None, beat_cap: int | None = None,
                 weight_ram: str = "block", lanes: int | None = None,
                 groups: int | None = None):
        self.inputs, self.T, self.weights = inputs, T, weights
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
        super().__init__(AccumulatorSignature(
            inputs=inputs, groups=self.groups, lanes=self.lanes, acc_width=acc_width,
            base_width=base_width, cfg_widths=cfg_widths))
        self.probes = input_probes(self)

    def elaborate(self, platform):
        m = Module()
        M, P, G = self.inputs, self.lanes, self.groups
        A, GA = self.acc_lanes, self.acc_groups
        k = A // P                   # groups a word holds
        AW = self.acc_width

        w_rd = weight_memory(m, self)
        acc_mem = m.submodules.acc_mem = Memory(shape=unsigned(A * AW), depth=GA, init=[])
        acc_rd, acc_wr = acc_mem.read_port(), acc_mem.write_port()

        beat_v, beat, consume = input_buffer(m, self)

        # -- the walker: one accumulate or pass operation a cycle, from registers ------------
        # A beat walks the GA words, a pass the G groups (k to a word).
        busy = Signal()              # walking the words of a beat or the groups of a pass
        in_pass = Signal()           # ... of a pass
        g = Signal(range(G))         # word (beat) or group (pass) of this cycle's operation
        waddr = Signal(range(GA * M + M))   # a beat's weight address, g * M + j
        base = Signal(self.base_width)   # a pass's g * P
        walk_zero = Signal()         # no beat counted since the last pass before this walk
        walk_first_step = Signal()
        first = Signal(init=1)       # no beat counted since the last pass

        # Registered: room behind for every operation in flight, the stale cycle and one more.
        credit = Signal()
        m.d.sync += credit.eq(self.room)
        # An operation: its valid bit, and the rest (a layout) carried beside it. ``a`` is
        # the accumulation word it reads, ``sub`` (a pass's) the group's place in it; ``zero``:
        # what the word holds is stale (a beat starts from 0, a pass hands on the bias alone).
        op_layout = data.StructLayout({
            "pass": 1, "g": range(G), "a": range(GA), "sub": range(k), "zero": 1,
            "first_step": 1, "last": 1, "base": len(base)})
        op_valid, op = Signal(), Signal(op_layout)
        # Whether g is a walk's last word (GA) or group (G): registers set from g's next value,
        # so that the end of a walk, and the take of the next beat behind it, start from
        # flip-flops rather than from a compare on g.
        ends = {}
        for n in sorted({G, GA}):
            ends[n] = Signal(name=f"g_is_{n - 1}", init=n == 1)
            if n > 1:
                with m.If(op_valid):
                    m.d.sync += ends[n].eq(Mux(op.last, 0, g == n - 2))
        last_g = ends[G] if G == GA else Mux(in_pass, ends[G], ends[GA])
        m.d.comb += [op_valid.eq(busy & (~in_pass | credit)), op["pass"].eq(in_pass),
                     op.g.eq(g), op.zero.eq(walk_zero), op.first_step.eq(walk_first_step),
                     op.last.eq(last_g), op.base.eq(base)]
        if k == 1:
            m.d.comb += op.a.eq(g)
        else:
            a, sub = Signal(range(GA)), Signal(range(k))
            m.d.comb += [op.a.eq(a), op.sub.eq(sub)]
            with m.If(op_valid):
                with m.If(op.last):
                    m.d.sync += [a.eq(0), sub.eq(0)]
                with m.Elif(~in_pass | (sub == k - 1)):
                    m.d.sync += [a.eq(a + 1), sub.eq(0)]
                with m.Else():
                    m.d.sync += sub.eq(sub + 1)
        # Stages 1 to 3. Only the valid bits of the pipeline need a reset.
        valid, stage = [op_valid], [op]
        for n in (1, 2, 3):
            valid.append(Signal(name=f"s{n}_valid"))
            stage.append(Signal(op_layout, name=f"s{n}", reset_less=True))
            m.d.sync += [valid[n].eq(valid[n - 1]), stage[n].eq(stage[n - 1])]
        s1, s2, s3 = stage[1:]

        at_last = op_valid & op.last
        # g and base return to 0 at the end of every walk, so a new walk needs no load of
        # them; waddr takes the buffered beat's index whenever it is not stepping (it matters
        # only once that beat is consumed). Only the few walk flags depend on ``consume``.
        with m.If(op_valid):
            m.d.sync += [g.eq(Mux(op.last, 0, g + 1)), base.eq(Mux(op.last, 0, base + P))]
        with m.If(op_valid & ~op.last):
            m.d.sync += waddr.eq(waddr + M)
        with m.Else():
            m.d.sync += waddr.eq(beat.index)
        with m.If(at_last):
            m.d.sync += busy.eq(0)
        quiet_ok = pass_spacing(m, self.pass_gap, op_valid & op["pass"])
        ready = ~busy | at_last
        walk_start, pass_start, first_step, pass_due = count_beats(
            m, self, beat_v, beat, consume, ready=ready, quiet_ok=quiet_ok,
            pass_every=self.pass_every)
        # The walk's flags matter only while busy: they load whenever the walker could take
        # a beat, whether it does or not, so that they wait on no ``consume``.
        with m.If(ready):
            m.d.sync += [in_pass.eq(pass_due), walk_zero.eq(first),
                         walk_first_step.eq(first_step)]
        with m.If(pass_start):
            m.d.sync += [busy.eq(1), first.eq(1)]
        with m.If(walk_start):
            m.d.sync += [busy.eq(1), first.eq(0)]

        # The weight memory is read at stage 0, the accumulators (and, through ``issue``, the
        # memories of the update behind) at stage 1 (LEAD).
        m.d.comb += [w_rd.addr.eq(waddr[:len(w_rd.addr)]), acc_rd.addr.eq(s1.a),
                     self.issue.valid.eq(valid[1] & s1["pass"]), self.issue.g.eq(s1.g)]
        # The weight word registered twice (the block RAM's output register, then one in the
        # fabric: the block RAMs lie all over the chip), the accumulators once: stage 3 sees
        # both beside the operation.
        w2 = Signal(len(w_rd.data), reset_less=True)
        w3 = Signal(len(w_rd.data), reset_less=True)
        acc3 = Signal(len(acc_rd.data), reset_less=True)
        # A stale word counts as zero (no clearing, no bias in front of the adders): the
        # register's synchronous reset, off the adders' path.
        m.d.sync += [w2.eq(w_rd.data), w3.eq(w2), acc3.eq(Mux(s2.zero, 0, acc_rd.data))]

        # -- stage 3: forward the writes in flight, then accumulate or hand on ---------------
        # A read at cycle c + 1 (stage 1 of an operation started at c) sees writes up to c;
        # the operations started at c - 2 and c - 1 write at c + 1 and c + 2, so stage 3 (at
        # c + 3) takes those from wl2 and wl1.
        lanes_layout = data.ArrayLayout(signed(AW), A)
        write_layout = data.StructLayout({"a": range(GA), "data": lanes_layout})
        wl1_valid, wl1 = Signal(), Signal(write_layout, reset_less=True)
        wl2_valid, wl2 = Signal(), Signal(write_layout, reset_less=True)
        # Which write to forward is decided a cycle early, in stage 2, from registers: the
        # operation now in stage 3 writes next cycle's wl1, the write now in wl1 becomes wl2.
        # Operations on one word are at least GA cycles apart (every walk visits the words
        # in order, one a cycle, and a pass reads word a no sooner than the beat walk before
        # it wrote it), so with three words or more nothing is ever forwarded and the
        # forwarding is left out: no wide multiplexers, no select of high fan-out.
        lanes_v = lanes_of(acc3, A, AW)
        if GA < 3:
            fwd1, fwd2 = Signal(), Signal()
            m.d.sync += [fwd1.eq(valid[3] & ~s3["pass"] & (s3.a == s2.a) & ~s2.zero),
                         fwd2.eq(wl1_valid & (wl1.a == s2.a) & ~s2.zero)]
            lanes_v = [Mux(fwd1, wl1.data[p], Mux(fwd2, wl2.data[p], lanes_v[p]))
                       for p in range(A)]
        acc_sum = Cat(*[(a + w)[:AW] for a, w in
                        zip(lanes_v, lanes_of(w3, A, self.weights.lane_width))])
        do_acc = valid[3] & ~s3["pass"]
        m.d.comb += [acc_wr.addr.eq(s3.a), acc_wr.data.eq(acc_sum), acc_wr.en.eq(do_acc)]
        m.d.sync += [wl1_valid.eq(do_acc), wl1.a.eq(s3.a), wl1.data.eq(acc_sum),
                     wl2_valid.eq(wl1_valid), wl2.eq(wl1)]
        # A pass hands on its group's P lanes of the word, plus the bias.
        if k == 1:
            group = lanes_v
        else:
            group = Cat(*lanes_v).word_select(s3.sub, P * AW)
            group = lanes_of(group, P, AW)
        hand_on(m, self, valid[3] & s3["pass"], s3, group, partial=s3.last)   # last alone
        return m
