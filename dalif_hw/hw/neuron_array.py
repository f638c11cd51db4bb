"""The DA-LIF neuron array: three components in a row.

N neurons in G = ceil(N/P) groups of P lanes.

- :class:`~dalif_hw.hw.accumulate.SpikeAccumulator` adds the weights of every input spike
  into the current accumulators, group by group, and on each ``eot`` issues the update pass,
  one group a cycle;
- :class:`~dalif_hw.hw.update.NeuronUpdate` runs the neurons of the group: decays, rounding,
  saturation, threshold, reset, write-back (its stages are ``update.STAGES``), and hands on
  the group's spike mask;
- :class:`~dalif_hw.hw.serialize.SpikeSerializer` queues the masks (empty ones skipped unless
  they end the timestep) and sends one beat per spike in ascending neuron order, then
  ``eot``, while the next timestep is already accumulating.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..core.config import ArrayConfig, ConfigError
from ..core.layout import conv_groups, conv_pass_groups, default_params, memories
from ..core.params import ConvParams, IntParams
from .accumulate import SpikeAccumulator, config_widths
from .conv_accumulate import ConvAccumulator
from .current_pool import CurrentPool
from .serialize import SpikeSerializer
from .streams import ConfigSignature, event_signature
from .update import DSP_WIDTH, MULTIPLIERS, PUSH_LATENCY, UPDATE_LATENCY, NeuronUpdate

__all__ = ["NeuronArray", "UPDATE_LATENCY", "PUSH_LATENCY", "MULTIPLIERS"]


def check_params(config: ArrayConfig, params: IntParams) -> None:
    """Raise :class:`ConfigError` unless ``params`` fit an array of ``config``."""
    for name, want, got in (("neurons", config.neurons, params.neurons),
                            ("inputs", config.inputs, params.inputs),
                            ("WB", config.WB, params.WB), ("DB", config.DB, params.DB),
                            ("VB", config.VB, params.VB), ("reset", config.reset, params.reset),
                            ("beat_cap", config.beat_cap, params.cap)):
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
        Initial parameters; by default :func:`dalif_hw.core.layout.default_params`. All of them
        can be rewritten at run time through ``cfg``.
    multipliers : str
        ``"dsp"`` (default): the decay products in DSP blocks, as many as ``dsp_blocks``
        allows, the rest as pipelined shift-and-add; ``"logic"``: all as shift-and-add, no
        DSP blocks (:class:`~dalif_hw.hw.update.NeuronUpdate`).
    dsp_blocks : int, optional
        At most this many DSP blocks (default: every product in DSP blocks).
    dsp_width : int
        The signed operand width of the target's DSP multiplier (default 18, ECP5's): a wider
        product takes several blocks.
    weight_image : list of int, optional
        Initial words of the weight memory instead of the parameters' (see
        :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`).
    weight_ram : str
        ``block`` or ``spram`` (:func:`dalif_hw.hw.accumulate.weight_memory`).
    fifo_ram : str
        ``distributed`` or ``block``: the spike FIFO's memory
        (:class:`~dalif_hw.hw.serialize.SpikeSerializer`).
    shifts : int
        1 (default), or the input carries counts (:mod:`.streams`: inside a network, behind a
        counting sum pool, :mod:`.pool`).

    Attributes
    ----------
    i : In(stream)
        Input events: ``index`` over M inputs, ``eot``.
    o : Out(stream)
        Output events: ``index`` over N neurons, ``eot``.
    err : Out(1)
        Sticky: a beat was dropped (index >= M, or beyond the M-th counted beat of a timestep).
    cfg : In(ConfigSignature)
        Configuration write port (see :mod:`dalif_hw.core.layout` for the address map).
    fifo_depth : int
        Depth of the spike-mask FIFO between the update and the output stage.
    accumulator : SpikeAccumulator
        The input side (a submodule).
    update : NeuronUpdate
        The neurons (a submodule).
    serializer : SpikeSerializer
        The output side (a submodule).
    accumulator_groups : int
        The groups of an update pass (a convolution that pools its currents: its pre-pool
        groups, the cycles of the pass; :attr:`groups` are the neurons').
    fifo : dict of Signal
        Not ports, for checkers (:mod:`dalif_hw.hw.checks`): the spike-mask FIFO's ``push``,
        ``pop`` and ``level``.
    """

    def __init__(self, config: ArrayConfig, params: IntParams | ConvParams | None = None,
                 multipliers: str = "dsp", weight_image: list | None = None,
                 weight_ram: str = "block", fifo_ram: str = "distributed",
                 dsp_blocks: int | None = None, dsp_width: int = DSP_WIDTH, shifts: int = 1):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        self.multipliers = multipliers
        if params is None:
            params = default_params(config)
        check_params(config, params)
        self.config = config
        self.params = params
        self.memory_specs = specs = memories(config, params)
        P = config.lanes
        conv = params.shape if isinstance(params, ConvParams) else None
        if conv is not None:
            params.check_acc_lanes(config.acc_lanes, P)
        if conv is None:
            self.groups, tail, channels = config.groups, config.neurons - (config.groups - 1) * P, 1
        else:
            self.groups, blocks = conv_groups(conv, P)
            tail, channels = conv.out_shape[2] - (blocks - 1) * P, conv.channels
        self.cfg_widths = config_widths(specs, max(config.WB, config.decay_width, config.VB))
        # A pass's operations (a pooled convolution's: its pre-pool groups) keep the update's
        # read of a group's membrane after the write of the pass before.
        self.accumulator_groups = self.groups if conv is None else \
            conv_pass_groups(conv, P, config.acc_lanes)
        common = dict(T=config.T, weights=specs[0], acc_width=config.current_width,
                      base_width=config.out_index_width, cfg_widths=self.cfg_widths,
                      pass_gap=UPDATE_LATENCY + 1 - self.accumulator_groups,
                      weight_image=weight_image, weight_ram=weight_ram, beat_cap=config.beat_cap,
                      shifts=shifts, overlap=config.second_set)
        if conv is None:
            self.accumulator = SpikeAccumulator(inputs=config.inputs, pass_every=1, lanes=P,
                                                groups=self.groups, **common)
        else:
            kind = ConvAccumulator if conv.pool is None else CurrentPool
            self.accumulator = kind(shape=conv, lanes=P, acc_lanes=config.acc_lanes, **common)
        # A power of two, so that the ring pointers wrap by themselves.
        slack = self.accumulator.SLACK
        self.fifo_depth = 1 << ceil_log2(2 * (self.groups + 1) + PUSH_LATENCY + slack)
        self.update = NeuronUpdate(config, params, specs[1:], self.cfg_widths, multipliers,
                                   dsp_blocks=dsp_blocks, dsp_width=dsp_width,
                                   groups=self.groups, tail=tail, channels=channels)
        self.serializer = SpikeSerializer(
            lanes=P, neurons=config.neurons, depth=self.fifo_depth,
            reserve=PUSH_LATENCY + slack,
            aligned=conv is None or conv.out_shape[2] % P == 0, fifo_ram=fifo_ram)
        self.fifo = self.serializer.fifo
        super().__init__({
            "i": In(event_signature(config.inputs, shifts)),
            "o": Out(event_signature(config.neurons)),
            "err": Out(1),
            "cfg": In(ConfigSignature(**self.cfg_widths)),
        })

    def elaborate(self, platform):
        m = Module()
        acc = m.submodules.accumulate = self.accumulator
        update = m.submodules.update = self.update
        out = m.submodules.serialize = self.serializer
        wiring.connect(m, wiring.flipped(self.i), acc.i)
        wiring.connect(m, wiring.flipped(self.cfg), acc.cfg, update.cfg)
        wiring.connect(m, acc.issue, update.issue)
        wiring.connect(m, acc.pass_, update.pass_)
        wiring.connect(m, update.push, out.push)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        m.d.comb += [acc.bias.eq(update.bias), acc.room.eq(out.room), self.err.eq(acc.err)]
        return m
