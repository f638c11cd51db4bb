"""A board top: a neuron array or network behind the host link, for real bitstreams.

Pins: ``uart_rx`` and ``uart_tx`` (the board's USB serial bridge), ``leds`` (LED 0 the
design's sticky ``err``, LED 1 the link busy, LED 2 toggles on every frame received, LED 3
on every frame sent); clock and reset come from the platform (``clk``, ``rst``). The link
(:mod:`dalif_hw.hw.link`) loads parameters, runs samples and returns results; docs/boards.md
has the protocol.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..core.protocol import SYNC, design_hash
from .link import HostLink
from .uart import UartRx, UartTx

__all__ = ["BoardTop", "design_manifest"]


def design_manifest(inner: wiring.Component) -> dict:
    """The manifest of ``inner`` (a NeuronArray or NetworkTop) whose hash the link reports."""
    from .emit import manifest, network_manifest
    from .network import NetworkTop

    if isinstance(inner, NetworkTop):
        return network_manifest(inner, "dalif_network")
    return manifest(inner, "dalif_array")


class BoardTop(wiring.Component):
    """``inner`` behind a UART host link at ``divisor`` clock cycles a bit, ``leds`` LEDs.

    Parameters
    ----------
    inner : wiring.Component
        A NeuronArray or NetworkTop.
    divisor : int
        Clock cycles a UART bit (:func:`dalif_hw.core.protocol.baud_divisor`).
    buffer_bytes, timeout_bytes : int
        The link's largest payload, and how many byte times a frame may pause before it is
        dropped.
    """

    def __init__(self, inner: wiring.Component, divisor: int, leds: int = 8,
                 buffer_bytes: int = 1024, timeout_bytes: int = 256):
        if leds < 4:
            raise ValueError(f"a board top needs at least 4 LEDs, not {leds}")
        self.inner = inner
        self.n_leds = leds
        self.divisor = divisor
        self.manifest = design_manifest(inner)
        self.link = HostLink(inner, design_hash(self.manifest), buffer_bytes=buffer_bytes,
                             timeout=timeout_bytes * 10 * divisor)
        self.receiver, self.transmitter = UartRx(divisor), UartTx(divisor)
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1),
                          "leds": Out(leds)})

    def elaborate(self, platform):
        m = Module()
        link = m.submodules.link = self.link
        rx = m.submodules.uart_rx = self.receiver
        tx = m.submodules.uart_tx = self.transmitter
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]
        wiring.connect(m, rx.o, link.rx)
        wiring.connect(m, link.tx, tx.i)
        frames_in, frames_out = Signal(), Signal()
        with m.If(link.rx.valid & link.rx.ready & (link.rx.payload == SYNC)):
            m.d.sync += frames_in.eq(~frames_in)
        with m.If(link.tx.valid & link.tx.ready & (link.tx.payload == SYNC)):
            m.d.sync += frames_out.eq(~frames_out)
        m.d.comb += self.leds.eq(Cat(self.inner.err, link.busy, frames_in, frames_out))
        return m
