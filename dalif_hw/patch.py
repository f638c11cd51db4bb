"""``python -m dalif_hw.patch``: new weights into a finished bitstream, without place and route.

    python -m dalif_hw.synth --target ecp5-25k --board ulx3s --neurons 64 --T 2 \\
        --placeholder-weights --out build/board
    python -m dalif_hw.patch build/board/dalif_array_board.config \\
        --swap build/board/dalif_array_weights.placeholder.hex trained/dalif_array_weights.hex \\
        --out build/board/trained.bit

The bitstream is built with random placeholder contents in the weight memories (so that
``ecpbram`` / ``icebram`` can find them); the patch replaces them with the new words (a
``.hex`` of the same memory in the same layout, as ``python -m dalif_hw.gen`` or
``python -m dalif_hw.pack`` write it) in the textual configuration (``.config`` for ECP5,
``.asc`` for iCE40) and packs the bitstream.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import cli
from .flow.bitstream import patch

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.patch",
        description="Swap block-RAM contents in a finished bitstream (ecpbram / icebram).")
    parser.add_argument("config", metavar="CONFIG",
                        help="textual configuration from the flow: ECP5 .config or iCE40 .asc")
    parser.add_argument("--swap", nargs=2, action="append", required=True,
                        metavar=("FROM", "TO"),
                        help="placeholder .hex in the bitstream and its replacement "
                             "(repeat for more memories)")
    parser.add_argument("--out", required=True, metavar="BITSTREAM",
                        help="bitstream to write (.bit for ECP5, .bin for iCE40); the patched "
                             "textual configuration is written beside it")
    args = parser.parse_args(argv)
    inputs = [args.config, *[p for pair in args.swap for p in pair]]
    out = cli.output_path(args.out, "--out", inputs)
    cli.output_path(out.with_suffix(Path(args.config).suffix),
                    "the patched configuration beside --out", inputs)
    out = patch(Path(args.config), [(Path(a), Path(b)) for a, b in args.swap], out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
