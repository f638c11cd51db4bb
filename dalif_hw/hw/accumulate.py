"""Spike-driven accumulation: the input side shared by neuron arrays and readouts.

An input spike beat with index j walks the G groups of P lanes, one a cycle: it reads weight
word ``g * M + j`` and the group's accumulators and writes back their lane-wise sums. Silent
inputs cost nothing. The read-modify-write takes three cycles (issue; memory output, then
registered; add and write); the two writes still in flight are forwarded to a read of the
same group, so beats follow each other with no bubble whatever G. The first beat after a pass
starts from zero, so the accumulators never need clearing.

Every ``pass_every``-th ``eot`` beat (every one for a neuron array, every T-th for a readout)
starts a *pass*: one operation per group, one a cycle, that reads the accumulators through
the same forwarding path and hands them to the datapath behind (``pass_``, two cycles after
issue, with the group number on ``issue`` at issue time so that it can read its own
memories in step). Beats of the next timestep are taken as soon as the pass is issued.

Beats with an index of M or more, and beats beyond the M-th counted one of a timestep, are
dropped and raise the sticky ``err``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..layout import MemorySpec
from .streams import ConfigSignature, event_signature

__all__ = ["SpikeAccumulator", "lanes_of", "config_write_port"]


def lanes_of(word, lanes: int, width: int, signed: bool = True) -> list:
    """Split a memory word into its ``lanes`` lanes of ``width`` bits."""
    parts = [word[p * width:(p + 1) * width] for p in range(lanes)]
    return [part.as_signed() if signed else part for part in parts]


def config_write_port(m: Module, memory: Memory, spec: MemorySpec, cfg) -> None:
    """Connect a write port of ``memory`` to the configuration port (one lane per write)."""
    wp = memory.write_port(granularity=spec.lane_width)
    hit = (cfg.en & (cfg.sel == spec.select) & (cfg.addr < spec.depth) &
           (cfg.lane < spec.lanes))
    m.d.comb += [
        wp.addr.eq(cfg.addr),
        wp.data.eq(Cat(*[cfg.data[:spec.lane_width]] * spec.lanes)),
        wp.en.eq(Mux(hit, Const(1, spec.lanes) << cfg.lane, 0)),
    ]


class SpikeAccumulator(wiring.Component):
    """Input stream, weight memory, accumulators and pass issue (see the module docstring).

    Parameters
    ----------
    inputs : int
        M.
    T : int
        Timesteps per sample.
    weights : MemorySpec
        The weight memory (depth G * M, P lanes of WB bits).
    acc_width : int
        Signed bits of one accumulator lane.
    base_width : int
        Bits of ``pass_.base`` (the index of lane 0 of the group, g * P).
    pass_every : int
        1: a pass after every timestep (accumulators restart each timestep); T: after every
        sample (they sum over the sample).
    cfg_widths : dict
        Widths of the configuration port (shared with the rest of the array).

    Attributes
    ----------
    issue : Out
        ``valid``, ``g``: a pass operation issued this cycle (for the memories behind).
    pass_ : Out
        Two cycles later: ``valid``, ``g``, ``empty`` (no counted beat since the last pass),
        ``first_step`` (issued by the first timestep of a sample), ``last`` (last group),
        ``base`` (g * P), ``acc`` (the group's accumulators, P lanes).
    hold : In(1)
        The datapath behind cannot start a new pass yet.
    credit : In(1)
        The datapath behind can take one more pass operation this cycle.
    """

    #: Cycles from issue to ``pass_``.
    LATENCY = 2

    def __init__(self, *, inputs: int, T: int, weights: MemorySpec, acc_width: int,
                 base_width: int, pass_every: int, cfg_widths: dict):
        self.inputs, self.T, self.weights = inputs, T, weights
        self.lanes, self.groups = weights.lanes, weights.depth // inputs
        self.acc_width, self.pass_every = acc_width, pass_every
        G = self.groups
        super().__init__({
            "i": In(event_signature(inputs)),
            "cfg": In(ConfigSignature(**cfg_widths)),
            "err": Out(1),
            "issue": Out(wiring.Signature({"valid": Out(1), "g": Out(range(G))})),
            "pass_": Out(wiring.Signature({
                "valid": Out(1), "g": Out(range(G)), "empty": Out(1), "first_step": Out(1),
                "last": Out(1), "base": Out(base_width),
                "acc": Out(self.lanes * acc_width)})),
            "hold": In(1),
            "credit": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        M, T, P, G = self.inputs, self.T, self.lanes, self.groups
        AW = self.acc_width

        weight_mem = m.submodules.weights_mem = Memory(
            shape=unsigned(self.weights.width), depth=self.weights.depth,
            init=self.weights.words)
        config_write_port(m, weight_mem, self.weights, self.cfg)
        w_rd = weight_mem.read_port()
        acc_mem = m.submodules.acc_mem = Memory(shape=unsigned(P * AW), depth=G, init=[])
        acc_rd, acc_wr = acc_mem.read_port(), acc_mem.write_port()

        # -- issue: one accumulate or pass operation a cycle ---------------------------------
        busy = Signal()              # walking the groups of a beat or a pass
        in_pass = Signal()           # ... of a pass
        g = Signal(range(G))         # group of the next operation while busy
        j_reg = Signal(range(M))
        wbase = Signal(range(G * M + 1))   # g * M of the next operation while busy
        base = Signal(len(self.pass_.base))
        first = Signal(init=1)       # no beat counted since the last pass
        first_reg = Signal()         # the beat being walked was the first
        empty_reg, first_step_reg = Signal(), Signal()
        count = Signal(range(M + 1))
        t = Signal(range(T))
        steps = Signal(range(self.pass_every))   # timesteps since the last pass
        err = Signal()
        m.d.comb += self.err.eq(err)

        op = {"valid": Signal(), "pass": Signal(), "g": Signal(range(G)), "first": Signal(),
              "empty": Signal(), "first_step": Signal(), "last": Signal(),
              "base": Signal(len(base))}
        waddr = Signal(range(G * M))
        s1 = {k: Signal.like(v, name=f"s1_{k}") for k, v in op.items()}
        s2 = {k: Signal.like(v, name=f"s2_{k}") for k, v in op.items()}
        m.d.sync += [s1[k].eq(op[k]) for k in op] + [s2[k].eq(s1[k]) for k in op]

        # A pass starts once the datapath behind is done with the last one (it may read back
        # what that one wrote) and has room.
        may_pass = ~self.hold & ~(s1["valid"] & s1["pass"]) & ~(s2["valid"] & s2["pass"]) & \
            self.credit
        index, eot = self.i.payload.index, self.i.payload.eot
        last_step = steps == self.pass_every - 1
        with m.If(~busy):
            m.d.comb += self.i.ready.eq(Mux(eot & last_step, may_pass, 1))
            with m.If(self.i.valid & self.i.ready):
                with m.If(eot):
                    m.d.sync += [count.eq(0), t.eq(Mux(t == T - 1, 0, t + 1))]
                    with m.If(last_step):
                        m.d.comb += [op["valid"].eq(1), op["pass"].eq(1), op["g"].eq(0),
                                     op["empty"].eq(first), op["first_step"].eq(t == 0),
                                     op["last"].eq(G == 1), op["base"].eq(0)]
                        m.d.sync += [first.eq(1), empty_reg.eq(first),
                                     first_step_reg.eq(t == 0), steps.eq(0)]
                        if G > 1:
                            m.d.sync += [busy.eq(1), in_pass.eq(1), g.eq(1), base.eq(P)]
                    with m.Else():
                        m.d.sync += steps.eq(steps + 1)
                with m.Elif((index < M) & (count != M)):
                    m.d.comb += [op["valid"].eq(1), op["g"].eq(0), op["first"].eq(first),
                                 waddr.eq(index)]
                    m.d.sync += [count.eq(count + 1), first.eq(0), first_reg.eq(first),
                                 j_reg.eq(index)]
                    if G > 1:
                        m.d.sync += [busy.eq(1), in_pass.eq(0), g.eq(1), wbase.eq(M)]
                with m.Else():
                    m.d.sync += err.eq(1)
        with m.Elif(in_pass):
            with m.If(self.credit):
                m.d.comb += [op["valid"].eq(1), op["pass"].eq(1), op["g"].eq(g),
                             op["empty"].eq(empty_reg), op["first_step"].eq(first_step_reg),
                             op["last"].eq(g == G - 1), op["base"].eq(base)]
                m.d.sync += [g.eq(g + 1), base.eq(base + P)]
                with m.If(g == G - 1):
                    m.d.sync += busy.eq(0)
        with m.Else():
            m.d.comb += [op["valid"].eq(1), op["g"].eq(g), op["first"].eq(first_reg),
                         waddr.eq(wbase + j_reg)]
            m.d.sync += [g.eq(g + 1), wbase.eq(wbase + M)]
            with m.If(g == G - 1):
                m.d.sync += busy.eq(0)

        m.d.comb += [w_rd.addr.eq(waddr), acc_rd.addr.eq(op["g"]),
                     self.issue.valid.eq(op["valid"] & op["pass"]), self.issue.g.eq(op["g"])]
        # Memory outputs registered: stage 2 sees them beside the operation.
        w2, acc2 = Signal(len(w_rd.data)), Signal(len(acc_rd.data))
        m.d.sync += [w2.eq(w_rd.data), acc2.eq(acc_rd.data)]

        # -- stage 2: forward the writes in flight, then accumulate or hand on ---------------
        # A read issued at cycle c sees writes up to c - 1; the operations issued at c - 2 and
        # c - 1 write at c and c + 1, so stage 2 (at c + 2) takes those from wl2 and wl1.
        wl1 = {"valid": Signal(), "g": Signal(range(G)), "data": Signal(P * AW)}
        wl2 = {"valid": Signal(), "g": Signal(range(G)), "data": Signal(P * AW)}
        acc_v = Signal(P * AW)
        with m.If(wl1["valid"] & (wl1["g"] == s2["g"])):
            m.d.comb += acc_v.eq(wl1["data"])
        with m.Elif(wl2["valid"] & (wl2["g"] == s2["g"])):
            m.d.comb += acc_v.eq(wl2["data"])
        with m.Else():
            m.d.comb += acc_v.eq(acc2)
        acc_sum = Cat(*[(Mux(s2["first"], 0, a) + w)[:AW] for a, w in
                        zip(lanes_of(acc_v, P, AW), lanes_of(w2, P, self.weights.lane_width))])
        do_acc = s2["valid"] & ~s2["pass"]
        m.d.comb += [acc_wr.addr.eq(s2["g"]), acc_wr.data.eq(acc_sum), acc_wr.en.eq(do_acc)]
        m.d.sync += [wl1["valid"].eq(do_acc), wl1["g"].eq(s2["g"]), wl1["data"].eq(acc_sum),
                     wl2["valid"].eq(wl1["valid"]), wl2["g"].eq(wl1["g"]),
                     wl2["data"].eq(wl1["data"])]
        m.d.comb += [self.pass_.valid.eq(s2["valid"] & s2["pass"]), self.pass_.g.eq(s2["g"]),
                     self.pass_.empty.eq(s2["empty"]),
                     self.pass_.first_step.eq(s2["first_step"]),
                     self.pass_.last.eq(s2["last"]), self.pass_.base.eq(s2["base"]),
                     self.pass_.acc.eq(acc_v)]
        return m
