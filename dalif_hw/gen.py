"""``python -m dalif_hw.gen``: generate a DA-LIF neuron array as Verilog.

    python -m dalif_hw.gen --neurons 256 --T 2 --out build

writes ``NAME.v`` (self-contained), the manifest ``NAME.json`` and one ``$readmemh`` file
``NAME_<memory>.hex`` per memory into ``--out``. Everything is checked before anything is
written; a bad argument gives one line ``error: ...`` and exit status 1.
"""

from __future__ import annotations

import argparse
import re
import sys

from . import cli
from .config import (DEFAULT_DB, DEFAULT_RESET, DEFAULT_VB, DEFAULT_WB, RESETS, ArrayConfig,
                     ConfigError)
from .params import load_params


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.gen",
        description="Generate a DA-LIF neuron array: Verilog, manifest and memory init files.")
    add = parser.add_argument
    add("--neurons", type=int, required=True, metavar="N", help="number of neurons")
    add("--T", type=int, required=True, metavar="T", help="timesteps per sample")
    add("--inputs", type=int, metavar="M", help="number of inputs (default: N)")
    add("--lanes", type=int, metavar="P",
        help="neurons updated in parallel (default: min(N, 16))")
    add("--weight-width", type=int, metavar="WB", help=f"signed weight bits "
        f"(default: from --params, else {DEFAULT_WB})")
    add("--decay-width", type=int, metavar="DB", help=f"decay fraction bits "
        f"(default: from --params, else {DEFAULT_DB})")
    add("--membrane-width", type=int, metavar="VB", help=f"signed membrane bits "
        f"(default: from --params, else {DEFAULT_VB})")
    add("--reset", choices=RESETS, help=f"reset mode (default: from --params, "
        f"else {DEFAULT_RESET})")
    add("--params", metavar="PARAMS", help="initial integer parameters, params.npz "
        "(default: weights and biases 0, decays 1/2, thresholds 2**(WB-1))")
    add("--name", default="dalif_array", metavar="NAME",
        help="top module and file name (default: %(default)s)")
    add("--out", default=".", metavar="DIR", help="output folder (default: %(default)s)")
    return parser


def config_from_args(args) -> tuple[ArrayConfig, object]:
    """Check the arguments and return ``(config, params or None)``."""
    for flag, value in (("--neurons", args.neurons), ("--T", args.T), ("--inputs", args.inputs),
                        ("--lanes", args.lanes), ("--weight-width", args.weight_width),
                        ("--decay-width", args.decay_width),
                        ("--membrane-width", args.membrane_width)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be a positive integer, not {value}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.name):
        raise ConfigError(f"--name must be a Verilog identifier (letters, digits, _), "
                          f"not {args.name!r}")
    if args.lanes is not None and args.lanes > args.neurons:
        raise ConfigError(f"--lanes must be at most --neurons ({args.neurons}), "
                          f"not {args.lanes}")
    params = None
    if args.params is not None:
        params = load_params(args.params, WB=args.weight_width, DB=args.decay_width,
                             VB=args.membrane_width, reset=args.reset)
        if params.neurons != args.neurons:
            raise ConfigError(f"--neurons {args.neurons} disagrees with the params, whose "
                              f"weight has {params.neurons} rows (shape "
                              f"{list(params.weight.shape)})")
        if args.inputs is not None and params.inputs != args.inputs:
            raise ConfigError(f"--inputs {args.inputs} disagrees with the params, whose "
                              f"weight has {params.inputs} columns (shape "
                              f"{list(params.weight.shape)})")
        return params.config(args.T, lanes=args.lanes), params
    config = ArrayConfig(
        args.neurons, args.inputs if args.inputs is not None else args.neurons, args.T,
        WB=args.weight_width or DEFAULT_WB, DB=args.decay_width or DEFAULT_DB,
        VB=args.membrane_width or DEFAULT_VB, reset=args.reset or DEFAULT_RESET,
        lanes=args.lanes)
    return config, None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config, params = config_from_args(args)
    from .hw.emit import emit_array, write_outputs  # Amaranth only once the input is good
    from .hw.neuron_array import NeuronArray

    files = emit_array(NeuronArray(config, params), args.name)
    out = cli.output_folder(args.out)
    write_outputs(out, files)
    print(f"wrote {len(files)} files to {out}: {', '.join(files)} "
          f"(N={config.neurons}, M={config.inputs}, T={config.T}, P={config.lanes}, "
          f"WB={config.WB}, DB={config.DB}, VB={config.VB}, {config.reset} reset)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
