"""A UART (8 data bits, no parity, one stop bit) and the link's CRC-16, in Amaranth.

``divisor`` clock cycles a bit, at least 4. The receiver synchronises its line through two
flip-flops, checks the start bit in the middle, samples each bit in the middle and drops a
byte whose stop bit is 0. The transmitter takes a byte only when the line is idle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "crc16_update"]


def _check_divisor(divisor: int) -> None:
    if not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"a UART needs at least 4 clock cycles a bit, not {divisor!r}")


class UartRx(wiring.Component):
    """``rx`` line in, bytes out on ``o`` (a byte not taken before the next one arrives is
    lost: the link takes every byte it is given, or stops reading by protocol)."""

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        sync = Signal(2, init=0b11)
        m.d.sync += sync.eq(Cat(self.rx, sync[0]))
        line = sync[1]
        timer = Signal(range(d + d // 2 + 1))
        bits = Signal(range(9))
        shift = Signal(8)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"                   # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(d - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(bits != 8):
                    m.d.sync += [timer.eq(d - 1), bits.eq(bits + 1),
                                 shift.eq(Cat(shift[1:], line))]
                with m.Elif(line):                    # a good stop bit
                    m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.next = "BREAK"                  # a framing error: the byte is dropped
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """Bytes in on ``i``, the ``tx`` line out (idle high)."""

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        bits = Signal(range(11))
        shift = Signal(10, init=0x3FF)
        m.d.comb += [self.tx.eq(shift[0]), self.i.ready.eq(bits == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shift.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                         bits.eq(10), timer.eq(d - 1)]
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), bits.eq(bits - 1),
                             timer.eq(d - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


def _crc16_terms() -> list[tuple[frozenset, frozenset]]:
    """For each bit of CRC-16/CCITT-FALSE after one byte: the bits of the old CRC and of the
    byte whose XOR it is (the serial algorithm run on symbols, most significant bit first)."""
    crc = [(frozenset([k]), frozenset()) for k in range(16)]
    for i in reversed(range(8)):
        feedback = (crc[15][0], crc[15][1] ^ {i})
        shifted = [(frozenset(), frozenset())] + crc[:15]
        crc = [(c ^ feedback[0], d ^ feedback[1]) if (0x1021 >> k) & 1 else (c, d)
               for k, (c, d) in enumerate(shifted)]
    return crc


def crc16_update(crc: Value, byte: Value) -> Value:
    """CRC-16/CCITT-FALSE of ``crc`` extended by ``byte``: one XOR of a few bits per output
    bit (:func:`dalif_hw.core.protocol.crc16` is the reference)."""
    crc, byte = Value.cast(crc), Value.cast(byte)
    bits = []
    for crc_bits, byte_bits in _crc16_terms():
        terms = [crc[k] for k in sorted(crc_bits)] + [byte[k] for k in sorted(byte_bits)]
        bit = terms[0]
        for term in terms[1:]:
            bit = bit ^ term
        bits.append(bit)
    return Cat(*bits)
