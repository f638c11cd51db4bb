"""The host link in ``amaranth.sim``: the UART, the CRC, and every frame type at byte level
against the protocol's Python side (:mod:`dalif_hw.core.protocol`, :mod:`dalif_hw.host`)
and the integer twin. The whole board top with the driver over a simulated serial line is
in sim/test_board.py."""

from __future__ import annotations

import binascii

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from dalif_hw import twin
from dalif_hw.core.params import IntParams, ReadoutParams
from dalif_hw.core.protocol import (
    Error,
    Frame,
    FrameDecoder,
    ProtocolError,
    baud_divisor,
    crc16,
    design_hash,
    encode_frame,
)
from dalif_hw.host.driver import config_frames, event_payloads
from dalif_hw.hw.board import design_manifest
from dalif_hw.hw.link import HostLink
from dalif_hw.hw.network import NetworkTop
from dalif_hw.hw.uart import UartRx, UartTx, crc16_update
from dalif_hw.quant.packed import Dense, Network, Readout


def small_network(rng, readout: bool = True, T: int = 2) -> Network:
    sizes = [7, 6, 4]
    hidden = IntParams(weight=rng.integers(-100, 100, (sizes[1], sizes[0])),
                       alpha=rng.integers(100, 257, sizes[1]), beta=rng.integers(0, 257, sizes[1]),
                       threshold=rng.integers(0, 90, sizes[1]),
                       bias=rng.integers(-20, 20, sizes[1]), VB=11)
    layers = [Dense("hidden0", hidden.config(T, lanes=4), hidden, 1.0)]
    if readout:
        out = ReadoutParams(weight=rng.integers(-128, 128, (sizes[2], sizes[1])),
                            bias=rng.integers(-60, 60, sizes[2]), VB=11)
        layers.append(Readout("readout", out.config(T, lanes=2), out, 1.0))
    return Network(T=T, encoding={"kind": "thermometer", "T": T, "max_value": 16.0},
                   layers=layers)


def test_crc_matches_the_reference():
    assert crc16(b"123456789") == 0x29B1            # CRC-16/CCITT-FALSE check value
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 40).tolist()
    crc_sig, byte = Signal(16), Signal(8)
    m = Module()
    out = Signal(16)
    m.d.comb += out.eq(crc16_update(crc_sig, byte))

    async def bench(ctx):
        crc = 0xFFFF
        for b in data:
            ctx.set(crc_sig, crc)
            ctx.set(byte, b)
            crc = ctx.get(out)
        assert crc == binascii.crc_hqx(bytes(data), 0xFFFF)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("divisor", [4, 7])
def test_uart_round_trip(divisor):
    m = Module()
    tx = m.submodules.tx = UartTx(divisor)
    rx = m.submodules.rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    data = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80, 0x37]
    got = []

    async def send(ctx):
        for b in data:
            ctx.set(tx.i.valid, 1)
            ctx.set(tx.i.payload, b)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def receive(ctx):
        ctx.set(rx.o.ready, 1)
        while len(got) < len(data):
            _, _, valid, payload = await ctx.tick().sample(rx.o.valid, rx.o.payload)
            if valid:
                got.append(payload)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_testbench(receive)
    sim.run_until(1e-6 * divisor * 10 * (len(data) + 3))
    assert got == data
    assert baud_divisor(12e6, 1_000_000) == 12 and baud_divisor(12e6, 3_000_000) == 4
    with pytest.raises(ValueError, match="3000000 baud is 4.2% off at 25 MHz"):
        baud_divisor(25e6, 3_000_000)


class ByteBench:
    """Frames in and out of a HostLink at byte level, one byte offered a cycle."""

    def __init__(self, link: HostLink):
        self.link = link
        self.decoder = FrameDecoder()
        self.frames: list[tuple[int, bytes]] = []

    async def send(self, ctx, data: bytes, pause: int = 0):
        for b in data:
            ctx.set(self.link.rx.valid, 1)
            ctx.set(self.link.rx.payload, b)
            await ctx.tick().until(self.link.rx.ready)
            ctx.set(self.link.rx.valid, 0)
            await ctx.tick().repeat(pause + 1)

    async def collect(self, ctx):
        ctx.set(self.link.tx.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(self.link.tx.valid,
                                                            self.link.tx.payload):
            if valid:
                self.frames += self.decoder.feed(bytes([payload]))

    async def answer(self, ctx, count: int = 1, limit: int = 20000):
        for _ in range(limit):
            if len(self.frames) >= count:
                break
            await ctx.tick()
        assert len(self.frames) >= count, f"no answer after {limit} cycles"
        got, self.frames = self.frames[:count], self.frames[count:]
        return got


def run_link(link, bench_fn):
    sim = Simulator(link)
    sim.add_clock(1e-6)
    bench = ByteBench(link)
    sim.add_process(bench.collect)

    async def main(ctx):
        await bench_fn(ctx, bench)

    sim.add_testbench(main)
    sim.run()


def test_link_frames_against_the_twin():
    """INFO, CONFIG (new parameters for both layers), EVENTS -> RESULT against the twin, and
    each refusal: bad CRC (nothing applied), unknown type, wrong length, unknown layer, and a
    frame cut off by the timeout."""
    rng = np.random.default_rng(3)
    built = small_network(rng)
    loaded = small_network(rng)
    top = NetworkTop(built)
    manifest = design_manifest(top)
    link = HostLink(top, design_hash(manifest), buffer_bytes=64, timeout=300)
    samples = (rng.random((3, built.T, built.inputs)) < 0.5).astype(int)
    _, want = twin.run_network(loaded, samples.astype(bool))
    assert (twin.run_network(built, samples.astype(bool))[1] != want).any()

    async def bench_fn(ctx, bench):
        await bench.send(ctx, encode_frame(Frame.INFO))
        [(kind, payload)] = await bench.answer(ctx)
        assert kind == Frame.INFO_REPLY and payload[:8] == design_hash(manifest)
        assert payload[8:] == bytes([1, 0]) + (64).to_bytes(2, "little") + bytes([2, 2])
        frames = config_frames(manifest, [layer.params for layer in loaded.layers], 2, 64)
        assert len(frames) > 2     # split by the 64-byte buffer
        for payload in frames:
            await bench.send(ctx, encode_frame(Frame.CONFIG, payload))
            [(kind, ack)] = await bench.answer(ctx)
            assert kind == Frame.ACK and int.from_bytes(ack, "little") == (len(payload) - 6) // 2
        # A CONFIG frame with a bad CRC is refused and not applied: it carries the built
        # network's first values, and the results below are the loaded network's.
        old = config_frames(manifest, [layer.params for layer in built.layers], 2, 64)[0]
        assert old != frames[0]
        bad = bytearray(encode_frame(Frame.CONFIG, old))
        bad[-1] ^= 1
        await bench.send(ctx, bytes(bad))
        assert await bench.answer(ctx) == [(Frame.ERROR, bytes([Error.CRC, Frame.CONFIG]))]
        for s, sample in enumerate(samples):
            for payload in event_payloads(sample, 64):
                await bench.send(ctx, encode_frame(Frame.EVENTS, payload))
            [(kind, result)] = await bench.answer(ctx)
            assert kind == Frame.RESULT
            logits = [int.from_bytes(result[2 * k:2 * k + 2], "little", signed=True)
                      for k in range(4)]
            assert logits == want[s].tolist(), f"sample {s}"
            assert int.from_bytes(result[-2:], "little") == int(np.argmax(want[s]))
        for frame, code, kind in (
                (encode_frame(0x42, b"x"), Error.TYPE, 0x42),
                (encode_frame(Frame.INFO, b"x"), Error.LENGTH, Frame.INFO),
                (encode_frame(Frame.EVENTS, b"abc"), Error.LENGTH, Frame.EVENTS),
                (encode_frame(Frame.CONFIG, b"\x07\x00\x00\x00\x00\x01\x00\x00"), Error.LAYER,
                 Frame.CONFIG),
                (encode_frame(Frame.EVENTS, bytes(66)), Error.LENGTH, Frame.EVENTS)):
            await bench.send(ctx, frame)
            assert await bench.answer(ctx) == [(Frame.ERROR, bytes([code, kind]))], frame
        # A host gone mid-frame: the link drops the frame after the timeout and answers.
        await bench.send(ctx, encode_frame(Frame.INFO)[:3])
        [(kind, payload)] = await bench.answer(ctx, limit=400)
        assert kind == Frame.ERROR and payload[0] == Error.TIMEOUT
        await bench.send(ctx, encode_frame(Frame.INFO))
        [(kind, _)] = await bench.answer(ctx)
        assert kind == Frame.INFO_REPLY

    run_link(link, bench_fn)


def test_link_spikes_of_a_network_without_readout():
    rng = np.random.default_rng(4)
    network = small_network(rng, readout=False, T=3)
    top = NetworkTop(network)
    link = HostLink(top, design_hash(design_manifest(top)), buffer_bytes=64, timeout=300)
    samples = (rng.random((2, network.T, network.inputs)) < 0.6).astype(int)
    traces, _ = twin.run_network(network, samples.astype(bool))
    want = traces[-1].spikes_out

    async def bench_fn(ctx, bench):
        for s, sample in enumerate(samples):
            for payload in event_payloads(sample, 64):
                await bench.send(ctx, encode_frame(Frame.EVENTS, payload))
            steps = [[]]
            while len(steps) <= network.T:
                [(kind, payload)] = await bench.answer(ctx)
                assert kind == Frame.SPIKES
                for k in range(0, len(payload), 2):
                    beat = int.from_bytes(payload[k:k + 2], "little")
                    if beat >> 15:
                        steps.append([])
                    else:
                        steps[-1].append(beat)
            for t in range(network.T):
                assert steps[t] == np.flatnonzero(want[s, t]).tolist(), f"sample {s} step {t}"

    run_link(link, bench_fn)


def test_run_command_failures_are_one_line(tmp_path, capsys):
    """``python -m dalif_hw.run``: a port that cannot be opened, and a line that answers
    nonsense (pyserial's loop:// echoes the host's own INFO frame back)."""
    from dalif_hw import cli, run

    network = small_network(np.random.default_rng(1))
    network.save(tmp_path / "net")
    spikes = np.random.default_rng(2).random((2, network.T, network.inputs)) < 0.5
    np.savez(tmp_path / "s.npz", spikes=spikes)
    common = ["--network", str(tmp_path / "net"), "--stimulus", str(tmp_path / "s.npz"),
              "--timeout", "1"]
    assert cli.run(run.main, ["--port", str(tmp_path / "no-such-tty"), *common]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot open --port '{tmp_path / 'no-such-tty'}': ")
    assert err.count("\n") == 1
    assert cli.run(run.main, ["--port", "loop://", *common]) == 1
    assert capsys.readouterr().err == ("error: expected a INFO_REPLY frame from the board, got "
                                       "type 0x01\n")
    assert cli.run(run.main, ["--port", "loop://", *common[:2], "--timeout", "0"]) == 1
    assert capsys.readouterr().err == ("error: --timeout must be a positive number of "
                                       "seconds, not 0.0\n")
    for bad in ("inf", "nan"):     # a wait without end is refused as well
        assert cli.run(run.main, ["--port", "loop://", *common[:4], "--timeout", bad]) == 1
        assert f"positive number of seconds, not {bad}" in capsys.readouterr().err
    assert cli.run(run.main, ["--port", "bogus://x", *common]) == 1
    assert capsys.readouterr().err == ("error: cannot open --port 'bogus://x': invalid URL, "
                                       "protocol 'bogus' not known\n")


def test_decoder_refuses_a_bad_crc():
    frame = bytearray(encode_frame(Frame.ACK, b"\x01\x00"))
    assert FrameDecoder().feed(b"\x00\x13" + bytes(frame)) == [(Frame.ACK, b"\x01\x00")]
    frame[-2] ^= 0x10
    with pytest.raises(ProtocolError, match="CRC"):
        FrameDecoder().feed(bytes(frame))

