"""A board top: a neuron array or network with a handful of pins, for real bitstreams.

The design under test keeps all its logic alive without its wide ports on pins:

- an LFSR feeds the input stream (spike beats and eot beats) and the output ready;
- the configuration port is loaded serially: ``cfg_in`` shifts one bit a cycle into a
  register as wide as the port (en, sel, addr, lane, data), and ``cfg_strobe`` writes it;
- every output beat is folded (XOR) into a register shown on the LEDs, with ``err`` on one.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BoardTop"]


class BoardTop(wiring.Component):
    """Wraps ``inner`` (a NeuronArray or NetworkTop) for a board with ``leds`` LEDs.

    Ports: ``cfg_in``, ``cfg_strobe`` (in), ``leds`` (out); clock and reset come from the
    platform (``clk``, ``rst``).
    """

    def __init__(self, inner: wiring.Component, leds: int = 8):
        self.inner = inner
        self.n_leds = leds
        super().__init__({"cfg_in": In(1), "cfg_strobe": In(1), "leds": Out(leds)})

    def elaborate(self, platform):
        m = Module()
        inner = m.submodules.inner = self.inner
        lfsr = Signal(24, init=0xACE1)
        m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[0] ^ lfsr[1] ^ lfsr[3] ^ lfsr[4]))

        # Input: a new beat whenever the last one was taken; about one in eight is an eot.
        payload = inner.i.payload
        m.d.comb += [inner.i.valid.eq(1),
                     payload.index.eq(lfsr[:len(payload.index)]),
                     payload.eot.eq(lfsr[20:23] == 0)]

        outputs = [name for name in ("o", "logits", "class") if hasattr(inner, name)]
        folded = Signal(self.n_leds)
        fold = folded
        for k, name in enumerate(outputs):
            stream = getattr(inner, name)
            m.d.comb += stream.ready.eq(lfsr[5 + k])
            with m.If(stream.valid & stream.ready):
                bits = Value.cast(stream.payload)
                chunks = [bits[i:i + self.n_leds] for i in range(0, len(bits), self.n_leds)]
                for chunk in chunks:
                    fold = fold ^ chunk
                m.d.sync += folded.eq(fold)

        # Configuration: one serial shift register per port, all written on the strobe.
        ports = [getattr(inner, name) for name in inner.signature.members
                 if name == "cfg" or name.startswith("cfg_")]
        for port in ports:
            fields = [port.sel, port.addr, port.lane, port.data]
            shift = Signal(sum(len(f) for f in fields))
            m.d.sync += shift.eq(Cat(self.cfg_in, shift[:-1]))
            m.d.comb += [Cat(*fields).eq(shift), port.en.eq(self.cfg_strobe)]

        m.d.comb += self.leds.eq(Cat(folded[:-1], inner.err))
        return m
