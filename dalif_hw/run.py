"""``python -m dalif_hw.run``: a network on a real board, over its serial link.

    python -m dalif_hw.run --port /dev/ttyUSB1 --network runs/digits/packed
    python -m dalif_hw.run --port /dev/ttyUSB1 --network packed --stimulus s.npz

Checks that the board runs the design built from ``--network`` (the hash of its manifest),
loads every layer's parameters over the link, runs the held-out digits (or the stimulus),
compares every result with the integer twin and prints accuracy, inferences per second and
the link's share of the time. The last line is a JSON summary; exit status 1 when a result
differs from the twin. Program the board first with its usual tool (docs/boards.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from . import cli
from .core.config import ConfigError
from .core.params import load_stimulus
from .core.protocol import DEFAULT_BAUD, check_link_indices
from .quant.packed import Network

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.run",
        description="Load a packed network onto a board over its serial link, run samples "
                    "and compare each result with the integer twin.")
    parser.add_argument("--port", required=True,
                        help="serial port, e.g. /dev/ttyUSB1 (or a pyserial URL such as "
                             "rfc2217://host:4000 for a board on another machine)")
    parser.add_argument("--network", required=True, metavar="DIR",
                        help="packed network folder the bitstream was built from")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                        help="the link's rate, as built (default: %(default)s)")
    parser.add_argument("--stimulus", metavar="NPZ",
                        help="input spikes instead of the held-out digits ('spikes' or "
                             "'counts', SPEC 4)")
    parser.add_argument("--samples", type=int, metavar="S", help="only the first S samples")
    parser.add_argument("--no-load", action="store_true",
                        help="keep the parameters on the board (loaded before)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="wait this long for each answer (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.check_positive(("--samples", args.samples), ("--baud", args.baud))
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise ConfigError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    network = Network.load(args.network)
    check_link_indices(network.inputs, None if network.has_readout else network.outputs,
                       f"network {args.network!r}")
    labels = None
    if args.stimulus:
        spikes = load_stimulus(args.stimulus, network.inputs, network.T)[:args.samples]
    else:
        from .model.train import held_out_stimulus

        spikes, labels, _ = held_out_stimulus(network, args.samples,
                                              f"network {args.network!r}")
    try:
        import serial
    except ImportError:
        raise ConfigError("python -m dalif_hw.run needs pyserial: pip install pyserial") \
            from None
    from .host import Board, network_manifest_of
    from .host.session import evaluate

    manifest = network_manifest_of(network)
    try:
        port = serial.serial_for_url(args.port, args.baud, timeout=0.05)
    except (serial.SerialException, ValueError) as exc:    # ValueError: a malformed URL
        raise ConfigError(f"cannot open --port {args.port!r}: {exc}") from None
    with port:
        port.reset_input_buffer()
        board = Board(port, manifest, timeout=args.timeout)
        summary = evaluate(board, network, spikes, labels, bit_seconds=1 / args.baud,
                           load=not args.no_load)
    print(report(summary))
    print(json.dumps(summary))
    return 0 if summary["mismatches"] == 0 else 1


def report(summary: dict) -> str:
    """The summary of :func:`dalif_hw.host.session.evaluate` as lines for people."""
    lines = [f"design:              {summary['design']}",
             f"samples:             {summary['samples']}"]
    if "writes" in summary:
        lines.append(f"parameters loaded:   {summary['writes']} writes, "
                     f"{summary['load_bytes']} bytes in {summary['load_seconds']:.3f} s")
    if "board_acc" in summary:
        lines += [f"integer accuracy:    {summary['int_acc']:.4f}",
                  f"board accuracy:      {summary['board_acc']:.4f}"]
    lines.append(f"mismatches:          {summary['mismatches']}"
                 + (f" (first: {summary['first_mismatch']})" if summary["first_mismatch"]
                    else ""))
    if summary["inferences_per_second"]:
        lines += [f"inferences/second:   {summary['inferences_per_second']:.1f}",
                  f"link share of time:  {100 * summary['link_share']:.0f}% "
                  f"({summary['link_bytes']} bytes)"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(cli.run(main))
