"""The readout layer: sums currents over a sample, emits logits and the class.

For each sample, ``logit_i = sum over t of (bias_i + sum of w_ij over the counted beats of
timestep t)`` (docs/network.md). The input side is the same :class:`SpikeAccumulator` as a
neuron array's, with one pass per sample (after the T-th ``eot``) instead of one per
timestep, so the accumulators sum over the whole sample, and the pass adds ``T * bias``. The
pass puts each group's logits into a FIFO; the output serialises them, one logit a cycle, on
``logits`` (``index``, ``value``, ``last`` on the N-th), then one beat on ``class`` with the
argmax (the lowest index among equal maxima).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..core.config import ArrayConfig, index_width
from ..core.layout import memories
from ..core.params import ReadoutParams
from .accumulate import (
    SpikeAccumulator,
    config_widths,
    config_write_port,
    lanes_of,
    read_in_step,
)
from .streams import ConfigSignature, event_signature

__all__ = ["Readout", "logits_layout", "class_layout"]


def logits_layout(config: ArrayConfig) -> data.StructLayout:
    return data.StructLayout({"index": index_width(config.neurons),
                              "value": signed(config.logit_width), "last": 1})


def class_layout(config: ArrayConfig) -> data.StructLayout:
    return data.StructLayout({"index": index_width(config.neurons)})


class Readout(wiring.Component):
    """A readout layer (see the module docstring).

    Parameters
    ----------
    config : ArrayConfig
        Neurons (classes), inputs, T, WB, VB, lanes and bias; DB, reset and the threshold
        mode do not apply.
    params : ReadoutParams
        Initial weights and biases, rewritable through ``cfg`` (weights select 0, bias 4).
    weight_image : list of int, optional
        Initial words of the weight memory instead of the parameters' (see
        :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`).
    shifts : int
        1 (default), or the input carries counts (:mod:`.streams`, behind a counting pool).

    Attributes
    ----------
    i : In(stream)
    logits : Out(stream)
        ``index``, ``value`` (signed ``config.logit_width`` bits), ``last``.
    cls : Out(stream)
        ``index``: the class. In Verilog ``class__valid`` and so on.
    err : Out(1)
    cfg : In(ConfigSignature)
    accumulator : SpikeAccumulator
        The input side (a submodule).
    fifo : dict of Signal
        Not ports, for checkers (:mod:`dalif_hw.hw.checks`): the logits FIFO's ``push``,
        ``pop`` and ``level``.
    """

    def __init__(self, config: ArrayConfig, params: ReadoutParams,
                 weight_image: list | None = None, weight_ram: str = "block", shifts: int = 1):
        if not isinstance(params, ReadoutParams):
            raise TypeError(f"params must be ReadoutParams, not {params!r}")
        self.config, self.params = config, params
        self.memory_specs = memories(config, params)
        self.fifo_depth = config.groups + SpikeAccumulator.LATENCY + SpikeAccumulator.SLACK
        self.cfg_widths = config_widths(self.memory_specs, max(config.WB, config.VB))
        self.accumulator = SpikeAccumulator(
            inputs=config.inputs, T=config.T, weights=self.memory_specs[0],
            acc_width=config.logit_width, base_width=config.out_index_width, pass_every=config.T,
            pass_gap=0, cfg_widths=self.cfg_widths, weight_image=weight_image,
            beat_cap=config.beat_cap, weight_ram=weight_ram, lanes=config.lanes,
            groups=config.groups, shifts=shifts, overlap=config.second_set)
        self.fifo = {"push": Signal(name="fifo_push"), "pop": Signal(name="fifo_pop"),
                     "level": Signal(range(self.fifo_depth + 1), name="fifo_level")}
        super().__init__({
            "i": In(event_signature(config.inputs, shifts)),
            "logits": Out(stream.Signature(logits_layout(config))),
            "class": Out(stream.Signature(class_layout(config))),
            "err": Out(1),
            "cfg": In(ConfigSignature(**self.cfg_widths)),
        })

    @property
    def cls(self):
        return getattr(self, "class")

    def elaborate(self, platform):
        m = Module()
        c = self.config
        P, G, N, T = c.lanes, c.groups, c.neurons, c.T
        LW = c.logit_width
        specs = {spec.name: spec for spec in self.memory_specs}
        iw = index_width(N)

        acc = m.submodules.accumulate = self.accumulator
        wiring.connect(m, wiring.flipped(self.i), acc.i)
        wiring.connect(m, wiring.flipped(self.cfg), acc.cfg)
        m.d.comb += self.err.eq(acc.err)

        # The pass adds T * bias, the bias of every timestep of the sample.
        if c.bias:
            mem = m.submodules.bias_mem = Memory(shape=unsigned(specs["bias"].width),
                                                 depth=G, init=specs["bias"].words)
            config_write_port(m, mem, specs["bias"], self.cfg)
            word = read_in_step(m, mem, acc.issue.g, "bias")
            m.d.comb += [acc.bias[p].eq(b * T) for p, b in enumerate(lanes_of(word, P, c.VB))]

        # -- the pass: logits of one group a cycle into the FIFO -----------------------------
        values = m.submodules.values = fifo.SyncFIFOBuffered(width=P * LW,
                                                             depth=self.fifo_depth)
        logits = [acc.pass_.payload.acc[p] for p in range(P)]
        m.d.comb += [self.fifo["push"].eq(values.w_en), self.fifo["pop"].eq(values.r_en),
                     self.fifo["level"].eq(values.level)]
        m.d.comb += [values.w_data.eq(Cat(*logits)), values.w_en.eq(acc.pass_.valid),
                     acc.room.eq(values.level + SpikeAccumulator.LATENCY +
                                 SpikeAccumulator.SLACK <= self.fifo_depth)]

        # -- output: one logit a cycle, then the class ---------------------------------------
        # The groups come in order, so the logit's index is a counter; the argmax runs one
        # cycle behind the output (on the logit just sent), and no logit of the next sample
        # goes out before the class beat of this one.
        head = values.r_data
        lane = Signal(range(P))
        index = Signal(iw)
        value = Signal(signed(LW))
        with m.Switch(lane):
            for p in range(P):
                with m.Case(p):
                    m.d.comb += value.eq(head[p * LW:(p + 1) * LW].as_signed())
        last = index == N - 1
        closing = Signal()           # the last logit went out; the class beat is to follow
        sent = {"valid": Signal(), "value": Signal(signed(LW), reset_less=True),
                "index": Signal(iw, reset_less=True), "last": Signal(reset_less=True)}
        best = Signal(signed(LW))
        best_index = Signal(iw)
        have_best = Signal()
        pending = Signal()           # the class beat waits to be taken
        cls = self.cls
        m.d.comb += [self.logits.valid.eq(values.r_rdy & ~closing),
                     self.logits.payload.index.eq(index),
                     self.logits.payload.value.eq(value),
                     self.logits.payload.last.eq(last),
                     cls.valid.eq(pending), cls.payload.index.eq(best_index)]
        m.d.sync += sent["valid"].eq(self.logits.valid & self.logits.ready)
        with m.If(self.logits.valid & self.logits.ready):
            m.d.sync += [sent["value"].eq(value), sent["index"].eq(index),
                         sent["last"].eq(last), index.eq(Mux(last, 0, index + 1))]
            with m.If(last):
                m.d.sync += closing.eq(1)
            with m.If(last | (lane == P - 1)):
                m.d.comb += values.r_en.eq(1)
                m.d.sync += lane.eq(0)
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        with m.If(sent["valid"]):
            with m.If(~have_best | (sent["value"] > best)):
                m.d.sync += [best.eq(sent["value"]), best_index.eq(sent["index"])]
            m.d.sync += have_best.eq(~sent["last"])
            with m.If(sent["last"]):
                m.d.sync += pending.eq(1)
        with m.If(cls.valid & cls.ready):
            m.d.sync += [pending.eq(0), closing.eq(0)]
        return m
