"""``python -m dalif_hw.pack MODEL --out DIR``: a trained network to integer parameters,
block-RAM init files and ``network.yaml``. The rules are in :mod:`dalif_hw.quant.packing`.

``MODEL`` is a checkpoint (``train``, or ``nir import``) or a NIR graph (``model.nir``; NIR
carries no T, so ``--T`` is then required, and the input is spikes, with no encoding).
"""

from __future__ import annotations

from .core.config import DEFAULT_DB, DEFAULT_VB, DEFAULT_WB, ConfigError
from .interchange import load_checkpoint
from .interchange.nir_graph import DT

# quantize_linear is the library's, imported here too because the README shows it so.
from .quant.packing import pack_network, quantize_linear

__all__ = ["main", "quantize_linear"]


def _lanes_arg(text: str, flag: str = "--lanes") -> list[int]:
    try:
        lanes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"{flag} must be comma-separated integers, one per layer, "
                          f"not {text!r}") from None
    if any(p < 1 for p in lanes):
        raise ConfigError(f"{flag} must be positive, not {text!r}")
    return lanes


def main(argv: list[str] | None = None) -> int:
    """``python -m dalif_hw.pack MODEL --out DIR``: a trained network to integer files."""
    import argparse
    import dataclasses
    import os
    from pathlib import Path

    from . import cli

    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.pack",
        description="Pack a trained DA-LIF network into integer parameters, block-RAM init "
                    "files and a network description.")
    parser.add_argument("checkpoint", metavar="MODEL", help="checkpoint, e.g. runs/digits/model.pt")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    cli.add_width_arguments(parser, "the checkpoint's")
    parser.add_argument("--lanes", metavar="P,P,...",
                        help="lanes per layer (default: min(N, 16) each)")
    parser.add_argument("--acc-lanes", metavar="A,A,...",
                        help="accumulation lanes per layer: a multiple of its lanes (a conv2d "
                             "layer's: P columns in A / P output channels at once; default: "
                             "the lanes; docs/hardware.md has the cost)")
    parser.add_argument("--T", type=int, help="timesteps per sample: required for a NIR graph "
                        "(default: the checkpoint's)")
    parser.add_argument("--dt", type=float, default=DT,
                        help="a NIR graph's Euler step (default %(default)g)")
    args = parser.parse_args(argv)
    cli.check_positive(("--weight-width", args.weight_width), ("--decay-width", args.decay_width),
                       ("--membrane-width", args.membrane_width), ("--T", args.T))
    lanes = _lanes_arg(args.lanes) if args.lanes else None
    acc_lanes = _lanes_arg(args.acc_lanes, "--acc-lanes") if args.acc_lanes else None
    if args.checkpoint.endswith(".nir"):
        from .interchange.nir_graph import from_nir

        if args.T is None:
            raise ConfigError(f"{args.checkpoint} is a NIR graph, which carries no T: give "
                              "the timesteps per sample with --T")
        model, checkpoint = from_nir(args.checkpoint, dt=args.dt), {}
    else:
        model, checkpoint = load_checkpoint(args.checkpoint)
    T = args.T or checkpoint.get("T")
    if T is None:
        raise ConfigError(f"checkpoint {args.checkpoint} (imported from NIR) has no T: give "
                          "the timesteps per sample with --T")
    if args.T and checkpoint.get("T") and args.T != checkpoint["T"]:
        raise ConfigError(f"--T {args.T} disagrees with the checkpoint's T={checkpoint['T']}")
    encoding = checkpoint.get("encoding") or {"kind": "spikes", "T": T}
    widths = {"WB": DEFAULT_WB, "DB": DEFAULT_DB, "VB": DEFAULT_VB, **checkpoint.get("widths", {})}
    for key, value in (("WB", args.weight_width), ("DB", args.decay_width),
                       ("VB", args.membrane_width)):
        if value is not None:
            widths[key] = value
    network = pack_network(model, T=int(T), encoding=dict(encoding), lanes=lanes,
                           acc_lanes=acc_lanes, **widths)
    out = cli.output_folder(args.out)
    relative = os.path.relpath(Path(args.checkpoint).resolve(), out.resolve())
    network = dataclasses.replace(network, source={
        "checkpoint": relative, "metrics": {k: float(v) for k, v in
                                            checkpoint.get("metrics", {}).items()}})
    network.save(out)
    for layer in network.layers:
        inputs = "" if network.is_chain else f" (from {', '.join(layer.inputs)})"
        print(f"{layer.name}: {layer.summary()}{inputs}")
    print(f"wrote {out / 'network.yaml'}")
    return 0


if __name__ == "__main__":
    import sys

    from . import cli

    sys.exit(cli.run(main))
