"""The host side of the link: talk to a board top (:mod:`dalif_hw.hw.board`) over a serial
port (pyserial, or anything with its ``write`` and ``read``), docs/boards.md.

    board = Board(serial.Serial("/dev/ttyUSB1", 1_000_000, timeout=1), manifest)
    board.check()              # the design's hash, or DesignMismatch
    board.load(network)        # every layer's parameters, over CONFIG frames
    logits, cls = board.classify(spikes[0])   # one sample [T][inputs] of 0/1

The protocol is stop and wait: each frame's answer is read before the next frame goes.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..core.layout import config_writes
from ..core.protocol import (
    EOT_BIT,
    HASH_BYTES,
    HEADER_BYTES,
    INFO_BYTES,
    Error,
    Frame,
    FrameDecoder,
    ProtocolError,
    design_hash,
    encode_frame,
)

__all__ = ["Board", "Info", "DesignMismatch", "network_manifest_of", "config_frames",
           "event_payloads"]


class DesignMismatch(ProtocolError):
    """The board runs a different design than the host expects."""


@dataclasses.dataclass
class Info:
    """What INFO_REPLY says."""

    design_hash: bytes
    version: int
    err: bool
    buffer_bytes: int
    value_bytes: int
    ports: int


@dataclasses.dataclass
class LinkStats:
    """Bytes each way and frames sent."""

    sent: int = 0
    received: int = 0
    frames: int = 0


def network_manifest_of(network) -> dict:
    """The manifest of the hardware generated from a packed :class:`Network` (what the board's
    hash covers), without elaborating or writing anything."""
    from ..hw.board import design_manifest
    from ..hw.network import NetworkTop

    return design_manifest(NetworkTop(network))


def _config_layers(manifest: dict) -> list[dict]:
    """The manifest entries that have a configuration port, in port order."""
    if "layers" not in manifest:
        return [manifest]
    return [layer for layer in manifest["layers"] if "config" in layer]


def config_frames(manifest: dict, params_per_layer: list, value_bytes: int,
                  buffer_bytes: int) -> list[bytes]:
    """CONFIG payloads that write ``params_per_layer`` (one per configuration port).

    The writes of each memory are sorted by word and lane, and runs that follow each other
    (lane by lane, then the next word) share one header.
    """
    per_frame = (buffer_bytes - HEADER_BYTES) // value_bytes
    payloads = []
    for layer, (entry, params) in enumerate(zip(_config_layers(manifest), params_per_layer)):
        lanes = {mem["select"]: mem["lanes"] for mem in entry["memories"]}
        writes = sorted(config_writes(entry, params))
        run: list = []

        def flush():
            if run:
                sel, addr, lane, _ = run[0]
                header = bytes([layer, sel]) + addr.to_bytes(2, "little") + \
                    bytes([lane, lanes.get(sel, 1)])
                payloads.append(header + b"".join(
                    w[3].to_bytes(value_bytes, "little") for w in run))
                run.clear()

        for write in writes:
            if run:
                sel, addr, lane, _ = run[-1]
                wrap = lanes.get(sel, 1)
                follows = (sel, addr + (lane + 1 == wrap), (lane + 1) % wrap) == write[:3]
                if not follows or len(run) == per_frame:
                    flush()
            run.append(write)
        flush()
    return payloads


def event_payloads(sample: np.ndarray, buffer_bytes: int) -> list[bytes]:
    """EVENTS payloads of one sample: ``sample`` [T][inputs] of 0/1 (or counts: an input's
    count is the number of its beats in that timestep), each timestep's beats in ascending
    index order, then ``eot``; split into frames of at most ``buffer_bytes``."""
    beats = []
    for step in np.asarray(sample):
        for index in np.flatnonzero(step):
            beats += [int(index)] * int(step[index])
        beats.append(1 << EOT_BIT)
    data = b"".join(b.to_bytes(2, "little") for b in beats)
    size = buffer_bytes - buffer_bytes % 2
    return [data[k:k + size] for k in range(0, len(data), size)]


class Board:
    """A board top on ``port`` running the design of ``manifest`` (see the module docstring).

    Parameters
    ----------
    port
        An open serial port: ``write(bytes)``, ``read(n)`` returning at most n bytes (fewer
        once its own timeout passes).
    manifest : dict
        The design's manifest (:func:`network_manifest_of` for a packed network).
    timeout : float
        Seconds to wait for an answer.
    """

    def __init__(self, port, manifest: dict, timeout: float = 5.0):
        self.port = port
        self.manifest = manifest
        self.timeout = timeout
        self.stats = LinkStats()
        self._decoder = FrameDecoder()
        self._frames: list[tuple[int, bytes]] = []
        self._info: Info | None = None

    # -- frames ------------------------------------------------------------------------------

    def send(self, kind: Frame, payload: bytes = b"") -> None:
        data = encode_frame(kind, payload)
        self.port.write(data)
        self.stats.sent += len(data)
        self.stats.frames += 1

    def receive(self) -> tuple[int, bytes]:
        """The next frame from the board; ERROR raises :class:`ProtocolError`."""
        deadline = time.monotonic() + self.timeout
        while not self._frames:
            if time.monotonic() > deadline:
                raise ProtocolError(f"no answer from the board within {self.timeout:g} s")
            data = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
            self.stats.received += len(data)
            self._frames += self._decoder.feed(data)
        kind, payload = self._frames.pop(0)
        if kind == Frame.ERROR:
            if len(payload) != 2:
                raise ProtocolError(f"an ERROR frame of {len(payload)} bytes, expected 2 (the "
                                    "error and the frame type refused)")
            try:
                code = Error(payload[0]).name
            except ValueError:
                code = payload[0]
            raise ProtocolError(f"the board refused a frame of type 0x{payload[1]:02x}: "
                                f"error {code}")
        return kind, payload

    def expect(self, kind: Frame) -> bytes:
        got, payload = self.receive()
        if got != kind:
            raise ProtocolError(f"expected a {kind.name} frame from the board, got type "
                                f"0x{got:02x}")
        return payload

    # -- operations --------------------------------------------------------------------------

    def info(self) -> Info:
        self.send(Frame.INFO)
        p = self.expect(Frame.INFO_REPLY)
        if len(p) != INFO_BYTES:
            raise ProtocolError(f"INFO_REPLY has {len(p)} bytes, expected {INFO_BYTES}")
        info = Info(design_hash=p[:HASH_BYTES], version=p[HASH_BYTES],
                    err=bool(p[HASH_BYTES + 1] & 1),
                    buffer_bytes=int.from_bytes(p[HASH_BYTES + 2:HASH_BYTES + 4], "little"),
                    value_bytes=p[HASH_BYTES + 4], ports=p[HASH_BYTES + 5])
        if info.buffer_bytes < 2 or info.value_bytes < 1:
            raise ProtocolError(f"INFO_REPLY says a buffer of {info.buffer_bytes} bytes and "
                                f"{info.value_bytes} value bytes a write: no frame fits")
        self._info = info
        return info

    def check(self) -> Info:
        """INFO, and the design's hash against the manifest's.

        Raises
        ------
        DesignMismatch
            If the board runs another design.
        """
        info = self.info()
        want = design_hash(self.manifest)
        if info.design_hash != want:
            raise DesignMismatch(f"the board runs design {info.design_hash.hex()}, not "
                                 f"{want.hex()} (the network given): build and program its "
                                 f"bitstream, or give the network it was built from")
        return info

    def configure(self, params_per_layer: list) -> int:
        """Write every configuration port's parameters; return the number of writes."""
        info = self._info or self.info()
        writes = 0
        for payload in config_frames(self.manifest, params_per_layer, info.value_bytes,
                                     info.buffer_bytes):
            self.send(Frame.CONFIG, payload)
            ack = self.expect(Frame.ACK)
            if len(ack) != 2:
                raise ProtocolError(f"an ACK of {len(ack)} bytes, expected 2 (the writes made)")
            count = int.from_bytes(ack, "little")
            want = (len(payload) - HEADER_BYTES) // info.value_bytes
            if count != want:
                raise ProtocolError(f"the board made {count} writes of a CONFIG frame of {want}")
            writes += count
        return writes

    def load(self, network) -> int:
        """Load a packed network's parameters (every layer with a configuration port)."""
        return self.configure([layer.params for layer in network.weighted])

    def run(self, sample) -> tuple[np.ndarray, int] | list[list[int]]:
        """One sample [T][inputs] through the design: ``(logits, class)`` with a readout,
        else the output spikes per timestep (neuron indices)."""
        info = self._info or self.info()
        for payload in event_payloads(sample, info.buffer_bytes):
            self.send(Frame.EVENTS, payload)
        if "logits" in self.manifest["streams"]:
            p = self.expect(Frame.RESULT)
            classes = self.manifest["params"]["classes"]
            size = (len(p) - 2) // classes
            if size < 1 or len(p) != classes * size + 2:
                raise ProtocolError(f"a RESULT frame of {len(p)} bytes: not {classes} logits "
                                    "of equal width and a 2-byte class")
            logits = np.array([int.from_bytes(p[k * size:(k + 1) * size], "little", signed=True)
                               for k in range(classes)], dtype=np.int64)
            return logits, int.from_bytes(p[-2:], "little")
        steps: list[list[int]] = [[]]
        T = self.manifest["params"]["T"]
        while len(steps) <= T:
            p = self.expect(Frame.SPIKES)
            if len(p) % 2:
                raise ProtocolError(f"a SPIKES frame of {len(p)} bytes: beats are 2 bytes")
            for k in range(0, len(p), 2):
                beat = int.from_bytes(p[k:k + 2], "little")
                if beat >> EOT_BIT:
                    steps.append([])
                else:
                    steps[-1].append(beat)
        return steps[:T]
