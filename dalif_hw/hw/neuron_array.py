"""The DA-LIF neuron array: spike-driven accumulation, pipelined update, event streams.

N neurons in G = ceil(N/P) groups of P lanes. The input side, :class:`SpikeAccumulator`,
adds the weights of every input spike into the current accumulators, group by group, and on
each ``eot`` issues the update pass, one group a cycle. This module adds the rest:

- the update pipeline: ``I = acc`` (the accumulators start from the bias; the bias alone if
  the timestep had no counted beat) and H
  (0 in a sample's first timestep, so every sample starts clean); the products
  ``alpha * I`` (a DSP block, or logic) and ``beta * H`` (pipelined shift-and-add);
  rounding and saturation; threshold and reset; the new H written back;
- a FIFO of the groups' spike masks and counts (empty ones skipped unless they end the
  timestep);
- the output stage, one beat per spike in ascending neuron order, then ``eot``, one a
  cycle, while the next timestep is already accumulating.

Pass issue at cycle c; memory data c+1, registered c+2 (I, H); c+3 I registered again, beta *
H summed in pairs; c+4 the DSP block's input registers, beta * H in threes (cleared in a
sample's first timestep); c+5 both products rounded; c+6 their sum, saturated (V), compared
and reset; c+7 H write; c+8 spike counts by four lanes; c+9 FIFO push.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..config import ArrayConfig, ConfigError, signed_range
from ..layout import SELECT, default_params, memories
from ..params import IntParams
from .accumulate import (SpikeAccumulator, config_widths, config_write_port, drive_start,
                         lanes_of, read_in_step)
from .arith import sat, sat_flags
from .streams import ConfigSignature, event_signature

__all__ = ["NeuronArray", "UPDATE_LATENCY", "PUSH_LATENCY"]

#: How the decay products are built (see NeuronArray).
MULTIPLIERS = ("logic", "dsp")

#: Cycles from issuing an update to writing its membrane back.
UPDATE_LATENCY = 7
#: ... and to pushing its spike mask into the FIFO.
PUSH_LATENCY = UPDATE_LATENCY + 2


def check_params(config: ArrayConfig, params: IntParams) -> None:
    """Raise :class:`ConfigError` unless ``params`` fit an array of ``config``."""
    for name, want, got in (("neurons", config.neurons, params.neurons),
                            ("inputs", config.inputs, params.inputs),
                            ("WB", config.WB, params.WB), ("DB", config.DB, params.DB),
                            ("VB", config.VB, params.VB), ("reset", config.reset, params.reset)):
        if want != got:
            raise ConfigError(f"the parameters have {name} = {got!r} but the array has "
                              f"{name} = {want!r}")
    if params.per_neuron_threshold != config.per_neuron_threshold:
        raise ConfigError("the parameters' threshold mode (per "
                          f"{'neuron' if params.per_neuron_threshold else 'layer'}) differs "
                          "from the array's")
    if (params.bias is not None) != config.bias:
        raise ConfigError(f"the parameters {'have' if params.bias is not None else 'lack'} a "
                          f"bias but the array {'has' if config.bias else 'has none'}")


class NeuronArray(wiring.Component):
    """A DA-LIF neuron array (docs/arithmetic.md, docs/hardware.md).

    Parameters
    ----------
    config : ArrayConfig
        Sizes, widths, reset, lanes, threshold mode and bias.
    params : IntParams, optional
        Initial parameters; by default :func:`dalif_hw.layout.default_params`. All of them
        can be rewritten at run time through ``cfg``.
    multipliers : str
        ``"dsp"`` (default): ``alpha * I`` in a DSP block per lane, ``beta * H`` as
        pipelined shift-and-add; ``"logic"``: both as shift-and-add, no DSP blocks.
    weight_image : list of int, optional
        Initial words of the weight memory instead of the parameters' (see
        :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`).

    Attributes
    ----------
    i : In(stream)
        Input events: ``index`` over M inputs, ``eot``.
    o : Out(stream)
        Output events: ``index`` over N neurons, ``eot``.
    err : Out(1)
        Sticky: a beat was dropped (index >= M, or beyond the M-th counted beat of a timestep).
    cfg : In(ConfigSignature)
        Configuration write port (see :mod:`dalif_hw.layout` for the address map).
    fifo_depth : int
        Depth of the spike-mask FIFO between the update and the output stage.
    accumulator : SpikeAccumulator
        The input side (a submodule).
    fifo : dict of Signal
        Not ports, for checkers (:mod:`dalif_hw.hw.checks`): the spike-mask FIFO's ``push``,
        ``pop`` and ``level``.
    """

    def __init__(self, config: ArrayConfig, params: IntParams | None = None,
                 multipliers: str = "dsp", weight_image: list | None = None):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        if multipliers not in MULTIPLIERS:
            raise ValueError(f"multipliers must be one of {', '.join(MULTIPLIERS)}, "
                             f"not {multipliers!r}")
        self.multipliers = multipliers
        if params is None:
            params = default_params(config)
        check_params(config, params)
        self.config = config
        self.params = params
        self.memory_specs = memories(config, params)
        # A power of two, so that the ring pointers wrap by themselves.
        self.fifo_depth = 1 << ceil_log2(2 * (config.groups + 1) + PUSH_LATENCY +
                                         SpikeAccumulator.SLACK)
        self.cfg_widths = config_widths(self.memory_specs, config.lanes,
                                        max(config.WB, config.decay_width, config.VB))
        self.fifo = {"push": Signal(name="fifo_push"), "pop": Signal(name="fifo_pop"),
                     "level": Signal(range(self.fifo_depth + 1), name="fifo_level")}
        self.accumulator = SpikeAccumulator(
            inputs=config.inputs, T=config.T, weights=self.memory_specs[0],
            acc_width=config.current_width, base_width=config.out_index_width, pass_every=1,
            pass_gap=UPDATE_LATENCY + 1 - config.groups, cfg_widths=self.cfg_widths,
            weight_image=weight_image)
        super().__init__({
            "i": In(event_signature(config.inputs)),
            "o": Out(event_signature(config.neurons)),
            "err": Out(1),
            "cfg": In(ConfigSignature(**self.cfg_widths)),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        P, G, N = c.lanes, c.groups, c.neurons
        CW, VB, DB = c.current_width, c.VB, c.DB
        cfg = self.cfg
        specs = {spec.name: spec for spec in self.memory_specs}

        acc = m.submodules.accumulate = self.accumulator
        wiring.connect(m, wiring.flipped(self.i), acc.i)
        wiring.connect(m, wiring.flipped(cfg), acc.cfg)
        m.d.comb += self.err.eq(acc.err)

        # -- per-neuron parameters and membranes, read in step with the pass ----------------
        d2 = {}
        for name, spec in specs.items():
            if name == "weights":
                continue
            mem = m.submodules[f"{name}_mem"] = Memory(
                shape=unsigned(spec.width), depth=spec.depth, init=spec.words)
            config_write_port(m, mem, spec, cfg)
            if name == "bias":
                d1_bias, d2[name] = read_in_step(m, mem, acc.issue.g, name, early=True)
            else:
                d2[name] = read_in_step(m, mem, acc.issue.g, name)
        theta_reg = None
        if not c.per_neuron_threshold:
            # Parameters survive reset (only state is cleared).
            theta_reg = Signal(signed(VB), init=int(self.params.threshold), reset_less=True)
            with m.If(cfg.en & (cfg.sel == SELECT["threshold"]) & (cfg.addr == 0) &
                      (cfg.lane == 0)):
                m.d.sync += theta_reg.eq(cfg.data[:VB].as_signed())
        h_mem = m.submodules.h_mem = Memory(shape=unsigned(P * VB), depth=G, init=[])
        h_wr = h_mem.write_port()
        d2["h"] = read_in_step(m, h_mem, acc.issue.g, "h")

        # The spike-mask FIFO: a ring in distributed RAM with registered pointers. The
        # accumulator issues a pass operation only when there is room for it (credit), so a
        # push is never refused and needs no ready.
        count_width = len(Signal(range(P + 1)))
        iw = len(self.o.payload.index)
        ring = m.submodules.spikes = Memory(shape=unsigned(P + iw + 1 + count_width),
                                            depth=self.fifo_depth, init=[])
        ring_wr, ring_rd = ring.write_port(), ring.read_port(domain="comb")
        wp = Signal(range(self.fifo_depth))
        rp = Signal(range(self.fifo_depth))
        level, push, pop = self.fifo["level"], self.fifo["push"], self.fifo["pop"]
        # push is a register (stage 9)
        m.d.comb += [ring_wr.addr.eq(wp), ring_wr.en.eq(push), ring_rd.addr.eq(rp)]
        with m.If(push):
            m.d.sync += wp.eq(wp + 1)
        with m.If(pop):
            m.d.sync += rp.eq(rp + 1)
        m.d.sync += level.eq(level + push - pop)
        m.d.comb += acc.room.eq(level + PUSH_LATENCY + SpikeAccumulator.SLACK
                                <= self.fifo_depth)

        # The pass operations behind the accumulator, stages 3 .. 6 (7 below).
        keys = ("valid", "g", "last", "base", "first_step")
        s = {k: {key: Signal.like(getattr(acc.pass_, key), name=f"s{k}_{key}",
                                  reset_less=key != "valid") for key in keys}
             for k in range(3, 7)}
        for k in range(3, 7):
            m.d.sync += [s[k][key].eq(getattr(acc.pass_, key) if k == 3 else s[k - 1][key])
                         for key in keys]

        # Data registers need no reset (only the valid bits do): fewer loads on rst.
        def stage_regs(name, k, shape):
            return [Signal(shape, name=f"s{k}_{name}{p}", reset_less=True) for p in range(P)]

        def delay(values, name, shape, stages):
            """Carry ``values`` (one per lane) through pipeline registers of ``stages``."""
            for k in stages:
                regs = stage_regs(name, k, shape)
                m.d.sync += [r.eq(v) for r, v in zip(regs, values)]
                values = regs
            return values

        # -- stage 2: the current I and the membrane H -----------------------------------------
        # The accumulators start from the bias (so no adder stands in front of the DSP
        # block): I is the accumulator, or the bias alone after a timestep without beats.
        acc_lanes = lanes_of(acc.pass_.acc, P, CW)
        biases = lanes_of(d2["bias"], P, VB) if c.bias else [0] * P
        if c.bias:
            drive_start(m, acc, lanes_of(d1_bias, P, VB))
        cur3 = stage_regs("current", 3, signed(CW))
        for p in range(P):
            m.d.sync += cur3[p].eq(Mux(acc.pass_.empty, biases[p], acc_lanes[p]))
        a3 = delay(lanes_of(d2["alpha"], P, c.decay_width, signed=False), "alpha",
                   c.decay_width, [3])
        thetas = lanes_of(d2["threshold"], P, VB) if c.per_neuron_threshold else [theta_reg] * P
        theta5 = delay(thetas, "theta", signed(VB), range(3, 6))
        theta6 = delay(theta5, "theta", signed(VB), [6])

        # -- stages 3 to 5: products ----------------------------------------------------------
        # A decay times a value as the sum of the value's shifted copies where the decay has
        # a 1, added in registered levels. The rounding's half rides in the copy of the top
        # bit of the decay (shifted by DB, so its low DB bits are free), so that the total
        # need only be shifted. beta * H always so: two multipliers a lane would need 32 DSP
        # blocks for 16 lanes, the ECP5-25F has 28. alpha * I goes to a DSP block
        # (multipliers="dsp"), or the same way (multipliers="logic", no DSP blocks, more LUTs:
        # on the ECP5-25F the default array then routes slower).
        half = 1 << (DB - 1)

        def rounded_products(decay, x, name, width, stage, groupings, zero=None):
            """``rnd(decay * x, DB)`` per lane. Level ``k`` of registers (stage ``stage + k``)
            sums the previous level's terms in groups of ``groupings[k]``; the last sum is
            left to the caller. ``zero`` (a flag one stage before the last level) clears
            that level: the product of a zero."""
            shape = signed(width + c.decay_width + 1)
            results = []
            for p in range(P):
                terms = []
                for k in range(c.decay_width):
                    copy = Mux(decay[p][k], x[p], 0)
                    terms.append(Cat(Const(half, DB), copy).as_signed() if k == DB
                                 else copy << k)
                if c.decay_width <= DB:
                    terms.append(Const(half))
                for level, size in enumerate(groupings):
                    sums = [Signal(shape, name=f"s{stage + level}_{name}{p}_{j}",
                                   reset_less=True) for j in range(0, len(terms), size)]
                    m.d.sync += [r.eq(sum(terms[j * size:(j + 1) * size], start=0))
                                 for j, r in enumerate(sums)]
                    if zero is not None and level == len(groupings) - 1:
                        with m.If(zero):
                            m.d.sync += [r.eq(0) for r in sums]
                    terms = sums
                results.append(sum(terms, start=0) >> DB)
            return results

        # beta * H from the registered memory word: three stages (3, 4 and the caller's 5),
        # H counted as 0 in a sample's first timestep.
        rb = rounded_products(lanes_of(d2["beta"], P, c.decay_width, signed=False),
                              lanes_of(d2["h"], P, VB), "pb", VB, 3, [2, 3],
                              zero=s[3]["first_step"])
        rb5 = stage_regs("rb", 5, signed(VB + 2))
        m.d.sync += [rb5[p].eq(rb[p]) for p in range(P)]
        if self.multipliers == "dsp":
            # alpha * I in a DSP block with registers on both sides (stages 4 and 5): on ECP5
            # they become the block's own (python -m dalif_hw.synth, dalif_hw/hardregs.py).
            # Its rounding, rnd(p) = (p >> DB) + bit DB-1 of p, rides in the sum below.
            cur4 = delay(cur3, "current", signed(CW), [4])
            a4 = delay(a3, "alpha", c.decay_width, [4])
            pa5 = stage_regs("pa", 5, signed(CW + c.decay_width + 1))
            m.d.sync += [pa5[p].eq(cur4[p] * a4[p]) for p in range(P)]
            ra5 = [pa5[p] >> DB for p in range(P)]
            carry5 = [pa5[p][DB - 1] for p in range(P)]
        else:
            ra5 = stage_regs("ra", 5, signed(CW + 2))
            m.d.sync += [r.eq(v) for r, v in
                         zip(ra5, rounded_products(a3, cur3, "pa", CW, 4, [3]))]
            carry5 = [0] * P

        # -- stage 5: X = rnd(beta H) + rnd(alpha I), not yet saturated ------------------------
        lo, hi = signed_range(VB)
        x6 = stage_regs("x", 6, signed(max(CW, VB) + 3))
        theta_lo6 = stage_regs("theta_lo", 6, 1)
        for p in range(P):
            m.d.sync += [x6[p].eq(ra5[p] + rb5[p] + carry5[p]),
                         theta_lo6[p].eq(theta5[p] == lo)]
        if c.reset == "soft":
            hi_minus6 = stage_regs("hi_minus_theta", 6, signed(VB + 2))
            lo_minus6 = stage_regs("lo_minus_theta", 6, signed(VB + 2))
            for p in range(P):
                m.d.sync += [hi_minus6[p].eq(hi - theta5[p]), lo_minus6[p].eq(lo - theta5[p])]

        # -- stage 6: V = sat(X), fire and reset -------------------------------------------------
        # V >= theta is decided on X and the saturation flags, in parallel with V itself:
        # above the range V = hi >= theta; below it V = lo >= theta only if theta = lo. A soft
        # reset's V - theta is likewise hi - theta, lo - theta or X - theta.
        # -- stage 7: write back ----------------------------------------------------------------
        s7 = {key: Signal.like(s[6][key], name=f"s7_{key}", reset_less=key != "valid")
              for key in keys}
        m.d.sync += [s7[key].eq(s[6][key]) for key in keys]
        mask7 = Signal(P, reset_less=True)
        h7 = Signal(P * VB, reset_less=True)
        fired, h_new = [], []
        for p in range(P):
            over, under = sat_flags(x6[p], VB)
            diff = x6[p] - theta6[p]
            spike = Signal(name=f"s6_spike{p}")
            m.d.comb += spike.eq(Mux(over, 1, Mux(under, theta_lo6[p], ~diff[-1])))
            v = sat(x6[p], VB)
            if c.reset == "hard":
                after = 0
            else:
                after = sat(Mux(over, hi_minus6[p], Mux(under, lo_minus6[p], diff)), VB)
            fired.append(spike)
            h_new.append(Mux(spike, after, v)[:VB])
        # Lanes past neuron N-1 in the last group never fire.
        tail = N - (G - 1) * P
        real = Mux(s[6]["g"] == G - 1, (1 << tail) - 1, (1 << P) - 1)
        m.d.sync += [mask7.eq(Cat(*fired) & real), h7.eq(Cat(*h_new))]
        m.d.comb += [h_wr.addr.eq(s7["g"]), h_wr.data.eq(h7), h_wr.en.eq(s7["valid"])]
        # -- stage 8: the mask's spike count in parts of four lanes (the lanes lie far apart on
        # the chip); stage 9: push the mask with its count (a group without spikes only when
        # it ends the timestep), all from registers.
        parts = [mask7[k:k + 4] for k in range(0, P, 4)]
        counts8 = [Signal(range(len(part) + 1), name=f"s8_count{k}", reset_less=True)
                   for k, part in enumerate(parts)]
        mask8 = Signal(P, reset_less=True)
        base8 = Signal(iw, reset_less=True)
        last8, valid8 = Signal(reset_less=True), Signal()
        m.d.sync += [mask8.eq(mask7), base8.eq(s7["base"][:iw]), last8.eq(s7["last"]),
                     valid8.eq(s7["valid"])]
        m.d.sync += [n.eq(sum(part, start=Const(0, len(n)))) for n, part in zip(counts8, parts)]
        entry9 = Signal(len(ring_wr.data), reset_less=True)
        m.d.sync += [entry9.eq(Cat(mask8, base8, last8, sum(counts8, start=Const(0, count_width)))),
                     push.eq(valid8 & (Cat(*counts8).any() | last8))]
        m.d.comb += ring_wr.data.eq(entry9)

        # -- output: one beat per spike of the current mask, then eot ------------------------
        # The entry being sent sits in registers with its spike count, so that the decision to
        # take the next one from the FIFO depends on registers and the output handshake only.
        cur_v, cur_eot = Signal(), Signal()
        cur_mask, cur_base = Signal(P), Signal(iw)
        cur_count = Signal(range(P + 1))
        head = ring_rd.data
        lowest = Signal(P)
        lane = Signal(range(P))
        m.d.comb += lowest.eq(cur_mask & (~cur_mask + 1)[:P])
        for p in range(P):
            with m.If(lowest[p]):
                m.d.comb += lane.eq(p)
        is_eot = cur_count == 0
        # g * P + lane; with P a power of two the lane bits of g * P are zero.
        index = cur_base | lane if P & (P - 1) == 0 else cur_base + lane
        m.d.comb += [self.o.valid.eq(cur_v), self.o.payload.eot.eq(is_eot),
                     self.o.payload.index.eq(Mux(is_eot, 0, index))]
        done = is_eot | ((cur_count == 1) & ~cur_eot)
        take = (level != 0) & (~cur_v | (self.o.ready & done))
        m.d.comb += pop.eq(take)
        with m.If(take):
            m.d.sync += [cur_v.eq(1), cur_mask.eq(head[:P]), cur_base.eq(head[P:P + iw]),
                         cur_eot.eq(head[P + iw]), cur_count.eq(head[P + iw + 1:])]
        with m.Elif(self.o.ready & cur_v):
            with m.If(done):
                m.d.sync += cur_v.eq(0)
            with m.Else():
                m.d.sync += [cur_mask.eq(cur_mask & ~lowest), cur_count.eq(cur_count - 1)]
        return m
