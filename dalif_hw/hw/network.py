"""A network in hardware: each layer's own component, wired as the network's graph (SPEC 7).

What a layer kind builds is registered with :func:`build` (a neuron array for dense and
conv2d, a pooling stage, a merge for an add, the readout). A stream that feeds several
layers goes through a :class:`~.graph.Fork`; a layer with several inputs takes them through
a :class:`~.graph.Merge` that offsets each input's indices (one layer over its inputs
concatenated). A chain needs neither: an array's output (neuron index, eot) is the next
one's input. Every layer works on its own timestep, so layer k accumulates timestep t while
layer k+1 is still on t-1. Each layer with parameters keeps its own configuration port,
``cfg_<layer>``.
"""

from __future__ import annotations

import functools
import itertools

from amaranth.hdl import Cat, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..quant.kinds import INPUT, Add, Pool, Readout, Spiking
from ..quant.packed import Network
from .graph import Fork, Merge
from .neuron_array import NeuronArray
from .pool import SpikePool, counted_pools, input_shifts
from .readout import Readout as ReadoutHW
from .readout import class_layout, logits_layout
from .streams import ConfigSignature, event_signature
from .update import DSP_WIDTH

__all__ = ["NetworkTop", "build"]


@functools.singledispatch
def build(layer, top: NetworkTop) -> wiring.Component:
    """The hardware of ``layer`` in ``top`` (whose options it takes: multipliers, weight
    images, memories, DSP blocks left), with an ``i`` or ``i<k>`` input stream per input and
    an ``o`` output stream (a readout: ``logits`` and ``class``). Registered per layer
    kind."""
    raise TypeError(f"no hardware for layer kind {type(layer).__name__}")


@build.register
def _(layer: Spiking, top):
    return NeuronArray(layer.config, layer.params, multipliers=top.multipliers,
                       weight_image=top.weight_images.get(layer.name),
                       weight_ram=top.weight_ram, fifo_ram=top.fifo_ram,
                       dsp_blocks=top.dsp_blocks, dsp_width=top.dsp_width,
                       shifts=top.shifts(layer))


@build.register
def _(layer: Readout, top):
    return ReadoutHW(layer.config, layer.params, weight_image=top.weight_images.get(layer.name),
                     weight_ram=top.weight_ram, shifts=top.shifts(layer))


@build.register
def _(layer: Pool, top):
    return SpikePool(layer.pool, counts=layer.name in top.counted)


@build.register
def _(layer: Add, top):
    return Merge([layer.in_size] * len(layer.inputs), [0] * len(layer.inputs), layer.out_size)


class NetworkTop(wiring.Component):
    """The hardware of a :class:`~dalif_hw.quant.packed.Network`.

    Attributes
    ----------
    i : In(stream)
        Input events over the network's inputs.
    logits, class : Out(stream)
        From the readout, one sample at a time (a network with a readout).
    o : Out(stream)
        The last array's spikes (a network without a readout), as an array's output.
    err : Out(1)
        Any layer dropped a beat.
    cfg_<layer> : In(ConfigSignature)
        Each layer's configuration port (layers with parameters).

    ``stages`` maps layer names to their hardware; ``merges`` a layer with several inputs to
    the merge in front of it; ``forks`` a stream with several consumers (a layer's name, or
    ``input``) to its fork; ``counted`` names the sum pools whose stream carries counts
    (:func:`~.pool.counted_pools`).

    ``weight_images`` maps layer names to initial weight-memory words (see
    :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`); ``weight_ram`` where every layer keeps
    its weights (:func:`dalif_hw.hw.accumulate.weight_memory`), ``fifo_ram`` its spike FIFO
    (:class:`~dalif_hw.hw.serialize.SpikeSerializer`); ``dsp_blocks`` the DSP blocks all
    layers may use together (:class:`~dalif_hw.hw.update.NeuronUpdate`; default: no limit),
    given to the layers in order, each taking what it can use.
    """

    def __init__(self, network: Network, multipliers: str = "dsp",
                 weight_images: dict | None = None, weight_ram: str = "block",
                 fifo_ram: str = "distributed", dsp_blocks: int | None = None,
                 dsp_width: int = DSP_WIDTH):
        if not isinstance(network, Network):
            raise TypeError(f"network must be a Network, not {network!r}")
        self.network = network
        self.multipliers, self.weight_ram, self.fifo_ram = multipliers, weight_ram, fifo_ram
        self.weight_images = weight_images or {}
        self.dsp_blocks, self.dsp_width = dsp_blocks, dsp_width
        self.stages, self.merges, self.forks = {}, {}, {}
        self.counted = counted_pools(network)
        for layer in network.layers:
            hw = self.stages[layer.name] = build(layer, self)
            if self.dsp_blocks is not None and isinstance(hw, NeuronArray):
                self.dsp_blocks -= hw.update.dsp_blocks
            if len(layer.inputs) > 1 and not isinstance(hw, Merge):
                sizes = [self._size(name) for name in layer.inputs]
                self.merges[layer.name] = Merge(
                    sizes, list(itertools.accumulate([0] + sizes[:-1])), layer.in_size)
        for name in (INPUT, *(layer.name for layer in network.layers)):
            consumers = network.consumers(name)
            if len(consumers) > 1:
                self.forks[name] = Fork(self._size(name), len(consumers))
        members = {"i": In(event_signature(network.inputs)), "err": Out(1)}
        last = network.layers[-1]
        if network.has_readout:
            readout = self.stages[last.name]
            members["logits"] = Out(stream.Signature(logits_layout(readout.config)))
            members["class"] = Out(stream.Signature(class_layout(readout.config)))
        else:
            members["o"] = Out(event_signature(network.outputs))
        for name, hw in self.stages.items():
            if "cfg" in hw.signature.members:
                members[f"cfg_{name}"] = In(ConfigSignature(**hw.cfg_widths))
        super().__init__(members)

    def shifts(self, layer) -> int:
        """The ``shift`` values of ``layer``'s input stream: 1 unless a counting pool feeds it."""
        return input_shifts(self.network, layer, self.counted)

    @property
    def layers(self) -> list:
        """Each layer's hardware, in network order."""
        return list(self.stages.values())

    def _size(self, name: str) -> int:
        return self.network.inputs if name == INPUT else self.network.layer(name).out_size

    def _sink(self, layer, slot: int):
        """Where input ``slot`` of ``layer`` enters its hardware."""
        hw = self.merges.get(layer.name, self.stages[layer.name])
        return getattr(hw, f"i{slot}") if isinstance(hw, Merge) else hw.i

    def elaborate(self, platform):
        m = Module()
        for name, hw in self.stages.items():
            m.submodules[name] = hw
            if f"cfg_{name}" in self.signature.members:
                wiring.connect(m, wiring.flipped(getattr(self, f"cfg_{name}")), hw.cfg)
        for name, merge in self.merges.items():
            m.submodules[f"{name}_merge"] = merge
            wiring.connect(m, merge.o, self.stages[name].i)
        for name, fork in self.forks.items():
            m.submodules[f"{name}_fork"] = fork
        for name in (INPUT, *(layer.name for layer in self.network.layers[:-1])):
            source = wiring.flipped(self.i) if name == INPUT else self.stages[name].o
            sinks = [self._sink(layer, layer.inputs.index(name))
                     for layer in self.network.consumers(name)]
            if name in self.forks:
                wiring.connect(m, source, self.forks[name].i)
                for out, sink in zip(self.forks[name].outputs(), sinks):
                    wiring.connect(m, out, sink)
            else:
                wiring.connect(m, source, sinks[0])
        last = self.stages[self.network.layers[-1].name]
        if self.network.has_readout:
            wiring.connect(m, last.logits, wiring.flipped(self.logits))
            wiring.connect(m, getattr(last, "class"), wiring.flipped(getattr(self, "class")))
        else:
            wiring.connect(m, last.o, wiring.flipped(self.o))
        parts = [*self.stages.values(), *self.merges.values(), *self.forks.values()]
        m.d.comb += self.err.eq(Cat(*[hw.err for hw in parts]).any())
        return m
