"""The DA-LIF neuron array: spike-driven accumulation, pipelined update, event streams.

N neurons in G = ceil(N/P) groups of P lanes. The input side, :class:`SpikeAccumulator`,
adds the weights of every input spike into the current accumulators, group by group, and on
each ``eot`` issues the update pass, one group a cycle. This module adds the rest:

- the update pipeline: ``I = bias + acc`` (0 if the timestep had no counted beat) and H
  (0 in a sample's first timestep, so every sample starts clean); the products
  ``alpha * I`` and ``beta * H``, registered in and out so they map to DSP blocks; rounding
  and saturation; threshold and reset; the new H written back;
- a FIFO of the groups' spike masks (empty ones skipped);
- the output stage, one beat per spike in ascending neuron order, then ``eot``, one a
  cycle, while the next timestep is already accumulating.

Pass issue at cycle c; memory data c+1, registered c+2 (I, H); c+3 products; c+4 rounding;
c+5 saturation (V); c+6 fire, reset, H write, FIFO push.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..config import ArrayConfig, ConfigError, rnd, sat
from ..layout import SELECT, default_params, memories
from ..params import IntParams
from .accumulate import SpikeAccumulator, config_write_port, lanes_of
from .streams import ConfigSignature, event_signature

__all__ = ["NeuronArray", "UPDATE_LATENCY"]

#: Cycles from issuing an update to writing its membrane (and pushing its spike mask).
UPDATE_LATENCY = 6


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
    """

    def __init__(self, config: ArrayConfig, params: IntParams | None = None):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        if params is None:
            params = default_params(config)
        check_params(config, params)
        self.config = config
        self.params = params
        self.memory_specs = memories(config, params)
        self.fifo_depth = 2 * (config.groups + 1) + UPDATE_LATENCY + SpikeAccumulator.SLACK
        depth = max(spec.depth for spec in self.memory_specs)
        self.cfg_widths = {
            "sel": 3, "addr": max(1, ceil_log2(depth)), "lane": max(1, ceil_log2(config.lanes)),
            "data": max(config.WB, config.decay_width, config.VB),
        }
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

        acc = m.submodules.accumulate = SpikeAccumulator(
            inputs=c.inputs, T=c.T, weights=specs["weights"], acc_width=CW,
            base_width=len(self.o.payload.index), pass_every=1,
            pass_gap=UPDATE_LATENCY + 1 - G, cfg_widths=self.cfg_widths)
        wiring.connect(m, wiring.flipped(self.i), acc.i)
        m.d.comb += [getattr(acc.cfg, k).eq(getattr(cfg, k)) for k in self.cfg_widths | {"en": 1}]
        m.d.comb += self.err.eq(acc.err)

        # -- per-neuron parameters and membranes, read in step with the pass ----------------
        d2 = {}
        for name, spec in specs.items():
            if name == "weights":
                continue
            mem = m.submodules[f"{name}_mem"] = Memory(
                shape=unsigned(spec.width), depth=spec.depth, init=spec.words)
            config_write_port(m, mem, spec, cfg)
            d2[name] = self._read_in_step(m, mem, acc.issue.g, name)
        theta_reg = None
        if not c.per_neuron_threshold:
            # Parameters survive reset (only state is cleared).
            theta_reg = Signal(signed(VB), init=int(self.params.threshold), reset_less=True)
            with m.If(cfg.en & (cfg.sel == SELECT["threshold"]) & (cfg.addr == 0) &
                      (cfg.lane == 0)):
                m.d.sync += theta_reg.eq(cfg.data[:VB].as_signed())
        h_mem = m.submodules.h_mem = Memory(shape=unsigned(P * VB), depth=G, init=[])
        h_wr = h_mem.write_port()
        d2["h"] = self._read_in_step(m, h_mem, acc.issue.g, "h")

        spikes = m.submodules.spikes = fifo.SyncFIFOBuffered(
            width=P + len(self.o.payload.index) + 1, depth=self.fifo_depth)
        m.d.comb += acc.room.eq(spikes.level + UPDATE_LATENCY + SpikeAccumulator.SLACK
                                <= self.fifo_depth)

        # The pass operations behind the accumulator, stages 3 .. UPDATE_LATENCY.
        keys = ("valid", "g", "last", "base")
        s = {k: {key: Signal.like(getattr(acc.pass_, key), name=f"s{k}_{key}") for key in keys}
             for k in range(3, UPDATE_LATENCY + 1)}
        for k in range(3, UPDATE_LATENCY + 1):
            m.d.sync += [s[k][key].eq(getattr(acc.pass_, key) if k == 3 else s[k - 1][key])
                         for key in keys]

        def stage_regs(name, k, shape):
            return [Signal(shape, name=f"s{k}_{name}{p}") for p in range(P)]

        def delay(values, name, shape, stages):
            """Carry ``values`` (one per lane) through pipeline registers of ``stages``."""
            for k in stages:
                regs = stage_regs(name, k, shape)
                m.d.sync += [r.eq(v) for r, v in zip(regs, values)]
                values = regs
            return values

        # -- stage 2: the current I and the membrane H -----------------------------------------
        acc_lanes = lanes_of(acc.pass_.acc, P, CW)
        biases = lanes_of(d2["bias"], P, VB) if c.bias else [0] * P
        hs = lanes_of(d2["h"], P, VB)
        cur3, h3 = stage_regs("current", 3, signed(CW)), stage_regs("h", 3, signed(VB))
        for p in range(P):
            m.d.sync += [cur3[p].eq(Mux(acc.pass_.empty, 0, acc_lanes[p]) + biases[p]),
                         h3[p].eq(Mux(acc.pass_.first_step, 0, hs[p]))]
        a3 = delay(lanes_of(d2["alpha"], P, c.decay_width, signed=False), "alpha",
                   c.decay_width, [3])
        b3 = delay(lanes_of(d2["beta"], P, c.decay_width, signed=False), "beta",
                   c.decay_width, [3])
        thetas = lanes_of(d2["threshold"], P, VB) if c.per_neuron_threshold else [theta_reg] * P
        theta6 = delay(thetas, "theta", signed(VB), range(3, 7))

        # -- stages 3, 4: products and rounding ----------------------------------------------
        # alpha * I goes to a DSP block (registered in at 3 and out at 4). beta * H is built
        # from shifted copies of H in logic, in two adder levels: two multipliers a lane
        # would need more DSP blocks than a small FPGA has (32 for 16 lanes on a 28-block
        # ECP5-25F). The rounding half enters the beta sum as one more term.
        half = 1 << (DB - 1)
        PW = VB + c.decay_width + 1
        pa4 = stage_regs("pa", 4, signed(CW + c.decay_width + 1))
        pb4 = [stage_regs(f"pb{k}_", 4, signed(PW)) for k in range(3)]
        bits = c.decay_width
        chunks = [range(k, min(k + 3, bits)) for k in range(0, bits, 3)]
        for p in range(P):
            m.d.sync += pa4[p].eq(cur3[p] * a3[p])
            partial = [sum((Mux(b3[p][k], h3[p] << k, 0) for k in chunk), start=0)
                       for chunk in chunks]
            groups = [partial[k::3] for k in range(3)]
            for k in range(3):
                total = sum(groups[k], start=half if k == 0 else 0)
                m.d.sync += pb4[k][p].eq(total)
        ra5, rb5 = stage_regs("ra", 5, signed(CW + 2)), stage_regs("rb", 5, signed(VB + 2))
        for p in range(P):
            m.d.sync += [ra5[p].eq(rnd(pa4[p], DB)),
                         rb5[p].eq((pb4[0][p] + pb4[1][p] + pb4[2][p]) >> DB)]

        # -- stage 5: V = sat(rnd(beta H) + rnd(alpha I)) --------------------------------------
        v6 = stage_regs("v", 6, signed(VB))
        for p in range(P):
            m.d.sync += v6[p].eq(sat(ra5[p] + rb5[p], VB))

        # -- stage 6: fire, reset, write back, push the spike mask ---------------------------
        last = s[UPDATE_LATENCY]
        fired, h_new = [], []
        for p in range(P):
            spike = Signal(name=f"s6_spike{p}")
            m.d.comb += spike.eq(v6[p] >= theta6[p])
            after = 0 if c.reset == "hard" else sat(v6[p] - theta6[p], VB)
            fired.append(spike)
            h_new.append(Mux(spike, after, v6[p])[:VB])
        # Lanes past neuron N-1 in the last group never fire.
        tail = N - (G - 1) * P
        real = Mux(last["g"] == G - 1, (1 << tail) - 1, (1 << P) - 1)
        mask = Signal(P)
        m.d.comb += [mask.eq(Cat(*fired) & real),
                     h_wr.addr.eq(last["g"]), h_wr.data.eq(Cat(*h_new)),
                     h_wr.en.eq(last["valid"]),
                     spikes.w_data.eq(Cat(mask, last["base"][:len(self.o.payload.index)],
                                          last["last"])),
                     spikes.w_en.eq(last["valid"] & (mask.any() | last["last"]))]

        # -- output: one beat per spike of the head mask, then eot ---------------------------
        head_mask = spikes.r_data[:P]
        head_base = spikes.r_data[P:P + len(self.o.payload.index)]
        head_eot = spikes.r_data[-1]
        consumed = Signal(P)
        remaining = Signal(P)
        lowest = Signal(P)
        lane = Signal(range(P))
        m.d.comb += [remaining.eq(head_mask & ~consumed),
                     lowest.eq(remaining & (~remaining + 1)[:P])]
        for p in range(P):
            with m.If(lowest[p]):
                m.d.comb += lane.eq(p)
        is_eot = ~remaining.any()
        m.d.comb += [self.o.valid.eq(spikes.r_rdy),
                     self.o.payload.eot.eq(is_eot),
                     self.o.payload.index.eq(Mux(is_eot, 0, head_base + lane))]
        with m.If(self.o.valid & self.o.ready):
            last_spike = ~(remaining & ~lowest).any()
            with m.If(is_eot | (last_spike & ~head_eot)):
                m.d.comb += spikes.r_en.eq(1)
                m.d.sync += consumed.eq(0)
            with m.Else():
                m.d.sync += consumed.eq(consumed | lowest)
        return m

    @staticmethod
    def _read_in_step(m: Module, memory: Memory, addr, name: str):
        """Read ``memory`` at ``addr`` (issue time); return the word, registered, at stage 2."""
        port = memory.read_port()
        word = Signal(len(port.data), name=f"s2_{name}")
        m.d.comb += port.addr.eq(addr)
        m.d.sync += word.eq(port.data)
        return word
