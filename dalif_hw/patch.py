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
import shutil
import sys
import tempfile
from pathlib import Path

from . import cli
from .config import ConfigError
from .files import atomic_path
from .synth import ToolError, run_tool

__all__ = ["patch"]


def _words(path: Path) -> tuple[int, int]:
    lines = [line for line in path.read_text().split() if line]
    return len(lines), max((len(line) for line in lines), default=0)


#: ecpbram works on whole block RAMs of 512 words; the rest of a small memory's block RAM
#: holds zeros in the bitstream, so the images are padded with zero words to match.
ECP5_BLOCK_WORDS = 512


def _copy_padded(src: Path, dst: Path, family: str) -> None:
    lines = src.read_text().split()
    if family == "ecp5" and len(lines) % ECP5_BLOCK_WORDS:
        pad = ECP5_BLOCK_WORDS - len(lines) % ECP5_BLOCK_WORDS
        lines += ["0" * len(lines[0])] * pad
    dst.write_text("".join(f"{line}\n" for line in lines))


def patch(config: Path, swaps: list[tuple[Path, Path]], out: Path) -> Path:
    """Replace each ``(from, to)`` memory image in ``config`` and pack the bitstream ``out``.

    Raises
    ------
    ConfigError
        For missing files or images of different sizes.
    ToolError
        If ``ecpbram``/``icebram`` cannot find an image or a packer fails.
    """
    config = Path(config)
    family = {".config": "ecp5", ".asc": "ice40"}.get(config.suffix)
    if family is None:
        raise ConfigError(f"{config} is neither an ECP5 .config nor an iCE40 .asc file")
    for path in [config, *[p for pair in swaps for p in pair]]:
        if not Path(path).is_file():
            raise ConfigError(f"{path} does not exist")
    for old, new in swaps:
        (old_words, old_digits), (new_words, new_digits) = _words(Path(old)), _words(Path(new))
        if (old_words, old_digits) != (new_words, new_digits):
            raise ConfigError(f"{new} has {new_words} words of {new_digits} hex digits, {old} "
                              f"{old_words} of {old_digits}: not the same memory")
    with tempfile.TemporaryDirectory() as tmp:
        # The YoWASP tools see only their working folder: copy everything in.
        work = Path(tmp)
        current = work / f"in{config.suffix}"
        shutil.copy(config, current)
        for k, (old, new) in enumerate(swaps):
            _copy_padded(Path(old), work / f"from{k}.hex", family)
            _copy_padded(Path(new), work / f"to{k}.hex", family)
            result = work / f"step{k}{config.suffix}"
            if family == "ecp5":
                run_tool("yowasp-ecpbram", ["-i", current.name, "-o", result.name,
                                            "-f", f"from{k}.hex", "-t", f"to{k}.hex"],
                         work, f"ecpbram{k}.log")
            else:
                text = run_tool("yowasp-icebram", [f"from{k}.hex", f"to{k}.hex"], work,
                                f"icebram{k}.log", stdin=current.read_text())
                result.write_text(text)
            current = result
        packed = work / f"out{out.suffix or '.bit'}"
        tool = "yowasp-ecppack" if family == "ecp5" else "yowasp-icepack"
        run_tool(tool, [current.name, packed.name], work, "pack.log")
        out.parent.mkdir(parents=True, exist_ok=True)
        for src, dst in ((current, out.with_suffix(config.suffix)), (packed, out)):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    return out


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
    try:
        out = patch(Path(args.config), [(Path(a), Path(b)) for a, b in args.swap],
                    Path(args.out))
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
