"""The DA-LIF neuron update: the neurons' memories and the pipeline that runs them.

One pass operation a cycle, group by group, from an accumulator (:mod:`.accumulate`):

    I = acc (the bias alone after a timestep without counted beats)
    V = sat(rnd(beta * H) + rnd(alpha * I))      H = 0 in a sample's first timestep
    S = V >= theta                                H' = reset(V, S), written back

and the group's spike mask, with its count, handed on (to :mod:`.serialize`). The stages are
:data:`STAGES`; the latencies follow from the list (docs/hardware.md has it as a table). The
update owns the per-neuron memories (alpha, beta, threshold and bias, rewritable through
the configuration port, and the membranes H), addressed with the accumulator's ``issue.g``
and read in step with its ``pass_``. A layer kind with another accumulator (a convolution's
kernel window) uses this component as it is.
"""

from __future__ import annotations

import dataclasses

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..core.config import ArrayConfig, signed_range
from ..core.layout import MemorySpec, Select
from .accumulate import config_write_port, issue_signature, lanes_of, pass_layout, read_in_step
from .arith import sat, sat_flags
from .streams import ConfigSignature

__all__ = ["NeuronUpdate", "Stage", "STAGES", "stage", "UPDATE_LATENCY", "PUSH_LATENCY",
           "MULTIPLIERS", "spike_entry_layout"]

#: How the decay products are built (see NeuronUpdate).
MULTIPLIERS = ("logic", "dsp")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One pipeline stage: the cycle after issue at which its registers hold their values is
    its position in :data:`STAGES`."""

    name: str
    computes: str
    registers: str


#: The pipeline of a pass operation, from its issue (cycle 0) to its spike mask's push.
STAGES = (
    Stage("issue", "the accumulator issues a pass operation for group g; every neuron memory "
          "is addressed with g", "(accumulator)"),
    Stage("read", "the memories' outputs; the bias is the accumulator's start value",
          "(block RAM output registers)"),
    Stage("load", "the group's accumulators (with forwarding), alpha, beta, threshold, bias "
          "and H, registered", "`s2_*`"),
    Stage("current", "I = acc, or the bias after a timestep without counted beats; beta * H "
          "as shifted copies summed in pairs", "`s3_current`, `s3_alpha`, `s3_pb*`, `s3_theta`"),
    Stage("multiply", "alpha and I in the DSP block's input registers; beta * H in threes, "
          "0 in a sample's first timestep", "`s4_current`, `s4_alpha`, `s4_pb*`"),
    Stage("products", "alpha * I (DSP) and beta * H, each with its rounding half",
          "`s5_pa`, `s5_rb`, `s5_theta`"),
    Stage("sum", "X = rnd(beta H) + rnd(alpha I) unsaturated; hi - theta, lo - theta, "
          "theta == lo", "`s6_x`, `s6_theta*`, `s6_*_minus_theta`"),
    Stage("fire", "V = sat(X); S = V >= theta (from X and the saturation flags); "
          "H' = reset(V, S), written back at this stage", "`s7_mask`, `s7_h`"),
    Stage("count", "the spike mask's count, in parts of four lanes", "`s8_count*`, `s8_mask`"),
    Stage("push", "mask, base, last and count into the spike FIFO (a group without spikes "
          "only when it ends the timestep)", "`s9_entry`, `fifo_push`"),
)


def stage(name: str) -> int:
    """The cycle after issue at which stage ``name``'s registers hold their values."""
    return [s.name for s in STAGES].index(name)


#: Cycles from issuing an update to writing its membrane back.
UPDATE_LATENCY = stage("fire")
#: ... and to pushing its spike mask into the FIFO.
PUSH_LATENCY = stage("push")


def spike_entry_layout(lanes: int, index_bits: int) -> data.StructLayout:
    """A group's spikes on their way out: ``mask`` (one bit a lane), ``base`` (index of lane
    0), ``last`` (the group ends the timestep), ``count`` (spikes in the mask)."""
    return data.StructLayout({"mask": lanes, "base": index_bits, "last": 1,
                              "count": range(lanes + 1)})


class NeuronUpdate(wiring.Component):
    """Decays, rounding, saturation, threshold, reset and write-back for P lanes a cycle.

    Parameters
    ----------
    config : ArrayConfig
        Sizes, widths, reset, lanes, threshold mode and bias.
    params : IntParams
        Initial parameters (the threshold register's, when the threshold is per layer).
    specs : list of MemorySpec
        The per-neuron memories (alpha, beta, and threshold and bias where per neuron).
    cfg_widths : dict
        Widths of the configuration port (shared with the accumulator).
    multipliers : str
        ``"dsp"``: ``alpha * I`` in a DSP block per lane, ``beta * H`` as pipelined
        shift-and-add; ``"logic"``: both as shift-and-add, no DSP blocks.

    Attributes
    ----------
    issue : In
        The accumulator's ``issue`` (``valid``, ``g``).
    pass_ : In
        The accumulator's ``pass_`` (:func:`~dalif_hw.hw.accumulate.pass_layout`).
    start : Out
        The group's bias, one cycle after issue, for the accumulator to start from (zero
        without bias).
    cfg : In(ConfigSignature)
    push : Out
        ``valid`` and a :func:`spike_entry_layout` payload, :data:`PUSH_LATENCY` cycles
        after issue.
    probes : dict
        Not ports, for tests: the membrane write-back's ``en``, ``addr`` (group) and
        ``data`` (P lanes of H').
    """

    def __init__(self, config: ArrayConfig, params, specs: list[MemorySpec],
                 cfg_widths: dict, multipliers: str = "dsp", *, groups: int | None = None,
                 tail: int | None = None, channels: int = 1):
        if multipliers not in MULTIPLIERS:
            raise ValueError(f"multipliers must be one of {', '.join(MULTIPLIERS)}, "
                             f"not {multipliers!r}")
        self.config, self.params, self.specs = config, params, specs
        self.multipliers = multipliers
        c = config
        # A dense array's groups; a convolution's differ (K HO ceil(WO/P)).
        self.groups = c.groups if groups is None else groups
        self.tail = c.neurons - (c.groups - 1) * c.lanes if tail is None else tail
        self.channels = channels
        self.probes = {"en": Signal(name="h_write_en"),
                       "addr": Signal(range(self.groups), name="h_write_addr"),
                       "data": Signal(data.ArrayLayout(signed(c.VB), c.lanes),
                                      name="h_write_data")}
        super().__init__({
            "issue": In(issue_signature(self.groups, channels)),
            "pass_": In(wiring.Signature({
                "valid": Out(1),
                "payload": Out(pass_layout(self.groups, c.out_index_width, c.lanes,
                                           c.current_width))})),
            "start": Out(data.ArrayLayout(signed(c.current_width), c.lanes)),
            "cfg": In(ConfigSignature(**cfg_widths)),
            "push": Out(wiring.Signature({
                "valid": Out(1),
                "payload": Out(spike_entry_layout(c.lanes, c.out_index_width))})),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        P, G = c.lanes, self.groups
        CW, VB, DB, AB = c.current_width, c.VB, c.DB, c.decay_width
        cfg, issue = self.cfg, self.issue
        op_valid, op = self.pass_.valid, self.pass_.payload
        K = {s.name: k for k, s in enumerate(STAGES)}

        # -- the per-neuron memories, read in step with the pass ------------------------------
        # A memory per group holds P lanes; one per channel (a convolution's per-channel
        # parameters) one value, for all P lanes.
        words = {}
        for spec in self.specs:
            mem = m.submodules[f"{spec.name}_mem"] = Memory(
                shape=unsigned(spec.width), depth=spec.depth, init=spec.words)
            config_write_port(m, mem, spec, cfg)
            addr = issue.channel if spec.address == "channel" else issue.g
            if spec.name == "bias":
                bias_early, bias = read_in_step(m, mem, addr, "bias", early=True)
                if spec.lanes == 1:
                    bias_early, bias = Cat(*[bias_early] * P), Cat(*[bias] * P)
                words["bias"] = bias
                m.d.comb += [self.start[p].eq(b)
                             for p, b in enumerate(lanes_of(bias_early, P, VB))]
            else:
                word = read_in_step(m, mem, addr, spec.name)
                words[spec.name] = Cat(*[word] * P) if spec.lanes == 1 else word
        theta_reg = None
        if not c.per_neuron_threshold:
            # Parameters survive reset (only state is cleared).
            theta_reg = Signal(signed(VB), init=int(self.params.threshold), reset_less=True)
            with m.If(cfg.en & (cfg.sel == Select.threshold) & (cfg.addr == 0) &
                      (cfg.lane == 0)):
                m.d.sync += theta_reg.eq(cfg.data[:VB].as_signed())
        h_mem = m.submodules.h_mem = Memory(shape=unsigned(P * VB), depth=G, init=[])
        h_wr = h_mem.write_port()
        words["h"] = read_in_step(m, h_mem, issue.g, "h")

        # -- the operation, carried beside its data (valid bits alone have a reset) ------------
        ctrl_layout = data.StructLayout({"g": range(G), "last": 1, "partial": 1,
                                         "base": len(op.base), "first_step": 1})
        valid, ctrl = {K["load"]: op_valid}, {}
        for k in range(K["current"], K["fire"] + 1):
            valid[k] = Signal(name=f"s{k}_valid")
            ctrl[k] = Signal(ctrl_layout, name=f"s{k}_op", reset_less=True)
            m.d.sync += valid[k].eq(valid[k - 1])
            if k == K["current"]:
                m.d.sync += [ctrl[k].g.eq(op.g), ctrl[k].last.eq(op.last),
                             ctrl[k].partial.eq(op.partial),
                             ctrl[k].base.eq(op.base), ctrl[k].first_step.eq(op.first_step)]
            else:
                m.d.sync += ctrl[k].eq(ctrl[k - 1])

        def lanes(name, k, shape):
            """Registers of stage ``k``, one lane each: an array layout."""
            return Signal(data.ArrayLayout(shape, P), name=f"s{k}_{name}", reset_less=True)

        def delay(values, name, shape, stages):
            """Carry ``values`` (one per lane) through the registers of ``stages``."""
            for k in stages:
                regs = lanes(name, k, shape)
                m.d.sync += [regs[p].eq(values[p]) for p in range(P)]
                values = regs
            return values

        # -- current: I and the parameters ----------------------------------------------------
        # The accumulators start from the bias (so no adder stands in front of the DSP
        # block): I is the accumulator, or the bias alone after a timestep without beats.
        biases = lanes_of(words["bias"], P, VB) if c.bias else [0] * P
        cur3 = lanes("current", K["current"], signed(CW))
        m.d.sync += [cur3[p].eq(Mux(op.empty, biases[p], op.acc[p])) for p in range(P)]
        a3 = delay(lanes_of(words["alpha"], P, AB, signed=False), "alpha", unsigned(AB),
                   [K["current"]])
        thetas = (lanes_of(words["threshold"], P, VB) if c.per_neuron_threshold
                  else [theta_reg] * P)
        theta5 = delay(thetas, "theta", signed(VB), range(K["current"], K["products"] + 1))
        theta6 = delay(theta5, "theta", signed(VB), [K["sum"]])

        # -- current .. products: the decay products -------------------------------------------
        # A decay times a value as the sum of the value's shifted copies where the decay has
        # a 1, added in registered levels. The rounding's half rides in the copy of the top
        # bit of the decay (shifted by DB, so its low DB bits are free), so that the total
        # need only be shifted. beta * H always so: two multipliers a lane would need 32 DSP
        # blocks for 16 lanes, the ECP5-25F has 28. alpha * I goes to a DSP block
        # (multipliers="dsp"), or the same way (multipliers="logic", no DSP blocks, more LUTs:
        # on the ECP5-25F the default array then routes slower).
        half = 1 << (DB - 1)

        def rounded_products(decay, x, name, width, first, groupings, zero=None):
            """``rnd(decay * x, DB)`` per lane. Level ``k`` of registers (stage ``first + k``)
            sums the previous level's terms in groups of ``groupings[k]``; the last sum is
            left to the caller. ``zero`` (a flag one stage before the last level) clears
            that level: the product of a zero."""
            shape = signed(width + AB + 1)
            results = []
            for p in range(P):
                terms = []
                for k in range(AB):
                    copy = Mux(decay[p][k], x[p], 0)
                    terms.append(Cat(Const(half, DB), copy).as_signed() if k == DB
                                 else copy << k)
                if AB <= DB:
                    terms.append(Const(half))
                for level, size in enumerate(groupings):
                    count = len(range(0, len(terms), size))
                    sums = Signal(data.ArrayLayout(shape, count),
                                  name=f"s{first + level}_{name}{p}", reset_less=True)
                    m.d.sync += [sums[j].eq(sum(terms[j * size:(j + 1) * size], start=0))
                                 for j in range(count)]
                    if zero is not None and level == len(groupings) - 1:
                        with m.If(zero):
                            m.d.sync += sums.eq(0)
                    terms = [sums[j] for j in range(count)]
                results.append(sum(terms, start=0) >> DB)
            return results

        # beta * H from the registered memory word: stages current, multiply (and the
        # caller's products), H counted as 0 in a sample's first timestep.
        rb = rounded_products(lanes_of(words["beta"], P, AB, signed=False),
                              lanes_of(words["h"], P, VB), "pb", VB, K["current"], [2, 3],
                              zero=ctrl[K["current"]].first_step)
        rb5 = lanes("rb", K["products"], signed(VB + 2))
        m.d.sync += [rb5[p].eq(rb[p]) for p in range(P)]
        if self.multipliers == "dsp":
            # alpha * I in a DSP block with registers on both sides (stages multiply and
            # products): on ECP5 they become the block's own (python -m dalif_hw.synth,
            # dalif_hw/flow/hardregs.py). Its rounding, rnd(p) = (p >> DB) + bit DB-1 of p,
            # rides in the sum below.
            cur4 = delay(cur3, "current", signed(CW), [K["multiply"]])
            a4 = delay(a3, "alpha", unsigned(AB), [K["multiply"]])
            pa5 = lanes("pa", K["products"], signed(CW + AB + 1))
            m.d.sync += [pa5[p].eq(cur4[p] * a4[p]) for p in range(P)]
            ra5 = [pa5[p] >> DB for p in range(P)]
            carry5 = [pa5[p][DB - 1] for p in range(P)]
        else:
            ra5 = lanes("ra", K["products"], signed(CW + 2))
            m.d.sync += [ra5[p].eq(v) for p, v in
                         enumerate(rounded_products(a3, cur3, "pa", CW, K["multiply"], [3]))]
            carry5 = [0] * P

        # -- sum: X = rnd(beta H) + rnd(alpha I), not yet saturated -----------------------------
        lo, hi = signed_range(VB)
        x6 = lanes("x", K["sum"], signed(max(CW, VB) + 3))
        theta_lo6 = lanes("theta_lo", K["sum"], 1)
        m.d.sync += [x6[p].eq(ra5[p] + rb5[p] + carry5[p]) for p in range(P)]
        m.d.sync += [theta_lo6[p].eq(theta5[p] == lo) for p in range(P)]
        if c.reset == "soft":
            hi_minus6 = lanes("hi_minus_theta", K["sum"], signed(VB + 2))
            lo_minus6 = lanes("lo_minus_theta", K["sum"], signed(VB + 2))
            m.d.sync += [hi_minus6[p].eq(hi - theta5[p]) for p in range(P)]
            m.d.sync += [lo_minus6[p].eq(lo - theta5[p]) for p in range(P)]

        # -- fire: V = sat(X), fire and reset; written back from this stage's registers --------
        # V >= theta is decided on X and the saturation flags, in parallel with V itself:
        # above the range V = hi >= theta; below it V = lo >= theta only if theta = lo. A soft
        # reset's V - theta is likewise hi - theta, lo - theta or X - theta.
        kf = K["fire"]
        mask7 = Signal(P, name=f"s{kf}_mask", reset_less=True)
        h7 = Signal(data.ArrayLayout(VB, P), name=f"s{kf}_h", reset_less=True)
        fired, h_new = [], []
        for p in range(P):
            over, under = sat_flags(x6[p], VB)
            diff = x6[p] - theta6[p]
            spike = Signal(name=f"s{K['sum']}_spike{p}")
            m.d.comb += spike.eq(Mux(over, 1, Mux(under, theta_lo6[p], ~diff[-1])))
            v = sat(x6[p], VB)
            if c.reset == "hard":
                after = 0
            else:
                after = sat(Mux(over, hi_minus6[p], Mux(under, lo_minus6[p], diff)), VB)
            fired.append(spike)
            h_new.append(Mux(spike, after, v)[:VB])
        # Lanes that are no neurons (past neuron N-1 in the last group; a convolution's
        # columns past WO) never fire.
        real = Mux(ctrl[K["sum"]].partial, (1 << self.tail) - 1, (1 << P) - 1)
        m.d.sync += [mask7.eq(Cat(*fired) & real), h7.eq(Cat(*h_new))]
        m.d.comb += [h_wr.addr.eq(ctrl[kf].g), h_wr.data.eq(h7), h_wr.en.eq(valid[kf])]
        probes = self.probes
        m.d.comb += [probes["en"].eq(h_wr.en), probes["addr"].eq(h_wr.addr),
                     probes["data"].eq(h7)]

        # -- count: the mask's spike count in parts of four lanes (the lanes lie far apart on
        # the chip); push: the mask with its count (a group without spikes only when it ends
        # the timestep), all from registers.
        kc = K["count"]
        parts = [mask7[k:k + 4] for k in range(0, P, 4)]
        counts8 = [Signal(range(len(part) + 1), name=f"s{kc}_count{k}", reset_less=True)
                   for k, part in enumerate(parts)]
        layout = spike_entry_layout(P, len(op.base))
        entry8 = Signal(layout, name=f"s{kc}_entry", reset_less=True)
        valid8 = Signal(name=f"s{kc}_valid")
        m.d.sync += [entry8.mask.eq(mask7), entry8.base.eq(ctrl[kf].base),
                     entry8.last.eq(ctrl[kf].last), valid8.eq(valid[kf])]
        m.d.sync += [n.eq(sum(part, start=Const(0, len(n)))) for n, part in zip(counts8, parts)]
        count = sum(counts8, start=Const(0, len(entry8.count)))
        entry9, push = self.push.payload, self.push.valid
        entry9_reg = Signal(layout, name=f"s{K['push']}_entry", reset_less=True)
        push_reg = Signal(name=f"s{K['push']}_push")
        m.d.sync += [entry9_reg.mask.eq(entry8.mask), entry9_reg.base.eq(entry8.base),
                     entry9_reg.last.eq(entry8.last), entry9_reg.count.eq(count),
                     push_reg.eq(valid8 & (Cat(*counts8).any() | entry8.last))]
        m.d.comb += [entry9.eq(entry9_reg), push.eq(push_reg)]
        return m
