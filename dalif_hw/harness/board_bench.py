"""cocotb: a whole board top (:mod:`dalif_hw.hw.board`) on Verilator, driven by the host
driver (:mod:`dalif_hw.host`) over a simulated serial line.

The driver runs unchanged in a thread, on a :class:`SimSerial` port whose bytes two
coroutines turn into UART bits on ``uart_rx`` and back from ``uart_tx``, bit by bit. Time on
the board is the simulation's: the port counts clock cycles, and the session's clock is
``cycles / clock_hz``. The job (``DALIF_BOARD_JOB``, JSON) names the packed network, the
samples and the checks; the results go to ``DALIF_RESULTS``.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import traceback

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from ..core.protocol import Frame, ProtocolError, encode_frame
from ..host import Board, DesignMismatch, network_manifest_of
from ..host.session import evaluate
from ..quant.packed import Network

__all__ = ["SimSerial", "board_job"]


class SimSerial:
    """What the driver needs of a pyserial ``Serial``, between a thread and the simulation."""

    def __init__(self):
        self.to_board: queue.Queue[int] = queue.Queue()
        self.from_board: queue.Queue[int] = queue.Queue()
        self.cycles = 0

    def write(self, data: bytes) -> int:
        for b in data:
            self.to_board.put(b)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        out = bytearray()
        try:
            out.append(self.from_board.get(timeout=0.05))
            while len(out) < size:
                out.append(self.from_board.get_nowait())
        except queue.Empty:
            pass
        return bytes(out)

    @property
    def in_waiting(self) -> int:
        return self.from_board.qsize()


async def _host_to_board(dut, port: SimSerial, divisor: int):
    """Bytes the driver wrote, as UART frames on ``uart_rx`` (idle high)."""
    dut.uart_rx.value = 1
    while True:
        try:
            byte = port.to_board.get_nowait()
        except queue.Empty:
            await ClockCycles(dut.clk, divisor)
            continue
        for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
            dut.uart_rx.value = bit
            await ClockCycles(dut.clk, divisor)


async def _board_to_host(dut, port: SimSerial, divisor: int):
    """UART frames on ``uart_tx`` as bytes for the driver, sampled mid-bit."""
    while True:
        await FallingEdge(dut.uart_tx)
        await ClockCycles(dut.clk, divisor + divisor // 2)
        byte = 0
        for i in range(8):
            byte |= int(dut.uart_tx.value) << i
            await ClockCycles(dut.clk, divisor)
        assert int(dut.uart_tx.value) == 1, "the board sent a byte without its stop bit"
        port.from_board.put(byte)


def board_job(job: dict, port: SimSerial, clock_hz: float, divisor: int) -> dict:
    """What the thread does: the checks the job asks for, then a session."""
    network = Network.load(job["network"])
    manifest = network_manifest_of(network)
    board = Board(port, manifest, timeout=job.get("timeout", 300.0))
    out: dict = {"refusals": {}}
    # Another design's manifest: the driver refuses to go on.
    other = json.loads(json.dumps(manifest))
    other["params"]["T"] += 1
    try:
        Board(port, other, timeout=board.timeout).check()
        out["mismatch_refused"] = False
    except DesignMismatch as exc:
        out["mismatch_refused"] = str(exc)
    # Bad frames: each answered with ERROR, named in the driver's exception.
    bad_crc = bytearray(encode_frame(Frame.INFO))
    bad_crc[-1] ^= 0x40
    for name, data in (("crc", bytes(bad_crc)), ("type", encode_frame(0x55)),
                       ("cut", encode_frame(Frame.CONFIG, bytes(8))[:7])):
        port.write(data)
        board.stats.sent += len(data)
        try:
            board.receive()
            out["refusals"][name] = None
        except ProtocolError as exc:
            out["refusals"][name] = str(exc)
    stimulus = np.load(job["stimulus"])
    spikes = stimulus["spikes"]
    labels = stimulus["labels"] if "labels" in stimulus else None
    out["session"] = evaluate(board, network, spikes, labels, bit_seconds=divisor / clock_hz,
                              clock=lambda: port.cycles / clock_hz)
    return out


@cocotb.test()
async def board(dut):
    with open(os.environ["DALIF_BOARD_JOB"]) as f:
        job = json.load(f)
    clock_hz, divisor = job["clock_hz"], job["divisor"]
    # Simulated time is not the board's: the port counts cycles, and clock_hz makes seconds.
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.uart_rx.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    port = SimSerial()
    cocotb.start_soon(_host_to_board(dut, port, divisor))
    cocotb.start_soon(_board_to_host(dut, port, divisor))
    result: dict = {}

    def work():
        try:
            result.update(board_job(job, port, clock_hz, divisor))
        except BaseException:   # reported to the test, which fails with it
            result["error"] = traceback.format_exc()

    thread = threading.Thread(target=work, daemon=True)
    start = time.monotonic()
    thread.start()
    step = 64
    while thread.is_alive():
        await ClockCycles(dut.clk, step)
        port.cycles += step
    result["wall_seconds"] = time.monotonic() - start
    result["cycles"] = port.cycles
    with open(os.environ["DALIF_RESULTS"], "w") as f:
        json.dump(result, f)
