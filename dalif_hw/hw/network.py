"""A network in hardware: neuron arrays chained through their event streams, then a readout
(or none: the last array's output stream is the network's).

The streams need no glue: an array's output (neuron index, eot) is the next one's input.
Every layer works on its own timestep, so layer k accumulates timestep t while layer k+1 is
still on t-1. Each layer keeps its own configuration port, ``cfg_<layer>``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..quant.packed import Network
from .neuron_array import NeuronArray
from .pool import SpikePool
from .readout import Readout, class_layout, logits_layout
from .streams import ConfigSignature, event_signature

__all__ = ["NetworkTop"]


class NetworkTop(wiring.Component):
    """The hardware of a :class:`~dalif_hw.network.Network`.

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
        Each layer's configuration port.

    ``weight_images`` maps layer names to initial weight-memory words (see
    :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`); ``weight_ram`` where every layer keeps
    its weights (:func:`dalif_hw.hw.accumulate.weight_memory`), ``fifo_ram`` its spike FIFO
    (:class:`~dalif_hw.hw.serialize.SpikeSerializer`); ``dsp_blocks`` the DSP blocks all
    layers may use together (:class:`~dalif_hw.hw.update.NeuronUpdate`; default: no limit).
    """

    def __init__(self, network: Network, multipliers: str = "dsp",
                 weight_images: dict | None = None, weight_ram: str = "block",
                 fifo_ram: str = "distributed", dsp_blocks: int | None = None):
        if not isinstance(network, Network):
            raise TypeError(f"network must be a Network, not {network!r}")
        self.network = network
        images = weight_images or {}
        # A neuron array per dense or conv2d layer, a stage per pooling layer; the DSP
        # blocks go to the layers in order, each taking what it can use.
        self.layers = []
        for layer in network.layers[:len(network.layers) - network.has_readout]:
            if layer.pool is not None:
                self.layers.append(SpikePool(layer.pool))
                continue
            array = NeuronArray(layer.config, layer.params, multipliers=multipliers,
                                weight_image=images.get(layer.name), weight_ram=weight_ram,
                                fifo_ram=fifo_ram, dsp_blocks=dsp_blocks)
            if dsp_blocks is not None:
                dsp_blocks -= sum(array.update.dsp_lanes)
            self.layers.append(array)
        members = {"i": In(event_signature(network.inputs)), "err": Out(1)}
        if network.has_readout:
            readout = network.layers[-1]
            self.layers.append(Readout(readout.config, readout.params,
                                       weight_image=images.get(readout.name),
                                       weight_ram=weight_ram))
            members["logits"] = Out(stream.Signature(logits_layout(readout.config)))
            members["class"] = Out(stream.Signature(class_layout(readout.config)))
        else:
            members["o"] = Out(event_signature(network.outputs))
        for layer, hw in zip(network.layers, self.layers):
            if not isinstance(hw, SpikePool):
                members[f"cfg_{layer.name}"] = In(ConfigSignature(**hw.cfg_widths))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for layer, hw in zip(self.network.layers, self.layers):
            m.submodules[layer.name] = hw
            if not isinstance(hw, SpikePool):
                wiring.connect(m, wiring.flipped(getattr(self, f"cfg_{layer.name}")), hw.cfg)
        wiring.connect(m, wiring.flipped(self.i), self.layers[0].i)
        for before, after in zip(self.layers, self.layers[1:]):
            wiring.connect(m, before.o, after.i)
        last = self.layers[-1]
        if self.network.has_readout:
            wiring.connect(m, last.logits, wiring.flipped(self.logits))
            wiring.connect(m, getattr(last, "class"), wiring.flipped(getattr(self, "class")))
        else:
            wiring.connect(m, last.o, wiring.flipped(self.o))
        m.d.comb += self.err.eq(Cat(*[hw.err for hw in self.layers]).any())
        return m
