"""ROMs whose output comes from block-RAM output registers.

A block RAM's read data arrives long after the clock without its output register (5.6 ns on
the ECP5, where Yosys leaves that register unused: :mod:`dalif_hw.flow.hardregs` moves a
plain flip-flop behind a block RAM into it). A ROM deeper than one block RAM is worse: Yosys
builds it of several, spread over the chip, and a multiplexer in the fabric picks the read
one, so the flip-flop behind the ROM is not the block RAMs' only load and stays in the
fabric; the index ROM of the MNIST-shaped network's first pool (9,216 words) then ran 4.9 ns
across the chip after those 5.6 (`benchmarks/results/conv.md`).

:func:`late_rom` builds the ROM of banks of at most one block RAM's depth for its width, puts
a plain register behind each bank (its block RAM's own) and the bank select (registered
twice, beside the read) picks among those registers: the word of a read comes a cycle later
than from one read port, from registers.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Shape, Signal
from amaranth.lib.memory import Memory

__all__ = ["late_rom", "bank_depth"]


def bank_depth(width: int) -> int:
    """Words of one ECP5 block RAM (18 kbit, DP16KD) for words of ``width`` bits: its
    deepest mode at least as wide (16384 x 1 ... 1024 x 18); wider words take several block
    RAMs side by side at 1024 (no multiplexer between them)."""
    for depth, bits in ((16384, 1), (8192, 2), (4096, 4), (2048, 9)):
        if width <= bits:
            return depth
    return 1024


def late_rom(m: Module, name: str, shape, init: list, addr, en):
    """A ROM of ``shape`` words ``init``, read at ``addr`` when ``en``; returns its data, which
    is what a read port's data (``Memory.read_port()``, the same ``addr`` and ``en``) was a
    cycle before: the word read at clock edge e is there from cycle e + 2, and stays until
    two cycles after the next read."""
    width = Shape.cast(shape).width
    depth = bank_depth(width)
    banks = [init[k:k + depth] for k in range(0, len(init), depth)] or [[]]
    words = []
    for b, part in enumerate(banks):
        rom = m.submodules[f"{name}{b}" if len(banks) > 1 else name] = Memory(
            shape=shape, depth=max(1, len(part)), init=part)
        port = rom.read_port()
        m.d.comb += [port.addr.eq(addr), port.en.eq(en)]
        word = Signal(width, name=f"{name}{b}_q", reset_less=True)
        m.d.sync += word.eq(port.data)
        words.append(word)
    result = Signal(shape, name=f"{name}_data")
    if len(banks) == 1:
        m.d.comb += result.eq(words[0])
        return result
    select = Signal(range(len(banks)), name=f"{name}_bank")
    select_q = Signal.like(select, name=f"{name}_bank_q", reset_less=True)
    with m.If(en):
        m.d.sync += select.eq(addr // depth)
    m.d.sync += select_q.eq(select)
    m.d.comb += result.eq(Array(words)[select_q])
    return result
