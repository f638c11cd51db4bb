"""Reusable cocotb drivers: an event source, a sink and an AXI-Stream hold monitor.

Each works on one manifest-named stream (:class:`StreamPort`) and takes a turn in every clock
cycle, in two phases that the bench calls in order:

1. ``drive()`` just after the falling edge: set valid / payload (source) or ready (sink);
2. ``observe(cycle)`` in the read-only phase before the rising edge: count the transfer.

How often a source holds valid low, and a sink holds ready low, is a *pattern* (a
:func:`pattern` spec: ``0.3`` or ``{"kind": "random", "p": 0.3}``, ``{"kind": "bursts",
"on": 5, "off": 2}``, ``{"kind": "periodic", "every": 3}``, ``{"kind": "none"}``), drawn from
the bench's seeded ``random.Random``. The source keeps valid up with the same payload until
the transfer, as AXI-Stream requires of a master; :class:`HoldMonitor` checks that the DUT
does the same on every output stream, and a case with a violation fails.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

__all__ = ["StreamPort", "pattern", "PATTERNS", "EventSource", "StreamSink", "HoldMonitor"]


class StreamPort:
    """A stream named in a manifest: its ``valid``, ``ready`` and ``payload`` handles, and
    the payload's fields (``{name: [lsb, width]}``) to pack and unpack."""

    def __init__(self, dut, stream: dict, name: str):
        self.name = name
        self.valid = getattr(dut, stream["valid"])
        self.ready = getattr(dut, stream["ready"])
        self.payload = getattr(dut, stream["payload"])
        self.fields = stream["fields"]

    def pack(self, **values) -> int:
        word = 0
        for name, value in values.items():
            lsb, width = self.fields[name]
            word |= (value & ((1 << width) - 1)) << lsb
        return word

    def unpack(self, word: int) -> dict:
        return {name: (word >> lsb) & ((1 << width) - 1)
                for name, (lsb, width) in self.fields.items()}


# -- patterns: an endless sequence of "hold low this cycle" ------------------------------------

def _random(rng: random.Random, p: float) -> Iterator[bool]:
    while True:
        yield rng.random() < p


def _bursts(rng: random.Random, on: int, off: int) -> Iterator[bool]:
    """Runs of about ``on`` cycles up, then about ``off`` low (lengths drawn 1 .. 2x)."""
    while True:
        for _ in range(rng.randint(1, max(1, 2 * on))):
            yield False
        for _ in range(rng.randint(1, max(1, 2 * off))):
            yield True


def _periodic(rng: random.Random, every: int) -> Iterator[bool]:
    while True:
        for k in range(every):
            yield k == every - 1


def _none(rng: random.Random) -> Iterator[bool]:
    while True:
        yield False


#: Pattern kinds and their parameters.
PATTERNS: dict[str, Callable[..., Iterator[bool]]] = {
    "random": _random, "bursts": _bursts, "periodic": _periodic, "none": _none}


def pattern(spec, rng: random.Random) -> Iterator[bool]:
    """The pattern ``spec`` describes: a number is the chance of a low cycle (``random``),
    a dict names a kind of :data:`PATTERNS` and its parameters."""
    if spec is None:
        return _none(rng)
    if isinstance(spec, (int, float)):
        return _random(rng, float(spec)) if spec > 0 else _none(rng)
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind not in PATTERNS:
        raise ValueError(f"unknown pattern kind {kind!r} (one of {', '.join(PATTERNS)})")
    return PATTERNS[kind](rng, **spec)


class EventSource:
    """Sends beats (dicts of payload fields) on ``port``, with gaps from ``gaps``."""

    def __init__(self, port: StreamPort, beats: list[dict], gaps, rng: random.Random):
        self.port, self.beats, self.gaps = port, beats, pattern(gaps, rng)
        self.sent = 0
        self.first_cycle = None
        self._holding = False

    @property
    def done(self) -> bool:
        return self.sent == len(self.beats)

    def drive(self) -> None:
        low = next(self.gaps)
        if not self.done and (self._holding or not low):
            self.port.payload.value = self.port.pack(**self.beats[self.sent])
            self.port.valid.value = 1
            self._holding = True
        else:
            self.port.valid.value = 0

    def observe(self, cycle: int) -> None:
        if int(self.port.valid.value) and int(self.port.ready.value):
            if self.first_cycle is None:
                self.first_cycle = cycle
            self.sent += 1
            self._holding = False

    def idle(self) -> None:
        self.port.valid.value = 0


class StreamSink:
    """Takes beats from ``port``, with back-pressure from ``backpressure``; ``beats`` holds
    ``(cycle, {field: value})`` of every transfer."""

    def __init__(self, port: StreamPort, backpressure, rng: random.Random):
        self.port, self.pattern = port, pattern(backpressure, rng)
        self.beats: list[tuple[int, dict]] = []

    def drive(self) -> None:
        self.port.ready.value = int(not next(self.pattern))

    def observe(self, cycle: int) -> None:
        if int(self.port.valid.value) and int(self.port.ready.value):
            self.beats.append((cycle, self.port.unpack(int(self.port.payload.value))))

    def idle(self) -> None:
        self.port.ready.value = 0


class HoldMonitor:
    """The AXI-Stream rule on a DUT's output: once valid is up it stays up, with the same
    payload, until the cycle the beat is taken. ``violations`` lists each break, with its
    cycle; the first fails the case."""

    def __init__(self, port: StreamPort):
        self.port = port
        self.violations: list[str] = []
        self._pending = None    # the payload offered but not taken last cycle

    def observe(self, cycle: int) -> None:
        valid = int(self.port.valid.value)
        payload = int(self.port.payload.value) if valid else None
        if self._pending is not None:
            if not valid:
                self.violations.append(f"stream {self.port.name}, cycle {cycle}: valid "
                                       "dropped before the beat was taken")
            elif payload != self._pending:
                self.violations.append(
                    f"stream {self.port.name}, cycle {cycle}: payload changed from "
                    f"{self.port.unpack(self._pending)} to {self.port.unpack(payload)} "
                    "while not ready")
        self._pending = payload if valid and not int(self.port.ready.value) else None

    def reset(self) -> None:
        """After the DUT's reset, nothing is pending."""
        self._pending = None
