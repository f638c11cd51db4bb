"""The DA-LIF neuron update: the neurons' memories and the pipeline that runs them.

One pass operation a cycle, group by group, from an accumulator (:mod:`.accumulate`):

    I = acc (the bias plus the weights of the timestep's counted beats)
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
           "MULTIPLIERS", "dsp_lanes", "spike_entry_layout"]

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
    Stage("read", "the memories' outputs", "(block RAM output registers)"),
    Stage("load", "the group's accumulators (with forwarding), alpha, beta, threshold, bias "
          "and H, registered; beta * H in logic: shifted copies of H summed in pairs",
          "`s2_*`, `s2_pb*`"),
    Stage("current", "I = acc + bias (added by the accumulator); a DSP product's operands "
          "in the block's input registers; beta * H in logic: pairs again",
          "`s3_current`, `s3_alpha`, `s3_h`, `s3_beta`, `s3_pb*`, `s3_theta`"),
    Stage("multiply", "the DSP blocks' products (their output registers); in logic, alpha * "
          "I's copies summed in threes, beta * H's in pairs, 0 in a sample's first timestep",
          "`s4_pa_dsp`, `s4_pb_dsp`, `s4_pa*`, `s4_pb*`"),
    Stage("products", "each DSP product again, in the fabric (beta * H: 0 in a sample's first "
          "timestep); the last sum of a product in logic, with its rounding half",
          "`s5_pa`, `s5_pb`, `s5_ra`, `s5_rb`, `s5_theta`"),
    Stage("sum", "X = rnd(beta H) + rnd(alpha I) unsaturated (subtract reset: minus theta "
          "where H >= theta, decided at stage current); hi - theta, lo - theta, theta == lo",
          "`s6_x`, `s6_theta*`, `s6_*_minus_theta`"),
    Stage("fire", "V = sat(X); S = V >= theta (from X and the saturation flags); "
          "H' = reset(V, S), picked on its way into the memory and written back at this stage",
          "`s7_mask`, `s7_fired`, `s7_v`, `s7_after`"),
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


#: The signed operand width of one DSP block's multiplier (ECP5's MULT18X18D; iCE40's
#: SB_MAC16 takes 16, given by its target).
DSP_WIDTH = 18


def dsp_cost(width_a: int, width_b: int, dsp_width: int = DSP_WIDTH) -> int:
    """DSP blocks one product of signed ``width_a`` by signed ``width_b`` bits takes: Yosys
    splits an operand wider than the block's."""
    return -(-width_a // dsp_width) * -(-width_b // dsp_width)


def dsp_lanes(lanes: int, multipliers: str, dsp_blocks: int | None,
              costs: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """``(alpha lanes, beta lanes)``: how many lanes compute ``alpha * I`` and ``beta * H``
    in DSP blocks (the first ones; the rest in logic), with ``dsp_blocks`` at most (None:
    no limit), a product of each taking ``costs`` blocks."""
    if dsp_blocks is not None and (not isinstance(dsp_blocks, int) or dsp_blocks < 0):
        raise ValueError(f"dsp_blocks must be a count, not {dsp_blocks!r}")
    if multipliers == "logic":
        return 0, 0
    if dsp_blocks is None:
        return lanes, lanes
    na = min(lanes, dsp_blocks // costs[0])
    return na, min(lanes, (dsp_blocks - na * costs[0]) // costs[1])


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
        ``"dsp"``: the products in DSP blocks, as many as ``dsp_blocks`` allows (``alpha *
        I`` lane by lane first, then ``beta * H``), the rest as pipelined shift-and-add;
        ``"logic"``: all as shift-and-add, no DSP blocks.
    dsp_blocks : int, optional
        At most this many DSP blocks (one per product and lane; default 2 P, all of them):
        a target's count, so that the array fits (``synth`` passes it).

    Attributes
    ----------
    issue : In
        The accumulator's ``issue`` (``valid``, ``g``).
    pass_ : In
        The accumulator's ``pass_`` (:func:`~dalif_hw.hw.accumulate.pass_layout`).
    bias : Out
        The group's bias, in step with ``pass_`` (read at ``issue.g``), for the accumulator
        to add (zero without bias).
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
                 tail: int | None = None, channels: int = 1, dsp_blocks: int | None = None,
                 dsp_width: int = DSP_WIDTH):
        if multipliers not in MULTIPLIERS:
            raise ValueError(f"multipliers must be one of {', '.join(MULTIPLIERS)}, "
                             f"not {multipliers!r}")
        self.config, self.params, self.specs = config, params, specs
        self.multipliers = multipliers
        c = config
        # alpha (unsigned, DB + 1 bits) times I; beta times H: signed operands.
        costs = (dsp_cost(c.current_width, c.decay_width + 1, dsp_width),
                 dsp_cost(c.VB, c.decay_width + 1, dsp_width))
        self.dsp_lanes = dsp_lanes(c.lanes, multipliers, dsp_blocks, costs)
        #: DSP blocks these lanes take.
        self.dsp_blocks = self.dsp_lanes[0] * costs[0] + self.dsp_lanes[1] * costs[1]
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
            "bias": Out(data.ArrayLayout(signed(c.current_width), c.lanes)),
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
        words, early = {}, {}   # memory words at stage load, and a stage before
        for spec in self.specs:
            mem = m.submodules[f"{spec.name}_mem"] = Memory(
                shape=unsigned(spec.width), depth=spec.depth, init=spec.words)
            config_write_port(m, mem, spec, cfg)
            addr = issue.channel if spec.address == "channel" else issue.g
            early[spec.name], word = read_in_step(m, mem, addr, spec.name, early=True)
            words[spec.name] = Cat(*[word] * P) if spec.lanes == 1 else word
            if spec.lanes == 1:
                early[spec.name] = Cat(*[early[spec.name]] * P)
        if c.bias:
            m.d.comb += [self.bias[p].eq(b)
                         for p, b in enumerate(lanes_of(words["bias"], P, VB))]
        theta_reg = None
        if not c.per_neuron_threshold:
            # Parameters survive reset (only state is cleared).
            theta_reg = Signal(signed(VB), init=int(self.params.threshold), reset_less=True)
            with m.If(cfg.en & (cfg.sel == Select.threshold) & (cfg.addr == 0) &
                      (cfg.lane == 0)):
                m.d.sync += theta_reg.eq(cfg.data[:VB].as_signed())
        h_mem = m.submodules.h_mem = Memory(shape=unsigned(P * VB), depth=G, init=[])
        h_wr = h_mem.write_port()
        early["h"], words["h"] = read_in_step(m, h_mem, issue.g, "h", early=True)

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

        # -- current: I (the accumulator adds the bias) and the parameters --------------------
        current = lanes("current", K["current"], signed(CW))
        m.d.sync += [current[p].eq(op.acc[p]) for p in range(P)]
        alpha_c = delay(lanes_of(words["alpha"], P, AB, signed=False), "alpha", unsigned(AB),
                        [K["current"]])
        thetas = (lanes_of(words["threshold"], P, VB) if c.per_neuron_threshold
                  else [theta_reg] * P)
        theta_p = delay(thetas, "theta", signed(VB), range(K["current"], K["products"] + 1))
        theta_s = delay(theta_p, "theta", signed(VB), [K["sum"]])
        taken = None
        if c.reset == "subtract":
            # theta S[t-1], taken off after the decay: S[t-1] is H >= theta (H = V, SPEC 2),
            # and 0 in a sample's first timestep, where the memory's H is stale.
            hs_load = lanes_of(words["h"], P, VB)
            taken_c = lanes("taken", K["current"], signed(VB))
            m.d.sync += [taken_c[p].eq(Mux((hs_load[p] >= thetas[p]) & ~op.first_step,
                                           thetas[p], 0)) for p in range(P)]
            taken = delay(taken_c, "taken", signed(VB), range(K["multiply"], K["products"] + 1))

        # -- current .. products: the decay products -------------------------------------------
        # Each product in a DSP block while the budget lasts (alpha * I first, lane by lane,
        # then beta * H: NeuronUpdate.dsp_lanes), else in logic: a decay times a value as the
        # sum of the value's shifted copies where the decay has a 1, added in registered
        # levels. There the rounding's half rides in the copy of the top bit of the decay
        # (shifted by DB, so its low DB bits are free), so that the total need only be
        # shifted; a DSP product's rounding, rnd(p) = (p >> DB) + bit DB-1 of p, rides in the
        # sum below as a carry.
        half = 1 << (DB - 1)

        def rounded_products(decay, x, name, width, first, groupings, lanes_, zero=None):
            """``{p: rnd(decay * x, DB)}`` for ``lanes_``. Level ``k`` of registers (stage
            ``first + k``) sums the previous level's terms in groups of ``groupings[k]``; the
            last sum is left to the caller. ``zero`` (a flag one stage before the last level)
            clears that level: the product of a zero."""
            shape = signed(width + AB + 1)
            results = {}
            for p in lanes_:
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
                results[p] = sum(terms, start=0) >> DB
            return results

        def dsp_products(decay, x, name, width, lanes_, zero=None):
            """``{p: (p >> DB, bit DB-1)}`` of ``decay * x`` for ``lanes_``, in a DSP block:
            ``decay`` and ``x`` are registers of stage current (the block's input registers),
            the product is registered at stage multiply (its output register; on ECP5 both
            become the block's own, python -m dalif_hw.synth, dalif_hw/flow/hardregs.py)
            and again at stage products in the fabric (the route out of the block takes a
            cycle of its own), where ``zero`` (a flag of stage multiply) clears it."""
            shape = signed(width + AB + 1)
            p4 = lanes(f"{name}_dsp", K["multiply"], shape)
            p5 = lanes(name, K["products"], shape)
            m.d.sync += [p4[p].eq(x[p] * decay[p]) for p in lanes_]
            m.d.sync += [p5[p].eq(p4[p]) for p in lanes_]
            if zero is not None:
                with m.If(zero):
                    m.d.sync += [p5[p].eq(0) for p in lanes_]
            return {p: (p5[p] >> DB, p5[p][DB - 1]) for p in lanes_}

        na, nb = self.dsp_lanes
        # Per product: its rounded value and carry, per lane (stage products).
        rounded = {name: ([None] * P, [0] * P) for name in ("pa", "pb")}
        # beta * H, H counted as 0 in a sample's first timestep; in logic from the memory
        # words of stage read, in pairs over stages load, current and multiply (and
        # products): one adder a stage.
        betas, hs = lanes_of(words["beta"], P, AB, signed=False), lanes_of(words["h"], P, VB)
        rb_logic = lanes("rb", K["products"], signed(VB + 2))
        for p, v in rounded_products(lanes_of(early["beta"], P, AB, signed=False),
                                     lanes_of(early["h"], P, VB), "pb", VB, K["load"],
                                     [2, 2, 2], range(nb, P),
                                     zero=ctrl[K["current"]].first_step).items():
            m.d.sync += rb_logic[p].eq(v)
            rounded["pb"][0][p] = rb_logic[p]
        if nb:
            h_c = delay(hs, "h", signed(VB), [K["current"]])
            beta_c = delay(betas, "beta", unsigned(AB), [K["current"]])
            for p, (v, carry) in dsp_products(beta_c, h_c, "pb", VB, range(nb),
                                              zero=ctrl[K["multiply"]].first_step).items():
                rounded["pb"][0][p], rounded["pb"][1][p] = v, carry
        # alpha * I from the registered current.
        for p, (v, carry) in dsp_products(alpha_c, current, "pa", CW, range(na)).items():
            rounded["pa"][0][p], rounded["pa"][1][p] = v, carry
        ra_logic = lanes("ra", K["products"], signed(CW + 2))
        for p, v in rounded_products(alpha_c, current, "pa", CW, K["multiply"], [3],
                                     range(na, P)).items():
            m.d.sync += ra_logic[p].eq(v)
            rounded["pa"][0][p] = ra_logic[p]

        # -- sum: X = rnd(beta H) + rnd(alpha I), not yet saturated -----------------------------
        lo, hi = signed_range(VB)
        x_sum = lanes("x", K["sum"], signed(max(CW, VB) + 3))
        theta_lo = lanes("theta_lo", K["sum"], 1)
        (ra, ca), (rb, cb) = rounded["pa"], rounded["pb"]
        terms = [[ra[p], rb[p], ca[p], cb[p]] + ([-taken[p]] if taken else [])
                 for p in range(P)]
        m.d.sync += [x_sum[p].eq(sum(terms[p][1:], start=terms[p][0])) for p in range(P)]
        m.d.sync += [theta_lo[p].eq(theta_p[p] == lo) for p in range(P)]
        if c.reset == "soft":
            hi_minus = lanes("hi_minus_theta", K["sum"], signed(VB + 2))
            lo_minus = lanes("lo_minus_theta", K["sum"], signed(VB + 2))
            m.d.sync += [hi_minus[p].eq(hi - theta_p[p]) for p in range(P)]
            m.d.sync += [lo_minus[p].eq(lo - theta_p[p]) for p in range(P)]

        # -- fire: V = sat(X), fire and reset; written back from this stage's registers --------
        # V >= theta is decided on X and the saturation flags, in parallel with V itself:
        # above the range V = hi >= theta; below it V = lo >= theta only if theta = lo; within
        # it X - theta needs only VB + 2 bits. A soft reset's V - theta is likewise hi -
        # theta, lo - theta or X - theta. V, the reset value and the spike are registered
        # apart, and H' picked from them on the way into the memory (not as the registers'
        # reset: the spike would be the reset of VB flip-flops a lane, a slow route).
        kf = K["fire"]
        mask_f = Signal(P, name=f"s{kf}_mask", reset_less=True)
        fired_f = Signal(P, name=f"s{kf}_fired", reset_less=True)
        v_f = Signal(data.ArrayLayout(VB, P), name=f"s{kf}_v", reset_less=True)
        after_f = Signal(data.ArrayLayout(VB, P), name=f"s{kf}_after", reset_less=True)
        fired = []
        for p in range(P):
            over, under = sat_flags(x_sum[p], VB)
            diff = x_sum[p][:VB + 1].as_signed() - theta_s[p]
            spike = Signal(name=f"s{K['sum']}_spike{p}")
            m.d.comb += spike.eq(Mux(over, 1, Mux(under, theta_lo[p], ~diff[-1])))
            m.d.sync += v_f[p].eq(sat(x_sum[p], VB))
            if c.reset == "soft":
                m.d.sync += after_f[p].eq(
                    sat(Mux(over, hi_minus[p], Mux(under, lo_minus[p], diff)), VB))
            fired.append(spike)
        # Lanes that are no neurons (past neuron N-1 in the last group; a convolution's
        # columns past WO) never fire.
        real = Mux(ctrl[K["sum"]].partial, (1 << self.tail) - 1, (1 << P) - 1)
        m.d.sync += [mask_f.eq(Cat(*fired) & real), fired_f.eq(Cat(*fired))]
        if c.reset in ("hard", "soft"):
            h_new = Cat(*[Mux(fired_f[p], after_f[p] if c.reset == "soft" else 0, v_f[p])[:VB]
                          for p in range(P)])
        else:                                   # subtract and none: H = V
            h_new = Cat(*[v_f[p][:VB] for p in range(P)])
        m.d.comb += [h_wr.addr.eq(ctrl[kf].g), h_wr.data.eq(h_new), h_wr.en.eq(valid[kf])]
        probes = self.probes
        m.d.comb += [probes["en"].eq(h_wr.en), probes["addr"].eq(h_wr.addr),
                     probes["data"].eq(h_new)]

        # -- count: the mask's spike count in parts of four lanes (the lanes lie far apart on
        # the chip); push: the mask with its count (a group without spikes only when it ends
        # the timestep), all from registers.
        kc = K["count"]
        parts = [mask_f[k:k + 4] for k in range(0, P, 4)]
        counts_c = [Signal(range(len(part) + 1), name=f"s{kc}_count{k}", reset_less=True)
                    for k, part in enumerate(parts)]
        layout = spike_entry_layout(P, len(op.base))
        entry_c = Signal(layout, name=f"s{kc}_entry", reset_less=True)
        valid_c = Signal(name=f"s{kc}_valid")
        m.d.sync += [entry_c.mask.eq(mask_f), entry_c.base.eq(ctrl[kf].base),
                     entry_c.last.eq(ctrl[kf].last), valid_c.eq(valid[kf])]
        m.d.sync += [n.eq(sum(part, start=Const(0, len(n)))) for n, part in zip(counts_c, parts)]
        count = sum(counts_c, start=Const(0, len(entry_c.count)))
        entry, push = self.push.payload, self.push.valid
        entry_reg = Signal(layout, name=f"s{K['push']}_entry", reset_less=True)
        push_reg = Signal(name=f"s{K['push']}_push")
        m.d.sync += [entry_reg.mask.eq(entry_c.mask), entry_reg.base.eq(entry_c.base),
                     entry_reg.last.eq(entry_c.last), entry_reg.count.eq(count),
                     push_reg.eq(valid_c & (Cat(*counts_c).any() | entry_c.last))]
        m.d.comb += [entry.eq(entry_reg), push.eq(push_reg)]
        return m
