"""The DA-LIF neuron array: spike-driven accumulation, pipelined update, event streams.

Dataflow (N neurons in G = ceil(N/P) groups of P lanes):

- An input spike beat with index j walks the G groups, one a cycle: it reads the weight word
  ``g * M + j`` and the current accumulator of group g, and writes back their lane-wise sum.
  Nothing happens for inputs that do not spike. The accumulator read-modify-write is
  pipelined over three cycles; a small forwarding network hands the two writes still in
  flight to a read of the same group, so beats follow each other with no bubble, whatever G.
- The ``eot`` beat starts the update pass: for each group, one a cycle, the current
  ``I = bias + acc`` (0 if the timestep had no counted beat), the products ``alpha * I`` and
  ``beta * H`` (registered in and out, so they map to DSP blocks), rounding, saturation,
  threshold and reset, and the new membrane H written back. H reads as 0 in a sample's first
  timestep, so every sample starts clean. Each group's spike mask goes into a FIFO.
- The output stage turns the masks into one beat per spike, in ascending neuron order, then
  an ``eot`` beat, one a cycle, while the next timestep's beats are already accumulating.

Issue cycle c; memory data c+1; registered c+2 (accumulate: sum and write; update: I);
c+3 products; c+4 rounding and saturation (V); c+5 fire, reset, H write, FIFO push.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..config import ArrayConfig, ConfigError, rnd, sat
from ..layout import SELECT, default_params, memories
from ..params import IntParams
from .streams import ConfigSignature, event_signature

__all__ = ["NeuronArray", "UPDATE_LATENCY"]

#: Cycles from issuing an update to writing its membrane (and pushing its spike mask).
UPDATE_LATENCY = 5


def _lanes(word, lanes: int, width: int, signed_: bool = True):
    parts = [word[p * width:(p + 1) * width] for p in range(lanes)]
    return [part.as_signed() if signed_ else part for part in parts]


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
        P, G, M, N, T = c.lanes, c.groups, c.inputs, c.neurons, c.T
        CW, VB, DB = c.current_width, c.VB, c.DB
        cfg = self.cfg

        # -- parameter memories, each with a configuration write port -----------------------
        rd = {}
        for spec in self.memory_specs:
            mem = m.submodules[f"{spec.name}_mem"] = Memory(
                shape=unsigned(spec.width), depth=spec.depth, init=spec.words)
            wp = mem.write_port(granularity=spec.lane_width)
            hit = cfg.en & (cfg.sel == spec.select) & (cfg.addr < spec.depth) & (cfg.lane < P)
            m.d.comb += [
                wp.addr.eq(cfg.addr),
                wp.data.eq(Cat(*[cfg.data[:spec.lane_width]] * P)),
                wp.en.eq(Mux(hit, Const(1, P) << cfg.lane, 0)),
            ]
            rd[spec.name] = mem.read_port()
        theta_reg = None
        if not c.per_neuron_threshold:
            # Parameters survive reset (only state is cleared).
            theta_reg = Signal(signed(VB), init=int(self.params.threshold), reset_less=True)
            with m.If(cfg.en & (cfg.sel == SELECT["threshold"]) & (cfg.addr == 0) &
                      (cfg.lane == 0)):
                m.d.sync += theta_reg.eq(cfg.data[:VB].as_signed())

        acc_mem = m.submodules.acc_mem = Memory(shape=unsigned(P * CW), depth=G, init=[])
        acc_rd, acc_wr = acc_mem.read_port(), acc_mem.write_port()
        h_mem = m.submodules.h_mem = Memory(shape=unsigned(P * VB), depth=G, init=[])
        h_rd, h_wr = h_mem.read_port(), h_mem.write_port()

        spikes = m.submodules.spikes = fifo.SyncFIFOBuffered(
            width=P + len(self.o.payload.index) + 1, depth=self.fifo_depth)

        # -- issue: one accumulate or update operation a cycle -------------------------------
        busy = Signal()              # walking the groups of a beat (or an update pass)
        upd_mode = Signal()          # ... of an update pass
        g = Signal(range(G))         # group of the next operation while busy
        j_reg = Signal(range(M))
        wbase = Signal(range(G * M + 1))   # g * M for the next operation while busy
        base = Signal(range(G * P + 1))    # g * P: index of lane 0 of the group
        first = Signal(init=1)       # no beat counted yet in this timestep
        first_reg = Signal()         # the beat being walked was the timestep's first
        empty_reg = Signal()
        hzero_reg = Signal()
        count = Signal(range(M + 1))
        t = Signal(range(T))
        err = Signal()
        m.d.comb += self.err.eq(err)

        iss_valid, iss_upd = Signal(), Signal()
        iss_g = Signal(range(G))
        iss_waddr = Signal(range(G * M))
        iss_first, iss_empty, iss_hzero, iss_last = Signal(), Signal(), Signal(), Signal()
        iss_base = Signal(range(G * P + 1))

        # Stage registers s1 .. s5: what each operation in flight is.
        def stage(name):
            return {k: Signal(shape, name=f"{name}_{k}") for k, shape in (
                ("valid", 1), ("upd", 1), ("g", range(G)), ("first", 1), ("empty", 1),
                ("hzero", 1), ("last", 1), ("base", range(G * P + 1)))}

        s = [None] + [stage(f"s{k}") for k in range(1, UPDATE_LATENCY + 1)]
        issued = {"valid": iss_valid, "upd": iss_upd, "g": iss_g, "first": iss_first,
                  "empty": iss_empty, "hzero": iss_hzero, "last": iss_last, "base": iss_base}
        for k in range(1, UPDATE_LATENCY + 1):
            prev = issued if k == 1 else s[k - 1]
            m.d.sync += [s[k][key].eq(prev[key]) for key in issued]
        # The next update pass reads H only after the last one has written it back.
        drained = ~Cat(*[s[k]["valid"] & s[k]["upd"] for k in range(1, UPDATE_LATENCY + 1)]
                       ).any()
        # Room in the FIFO for every operation that may still push, plus this one.
        credit = spikes.level + UPDATE_LATENCY + 1 <= self.fifo_depth

        index, eot = self.i.payload.index, self.i.payload.eot
        last_group = G - 1
        with m.If(~busy):
            m.d.comb += self.i.ready.eq(Mux(eot, drained & credit, 1))
            with m.If(self.i.valid & self.i.ready):
                with m.If(eot):
                    m.d.comb += [iss_valid.eq(1), iss_upd.eq(1), iss_g.eq(0),
                                 iss_empty.eq(first), iss_hzero.eq(t == 0),
                                 iss_last.eq(G == 1), iss_base.eq(0)]
                    m.d.sync += [first.eq(1), count.eq(0), empty_reg.eq(first),
                                 hzero_reg.eq(t == 0), t.eq(Mux(t == T - 1, 0, t + 1))]
                    if G > 1:
                        m.d.sync += [busy.eq(1), upd_mode.eq(1), g.eq(1), base.eq(P)]
                with m.Elif((index < M) & (count != M)):
                    m.d.comb += [iss_valid.eq(1), iss_g.eq(0), iss_waddr.eq(index),
                                 iss_first.eq(first)]
                    m.d.sync += [count.eq(count + 1), first.eq(0), first_reg.eq(first),
                                 j_reg.eq(index)]
                    if G > 1:
                        m.d.sync += [busy.eq(1), upd_mode.eq(0), g.eq(1), wbase.eq(M)]
                with m.Else():
                    m.d.sync += err.eq(1)
        with m.Elif(upd_mode):
            with m.If(credit):
                m.d.comb += [iss_valid.eq(1), iss_upd.eq(1), iss_g.eq(g),
                             iss_empty.eq(empty_reg), iss_hzero.eq(hzero_reg),
                             iss_last.eq(g == last_group), iss_base.eq(base)]
                m.d.sync += [g.eq(g + 1), base.eq(base + P)]
                with m.If(g == last_group):
                    m.d.sync += busy.eq(0)
        with m.Else():
            m.d.comb += [iss_valid.eq(1), iss_g.eq(g), iss_waddr.eq(wbase + j_reg),
                         iss_first.eq(first_reg)]
            m.d.sync += [g.eq(g + 1), wbase.eq(wbase + M)]
            with m.If(g == last_group):
                m.d.sync += busy.eq(0)

        # -- stage 0/1: memory reads, registered into stage 2 --------------------------------
        m.d.comb += [rd["weights"].addr.eq(iss_waddr), acc_rd.addr.eq(iss_g),
                     h_rd.addr.eq(iss_g)]
        for name in ("alpha", "beta", "threshold", "bias"):
            if name in rd:
                m.d.comb += rd[name].addr.eq(iss_g)
        d2 = {name: Signal(len(port.data), name=f"s2_{name}") for name, port in
              (("weights", rd["weights"]), ("acc", acc_rd), ("h", h_rd),
               *((n, rd[n]) for n in ("alpha", "beta", "threshold", "bias") if n in rd))}
        ports = {"acc": acc_rd, "h": h_rd, **rd}
        m.d.sync += [d2[name].eq(ports[name].data) for name in d2]

        # -- stage 2: forwarding, accumulate (write back) or current -------------------------
        s2 = s[2]
        wl1 = {"valid": Signal(), "g": Signal(range(G)), "data": Signal(P * CW)}
        wl2 = {"valid": Signal(), "g": Signal(range(G)), "data": Signal(P * CW)}
        acc_v = Signal(P * CW)
        with m.If(wl1["valid"] & (wl1["g"] == s2["g"])):
            m.d.comb += acc_v.eq(wl1["data"])
        with m.Elif(wl2["valid"] & (wl2["g"] == s2["g"])):
            m.d.comb += acc_v.eq(wl2["data"])
        with m.Else():
            m.d.comb += acc_v.eq(d2["acc"])
        acc_lanes = _lanes(acc_v, P, CW)
        weights = _lanes(d2["weights"], P, c.WB)
        acc_sum = Cat(*[(Mux(s2["first"], 0, a) + w)[:CW] for a, w in zip(acc_lanes, weights)])
        do_acc = s2["valid"] & ~s2["upd"]
        m.d.comb += [acc_wr.addr.eq(s2["g"]), acc_wr.data.eq(acc_sum), acc_wr.en.eq(do_acc)]
        m.d.sync += [wl1["valid"].eq(do_acc), wl1["g"].eq(s2["g"]), wl1["data"].eq(acc_sum),
                     wl2["valid"].eq(wl1["valid"]), wl2["g"].eq(wl1["g"]),
                     wl2["data"].eq(wl1["data"])]

        biases = _lanes(d2["bias"], P, VB) if c.bias else [0] * P
        alphas = _lanes(d2["alpha"], P, c.decay_width, signed_=False)
        betas = _lanes(d2["beta"], P, c.decay_width, signed_=False)
        hs = _lanes(d2["h"], P, VB)
        thetas = (_lanes(d2["threshold"], P, VB) if c.per_neuron_threshold
                  else [theta_reg] * P)
        # Stage 3 registers: multiplier operands.
        cur3 = [Signal(signed(CW), name=f"s3_current{p}") for p in range(P)]
        h3 = [Signal(signed(VB), name=f"s3_h{p}") for p in range(P)]
        a3 = [Signal(c.decay_width, name=f"s3_alpha{p}") for p in range(P)]
        b3 = [Signal(c.decay_width, name=f"s3_beta{p}") for p in range(P)]
        th3 = [Signal(signed(VB), name=f"s3_theta{p}") for p in range(P)]
        for p in range(P):
            m.d.sync += [cur3[p].eq(Mux(s2["empty"], 0, acc_lanes[p]) + biases[p]),
                         h3[p].eq(Mux(s2["hzero"], 0, hs[p])),
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
                     h_wr.en.eq(s5["valid"] & s5["upd"]),
                     spikes.w_data.eq(Cat(mask, s5["base"][:len(self.o.payload.index)],
                                          s5["last"])),
                     spikes.w_en.eq(s5["valid"] & s5["upd"] & (mask.any() | s5["last"]))]

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
