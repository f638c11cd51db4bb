"""``python -m dalif_hw.golden``: golden traces of the integer twin.

    python -m dalif_hw.golden --params params.npz --stimulus stimulus.npz --out trace.npz

Reads the integer parameters (a dense array's, or a conv2d layer's: SPEC 6) and a stimulus
(``spikes`` or ``counts``; docs/formats.md), runs the integer twin and writes ``trace.npz``
with ``spikes_in``, ``current``, ``membrane`` and ``spikes_out`` (flat indices).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from . import cli, twin
from .core.config import ConfigError
from .core.params import ConvParams, load_params, load_stimulus


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.golden",
        description="Compute the golden trace of one DA-LIF neuron array with the integer twin.")
    parser.add_argument("--params", required=True, metavar="PARAMS",
                        help="integer parameters, params.npz")
    parser.add_argument("--stimulus", required=True, metavar="STIMULUS",
                        help="input, stimulus.npz with 'spikes' bool [S, T, M] or 'counts' "
                             "int [S, T, M]")
    parser.add_argument("--beat-cap", type=int, metavar="B",
                        help="counted beats per timestep (default: the params meta's, or M)")
    parser.add_argument("--out", required=True, metavar="TRACE",
                        help="golden trace to write, trace.npz")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = cli.output_path(args.out, "--out", inputs=(args.params, args.stimulus))
    if args.beat_cap is not None and args.beat_cap < 1:
        raise ConfigError(f"--beat-cap must be at least 1, not {args.beat_cap}")
    params = load_params(args.params)
    if args.beat_cap is not None:
        if params.beat_cap is not None and params.beat_cap != args.beat_cap:
            raise ConfigError(f"--beat-cap {args.beat_cap} disagrees with the params meta "
                              f"beat_cap={params.beat_cap}")
        params = dataclasses.replace(params, beat_cap=args.beat_cap)
    # The twin holds a layer as a dense int64 matrix (a convolution's too, and its patches):
    # refused up front where that cannot fit, as gen refuses such a design.
    N, M = params.neurons, params.inputs
    cli.check_memory(8 * N * M * (2 if isinstance(params, ConvParams) else 1),
                     f"the integer twin of {args.params} ({N} neurons x {M} inputs)")
    stimulus = load_stimulus(args.stimulus, inputs=params.inputs)
    S, T = stimulus.shape[:2]
    cli.check_memory(8 * S * T * (M + 3 * N), f"the trace of {S} samples x {T} timesteps")
    trace = twin.run(params, stimulus)
    trace.save(out)
    n_samples, T, N = trace.spikes_out.shape
    print(f"wrote {out}: {n_samples} samples x {T} timesteps x {N} neurons, "
          f"{int(trace.spikes_out.sum())} output spikes")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
