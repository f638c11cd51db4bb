"""``python -m dalif_hw.golden``: golden traces of the integer twin.

    python -m dalif_hw.golden --params params.npz --stimulus stimulus.npz --out trace.npz

Reads the integer parameters and a stimulus (docs/formats.md), runs the integer twin and
writes ``trace.npz`` with ``spikes_in``, ``current``, ``membrane`` and ``spikes_out``.
"""

from __future__ import annotations

import argparse
import sys

from . import cli, twin
from .core.params import load_params, load_stimulus


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.golden",
        description="Compute the golden trace of one DA-LIF neuron array with the integer twin.")
    parser.add_argument("--params", required=True, metavar="PARAMS",
                        help="integer parameters, params.npz")
    parser.add_argument("--stimulus", required=True, metavar="STIMULUS",
                        help="input spikes, stimulus.npz with 'spikes' bool [S, T, M]")
    parser.add_argument("--out", required=True, metavar="TRACE",
                        help="golden trace to write, trace.npz")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = cli.output_path(args.out, "--out", inputs=(args.params, args.stimulus))
    params = load_params(args.params)
    spikes = load_stimulus(args.stimulus, inputs=params.inputs)
    trace = twin.run(params, spikes)
    trace.save(out)
    n_samples, T, N = trace.spikes_out.shape
    print(f"wrote {out}: {n_samples} samples x {T} timesteps x {N} neurons, "
          f"{int(trace.spikes_out.sum())} output spikes")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
