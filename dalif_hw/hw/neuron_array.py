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

Pass issue at cycle c; memory data c+1, registered c+2 (I); c+3 products; c+4 rounding and
saturation (V); c+5 fire, reset, H write, FIFO push.
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
UPDATE_LATENCY = 5


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
        self.fifo_depth = 2 * (config.groups + 1) + UPDATE_LATENCY + 1
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
            base_width=len(self.o.payload.index), pass_every=1, cfg_widths=self.cfg_widths)
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

        # Stage registers s3 .. s5 of the pass operations behind the accumulator.
        keys = ("valid", "g", "last", "base")
        s = {k: {key: Signal.like(getattr(acc.pass_, key), name=f"s{k}_{key}") for key in keys}
             for k in range(3, UPDATE_LATENCY + 1)}
        for k in range(3, UPDATE_LATENCY + 1):
            m.d.sync += [s[k][key].eq(getattr(acc.pass_, key) if k == 3 else s[k - 1][key])
                         for key in keys]
        # The next pass reads H only after this one has written it back; every operation in
        # flight may still push a mask.
        m.d.comb += [acc.hold.eq(Cat(*[s[k]["valid"] for k in s]).any()),
                     acc.credit.eq(spikes.level + UPDATE_LATENCY + 1 <= self.fifo_depth)]

        acc_lanes = lanes_of(acc.pass_.acc, P, CW)
        biases = lanes_of(d2["bias"], P, VB) if c.bias else [0] * P
        alphas = lanes_of(d2["alpha"], P, c.decay_width, signed=False)
        betas = lanes_of(d2["beta"], P, c.decay_width, signed=False)
        hs = lanes_of(d2["h"], P, VB)
        thetas = (lanes_of(d2["threshold"], P, VB) if c.per_neuron_threshold
                  else [theta_reg] * P)
        # Stage 3 registers: multiplier operands.
        cur3 = [Signal(signed(CW), name=f"s3_current{p}") for p in range(P)]
        h3 = [Signal(signed(VB), name=f"s3_h{p}") for p in range(P)]
        a3 = [Signal(c.decay_width, name=f"s3_alpha{p}") for p in range(P)]
        b3 = [Signal(c.decay_width, name=f"s3_beta{p}") for p in range(P)]
        th3 = [Signal(signed(VB), name=f"s3_theta{p}") for p in range(P)]
        for p in range(P):
            m.d.sync += [cur3[p].eq(Mux(acc.pass_.empty, 0, acc_lanes[p]) + biases[p]),
                         h3[p].eq(Mux(acc.pass_.first_step, 0, hs[p])),
                         a3[p].eq(alphas[p]), b3[p].eq(betas[p]), th3[p].eq(thetas[p])]

        # -- stage 3: products (registered in and out) ----------------------------------------
        pa4 = [Signal(signed(CW + c.decay_width + 1), name=f"s4_pa{p}") for p in range(P)]
        pb4 = [Signal(signed(VB + c.decay_width + 1), name=f"s4_pb{p}") for p in range(P)]
        th4 = [Signal(signed(VB), name=f"s4_theta{p}") for p in range(P)]
        for p in range(P):
            m.d.sync += [pa4[p].eq(cur3[p] * a3[p]),
                         pb4[p].eq(h3[p] * b3[p]),
                         th4[p].eq(th3[p])]

        # -- stage 4: rounding and saturation -------------------------------------------------
        v5 = [Signal(signed(VB), name=f"s5_v{p}") for p in range(P)]
        th5 = [Signal(signed(VB), name=f"s5_theta{p}") for p in range(P)]
        for p in range(P):
            m.d.sync += [v5[p].eq(sat(rnd(pb4[p], DB) + rnd(pa4[p], DB), VB)),
                         th5[p].eq(th4[p])]

        # -- stage 5: fire, reset, write back, push the spike mask ---------------------------
        s5 = s[UPDATE_LATENCY]
        fired, h_new = [], []
        for p in range(P):
            spike = Signal(name=f"s5_spike{p}")
            m.d.comb += spike.eq(v5[p] >= th5[p])
            after = 0 if c.reset == "hard" else sat(v5[p] - th5[p], VB)
            fired.append(spike)
            h_new.append(Mux(spike, after, v5[p])[:VB])
        # Lanes past neuron N-1 in the last group never fire.
        tail = N - (G - 1) * P
        real = Mux(s5["g"] == G - 1, (1 << tail) - 1, (1 << P) - 1)
        mask = Signal(P)
        m.d.comb += [mask.eq(Cat(*fired) & real),
                     h_wr.addr.eq(s5["g"]), h_wr.data.eq(Cat(*h_new)),
                     h_wr.en.eq(s5["valid"]),
                     spikes.w_data.eq(Cat(mask, s5["base"][:len(self.o.payload.index)],
                                          s5["last"])),
                     spikes.w_en.eq(s5["valid"] & (mask.any() | s5["last"]))]

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
