"""The host link's framed protocol: constants and frames shared by the board top
(:mod:`dalif_hw.hw.link`) and the host driver (:mod:`dalif_hw.host`); docs/boards.md.

A frame, either way::

    0xA5 | type (1) | length (2, little-endian) | payload (length bytes) | CRC-16 (2, big-endian)

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no
final XOR; ``binascii.crc_hqx(data, 0xFFFF)``) over type, length and payload. The host sends
one frame and waits for its answer (stop and wait): INFO is answered by INFO_REPLY, CONFIG by
ACK, EVENTS by the sample's results (RESULT for a network with a readout, SPIKES frames up to
the T-th ``eot`` otherwise), a bad frame by ERROR. A frame is applied only once it has
arrived whole with a good CRC; a frame that stops arriving for ``timeout`` byte times is
dropped and answered with ERROR (TIMEOUT).
"""

from __future__ import annotations

import binascii
import enum
import hashlib
import json

from .config import ConfigError

__all__ = ["LINK_INDICES", "check_link_indices", "SYNC", "VERSION", "DEFAULT_BAUD", "Frame",
           "Error", "crc16", "encode_frame", "FrameDecoder", "design_hash", "HASH_BYTES",
           "EOT_BIT", "HEADER_BYTES", "INFO_BYTES", "ProtocolError", "baud_divisor"]

SYNC = 0xA5
VERSION = 1
#: The link's default rate: what the boards' USB bridges (FT2232H, FT231X) carry reliably,
#: and what 12 and 25 MHz clocks divide exactly.
DEFAULT_BAUD = 1_000_000
HASH_BYTES = 8
#: CONFIG payload: layer (1), sel (1), addr (2, little-endian), lane (1), wrap (1), then values.
HEADER_BYTES = 6
#: An event in EVENTS and SPIKES payloads is 2 bytes, little-endian: index, eot in bit 15.
EOT_BIT = 15
#: So the link carries indices below 2**15: inputs and output spikes of at most this many.
LINK_INDICES = 1 << EOT_BIT


def check_link_indices(inputs: int, outputs: int | None, what: str) -> None:
    """Refuse a design whose input (or output spike) indices the link's 16-bit beats cannot
    carry: index 32,768 would set the eot bit."""
    for name, count in (("inputs", inputs), ("output spikes", outputs)):
        if count is not None and count > LINK_INDICES:
            raise ConfigError(f"{what} has {count} {name}: the host link's beats carry indices "
                              f"below {LINK_INDICES} (bit {EOT_BIT} is the end of a timestep)")
#: INFO_REPLY payload: hash (8), version (1), status (1: bit 0 the design's sticky err),
#: buffer bytes (2), value bytes of a CONFIG write (1), configuration ports (1).
INFO_BYTES = HASH_BYTES + 6


class Frame(enum.IntEnum):
    """Frame types: host to board below 0x80, board to host from 0x80."""

    INFO = 0x01
    CONFIG = 0x02
    EVENTS = 0x03
    INFO_REPLY = 0x81
    ACK = 0x82
    RESULT = 0x83
    SPIKES = 0x84
    ERROR = 0xFF


class Error(enum.IntEnum):
    """ERROR payload: code (1), the type of the frame it answers (1)."""

    CRC = 1        # the CRC did not match
    TYPE = 2       # unknown frame type
    LENGTH = 3     # payload longer than the board's buffer, or wrong for the type
    LAYER = 4      # CONFIG names a configuration port the design lacks
    TIMEOUT = 5    # the frame stopped arriving


class ProtocolError(RuntimeError):
    """The board answered with ERROR, or not as the protocol says."""


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data``."""
    return binascii.crc_hqx(bytes(data), 0xFFFF)


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    """One frame of type ``kind`` (a :class:`Frame`) carrying ``payload``."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"a frame's payload is at most 65535 bytes, not {len(payload)}")
    body = bytes([int(kind)]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "big")


class FrameDecoder:
    """Frames out of a byte stream: :meth:`feed` bytes, get ``(type, payload)`` tuples.

    Bytes before a sync byte are skipped; a frame with a bad CRC raises
    :class:`ProtocolError` (the board never sends one unless the line is bad).
    """

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames = []
        while True:
            start = self._buffer.find(SYNC)
            if start < 0:
                self._buffer.clear()
                return frames
            del self._buffer[:start]
            if len(self._buffer) < 4:
                return frames
            length = int.from_bytes(self._buffer[2:4], "little")
            end = 4 + length + 2
            if len(self._buffer) < end:
                return frames
            body = bytes(self._buffer[1:4 + length])
            crc = int.from_bytes(self._buffer[4 + length:end], "big")
            del self._buffer[:end]
            if crc16(body) != crc:
                raise ProtocolError(f"a frame of type 0x{body[0]:02x} from the board has CRC "
                                    f"0x{crc:04x}, expected 0x{crc16(body):04x}")
            frames.append((body[0], body[3:]))

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a frame."""
        return len(self._buffer)


def _structure(value):
    """A manifest without what does not change how the design is driven: initial values,
    ``init`` flags and file names."""
    if isinstance(value, dict):
        return {k: _structure(v) for k, v in value.items() if k not in ("init", "file", "top")}
    if isinstance(value, list):
        return [_structure(v) for v in value]
    return value


def design_hash(manifest: dict) -> bytes:
    """The design's identity on the link: the first 8 bytes of SHA-256 over its manifest's
    structure (ports, streams, layers, memory layouts and address maps; not the initial
    parameter values, memory ``init`` flags, file or top-module names)."""
    text = json.dumps(_structure(manifest), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).digest()[:HASH_BYTES]


def baud_divisor(clock_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clock_hz``; the rate must be within 2%.

    Raises
    ------
    ValueError
        If the divisor is below 4 or the rate it gives is more than 2% off.
    """
    if not baud > 0:
        raise ValueError(f"the baud rate must be positive, not {baud}")
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ValueError(f"{baud} baud needs at least 4 clock cycles a bit; a {clock_hz / 1e6:g} "
                         f"MHz clock gives {clock_hz / baud:.2f}")
    error = abs(clock_hz / divisor - baud) / baud
    if error > 0.02:
        raise ValueError(f"{baud} baud is {100 * error:.1f}% off at {clock_hz / 1e6:g} MHz "
                         f"(divisor {divisor}); UARTs need within 2%")
    return divisor
