"""The host driver expects anything (issue 25): every frame a board could send, however
short, malformed or out of order, ends in one ProtocolError line, never another exception,
and every wait ends within its timeout. A fake board answers each frame the host sends
with random and mutated frames."""

from __future__ import annotations

import numpy as np
import pytest

from dalif_hw.core.protocol import (
    HASH_BYTES,
    INFO_BYTES,
    Frame,
    ProtocolError,
    design_hash,
    encode_frame,
)
from dalif_hw.host.driver import Board


class FakePort:
    """A serial port whose board answers every write with the next scripted bytes."""

    def __init__(self, answers):
        self.answers, self.pending = list(answers), b""
        self.in_waiting = 0

    def write(self, data):
        if self.answers:
            self.pending += self.answers.pop(0)

    def read(self, size):
        data, self.pending = self.pending[:size], self.pending[size:]
        return data


MANIFEST = {"streams": {"logits": {}}, "params": {"classes": 3, "T": 2}, "layers": []}


def good_info(buffer_bytes=64, value_bytes=2):
    payload = design_hash(MANIFEST) + bytes([1, 0]) + buffer_bytes.to_bytes(2, "little") + \
        bytes([value_bytes, 0])
    assert len(payload) == INFO_BYTES
    return encode_frame(Frame.INFO_REPLY, payload)


#: One-line errors for the findings of the probe, each from the frame named.
CASES = {
    "an ERROR frame of 0 bytes": [encode_frame(Frame.ERROR, b"")],
    "an ERROR frame of 1 bytes": [encode_frame(Frame.ERROR, b"\x01")],
    "INFO_REPLY says a buffer of 64 bytes and 0 value bytes": [good_info(value_bytes=0)],
    "INFO_REPLY says a buffer of 1 bytes": [good_info(buffer_bytes=1)],
    "INFO_REPLY says a buffer of 0 bytes": [good_info(buffer_bytes=0)],
    "INFO_REPLY has 3 bytes": [encode_frame(Frame.INFO_REPLY, b"abc")],
    "a RESULT frame of 1 bytes": [good_info(), encode_frame(Frame.RESULT, b"\x00")],
    "a RESULT frame of 6 bytes": [good_info(), encode_frame(Frame.RESULT, bytes(6))],
    "no answer from the board within": [],
}


@pytest.mark.parametrize("message", CASES)
def test_each_malformed_answer_is_one_protocol_error(message):
    board = Board(FakePort(CASES[message]), MANIFEST, timeout=0.05)
    with pytest.raises(ProtocolError, match=message):
        board.check()
        board.run(np.zeros((2, 4), int))


def random_frame(rng):
    kind = int(rng.choice([*map(int, Frame), int(rng.integers(0, 256))]))
    size = int(rng.choice([0, 1, 2, 3, 5, 8, INFO_BYTES, int(rng.integers(0, 40))]))
    payload = bytes(rng.integers(0, 256, size).tolist())
    if kind == Frame.INFO_REPLY and size == INFO_BYTES and rng.random() < 0.5:
        payload = design_hash(MANIFEST) + payload[HASH_BYTES:]    # past the hash check
    frame = bytearray(encode_frame(kind, payload))
    if rng.random() < 0.2:                   # a mutated byte: a bad CRC, length or sync
        frame[int(rng.integers(0, len(frame)))] ^= 1 << int(rng.integers(0, 8))
    if rng.random() < 0.1:                   # cut short
        frame = frame[:int(rng.integers(0, len(frame)))]
    return bytes(frame)


@pytest.mark.parametrize("seed", range(300))
def test_random_and_mutated_frames_end_in_protocol_errors(seed):
    rng = np.random.default_rng(seed)
    answers = [good_info()] if seed % 2 else []
    answers += [b"".join(random_frame(rng) for _ in range(int(rng.integers(1, 4))))
                for _ in range(6)]
    manifest = dict(MANIFEST) if seed % 3 else {"streams": {}, "params": {"T": 2},
                                                "layers": []}
    board = Board(FakePort(answers), manifest, timeout=0.02)
    try:
        board.check()
        for _ in range(3):
            board.run(np.ones((2, 4), int))
    except ProtocolError as exc:
        assert "\n" not in str(exc)
