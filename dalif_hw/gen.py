"""``python -m dalif_hw.gen``: generate a DA-LIF neuron array, or a whole network, as Verilog.

    python -m dalif_hw.gen --neurons 256 --T 2 --out build
    python -m dalif_hw.gen --network runs/digits/packed --out build/digits

writes ``NAME.v`` (self-contained), the manifest ``NAME.json`` and one ``$readmemh`` file
per memory into ``--out``. Everything is checked before anything is written; a bad argument
gives one line ``error: ...`` and exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

from . import cli
from .core.config import (
    DEFAULT_DB,
    DEFAULT_RESET,
    DEFAULT_VB,
    DEFAULT_WB,
    RESETS,
    ArrayConfig,
    ConfigError,
)
from .core.params import ConvParams, load_params


def build_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.gen", add_help=add_help,
        description="Generate a DA-LIF neuron array: Verilog, manifest and memory init files.")
    add = parser.add_argument
    add("--network", metavar="DIR", help="generate the network packed in DIR "
        "(python -m dalif_hw.pack) instead of one array")
    add("--neurons", type=int, metavar="N", help="number of neurons")
    add("--T", type=int, metavar="T", help="timesteps per sample")
    add("--inputs", type=int, metavar="M", help="number of inputs (default: N)")
    add("--lanes", type=int, metavar="P",
        help="neurons updated in parallel (default: min(N, 16))")
    add("--acc-lanes", type=int, metavar="A",
        help="neurons an input spike reaches per cycle: a multiple of P (default: P; "
             "adders and weight-memory width, no multipliers; a conv2d layer's: P columns "
             "in A / P output channels, A at most P K)")
    add("--second-set", choices=tuple(cli.SECOND_SET),
        help="a second set of accumulators, so that the next timestep accumulates during the "
             "update pass (default: auto, where the two hold at most 64 kbit)")
    add("--beat-cap", type=int, metavar="B",
        help="counted spike beats per timestep (default: from --params, else M)")
    cli.add_width_arguments(parser, "from --params")
    add("--reset", choices=RESETS, help=f"reset mode (default: from --params, "
        f"else {DEFAULT_RESET})")
    add("--multipliers", choices=("logic", "dsp"),
        help="alpha*I in a DSP block per lane, or as pipelined logic like beta*H "
             "(default: dsp)")
    add("--params", metavar="PARAMS", help="initial integer parameters, params.npz "
        "(default: weights and biases 0, decays 1/2, thresholds 2**(WB-1))")
    add("--name", metavar="NAME", help="top module and file name "
        "(default: dalif_array, or dalif_network with --network)")
    add("--out", default=".", metavar="DIR", help="output folder (default: %(default)s)")
    return parser


ARRAY_FLAGS = ("neurons", "T", "inputs", "lanes", "acc_lanes", "second_set", "beat_cap",
               "weight_width", "decay_width", "membrane_width", "reset", "params")


def check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"--name must be a Verilog identifier (letters, digits, _), "
                          f"not {name!r}")


#: Memory a generation takes per bit of the design's memories (their initial contents pass
#: through Python integers, Amaranth's netlist and Yosys's Verilog): measured about 135 bytes
#: (N = M = 1024, 8 Mbit: 1.1 GB at the peak), plus what Python and Amaranth take anyway.
GEN_BYTES_PER_BIT = 160
GEN_BASE_BYTES = 300 * 2**20


def check_size(layers: list[tuple], what: str) -> None:
    """Refuse up front a design whose generation would not fit this machine's memory.
    ``layers``: ``(config, params or None)`` of each array."""
    from .core.layout import memory_bits

    bits = sum(memory_bits(config, params.shape if isinstance(params, ConvParams) else None)
               for config, params in layers)
    cli.check_memory(GEN_BASE_BYTES + GEN_BYTES_PER_BIT * bits,
                     f"{what} (memories of {bits:.3g} bits)")


def config_from_args(args) -> tuple[ArrayConfig, object]:
    """Check the arguments of one array and return ``(config, params or None)``."""
    required = [("--T", args.T)] + ([("--neurons", args.neurons)] if args.params is None
                                     else [])
    for flag, value in required:
        if value is None:
            raise ConfigError(f"{flag} is required (or give --network"
                              f"{'' if flag == '--T' else ', or --params'})")
    cli.check_positive(("--neurons", args.neurons), ("--T", args.T), ("--inputs", args.inputs),
                       ("--lanes", args.lanes), ("--acc-lanes", args.acc_lanes),
                       ("--beat-cap", args.beat_cap),
                       ("--weight-width", args.weight_width),
                       ("--decay-width", args.decay_width),
                       ("--membrane-width", args.membrane_width))
    if args.lanes is not None and args.neurons is not None and args.lanes > args.neurons:
        raise ConfigError(f"--lanes must be at most --neurons ({args.neurons}), "
                          f"not {args.lanes}")
    second_set = cli.SECOND_SET[args.second_set or "auto"]
    params = None
    if args.params is not None:
        params = load_params(args.params, WB=args.weight_width, DB=args.decay_width,
                             VB=args.membrane_width, reset=args.reset)
        for flag, given, have, what in (
                ("--neurons", args.neurons, params.neurons, "rows"),
                ("--inputs", args.inputs, params.inputs, "columns")):
            if given is None or given == have:
                continue
            if isinstance(params, ConvParams):
                shape = params.shape
                raise ConfigError(f"{flag} {given} disagrees with the params, a conv2d layer "
                                  f"{list(shape.in_shape)} -> {list(shape.out_shape)} with "
                                  f"{have} {flag[2:]}")
            raise ConfigError(f"{flag} {given} disagrees with the params, whose weight "
                              f"has {have} {what} (shape {list(params.weight.shape)})")
        if args.beat_cap is not None:
            if params.beat_cap is not None and params.beat_cap != args.beat_cap:
                raise ConfigError(f"--beat-cap {args.beat_cap} disagrees with the params "
                                  f"meta beat_cap={params.beat_cap}")
            params = dataclasses.replace(params, beat_cap=args.beat_cap)
        config = params.config(args.T, lanes=args.lanes, acc_lanes=args.acc_lanes,
                               second_set=second_set)
    else:
        config = ArrayConfig(
            args.neurons, args.inputs if args.inputs is not None else args.neurons, args.T,
            WB=args.weight_width or DEFAULT_WB, DB=args.decay_width or DEFAULT_DB,
            VB=args.membrane_width or DEFAULT_VB, reset=args.reset or DEFAULT_RESET,
            lanes=args.lanes, beat_cap=args.beat_cap, acc_lanes=args.acc_lanes,
            second_set=second_set)
    check_size([(config, params)],
               f"an array of {config.neurons} neurons x {config.inputs} inputs")
    return config, params


def network_from_args(args):
    """Check the arguments of a network and load it."""
    from .quant.packed import Network

    given = [f"--{flag.replace('_', '-')}" for flag in ARRAY_FLAGS
             if getattr(args, flag) is not None]
    if given:
        raise ConfigError(f"{given[0]} does not apply with --network (the network folder "
                          f"sets every layer)")
    network = Network.load(args.network)
    check_size([(layer.config, layer.params) for layer in network.weighted],
               f"the network {args.network}")
    return network


def generate_network(args) -> tuple[dict, str]:
    from .hw.emit import emit_network
    from .hw.network import NetworkTop
    from .quant.kinds import Weighted

    network = network_from_args(args)
    files = emit_network(NetworkTop(network, multipliers=args.multipliers or "dsp"),
                         args.name or "dalif_network")
    shapes = " -> ".join([str(network.inputs)] + [
        f"{layer.out_size} ({layer.kind})" if not isinstance(layer, Weighted) else
        f"{layer.out_size} (P={layer.config.lanes})" for layer in network.layers])
    return files, f"network {shapes}, T={network.T}"


def generate_array(args) -> tuple[dict, str]:
    config, params = config_from_args(args)
    from .hw.emit import emit_array  # Amaranth only once the input is good
    from .hw.neuron_array import NeuronArray

    files = emit_array(NeuronArray(config, params, multipliers=args.multipliers or "dsp"),
                       args.name or "dalif_array")
    kind = "" if not isinstance(params, ConvParams) else (
        f"conv2d {list(params.shape.in_shape)} -> {list(params.shape.out_shape)}, kernel "
        f"{list(params.shape.kernel)}, ")
    return files, (f"{kind}N={config.neurons}, M={config.inputs}, T={config.T}, "
                   f"P={config.lanes}, "
                   + (f"A={config.acc_lanes}, " if config.acc_lanes != config.lanes else "")
                   + f"WB={config.WB}, DB={config.DB}, VB={config.VB}, "
                   f"{config.reset} reset")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.name is not None:
        check_name(args.name)
    if (Path(args.out) / "network.yaml").is_file():
        raise ConfigError(f"--out {args.out!r} holds a packed network (network.yaml), whose "
                          "files a design there could overwrite: generate into another folder")
    files, summary = generate_network(args) if args.network else generate_array(args)
    from .hw.emit import write_outputs

    out = cli.output_folder(args.out)
    write_outputs(out, files)
    print(f"wrote {len(files)} files to {out}: {', '.join(files)} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
