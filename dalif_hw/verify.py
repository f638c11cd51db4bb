"""``python -m dalif_hw.verify``: a generated network on Verilator against its integer twin.

    python -m dalif_hw.verify --network runs/digits/packed --rtl build/digits

runs the held-out digits split through the network RTL, compares every class and every logit
with the integer twin, and prints float, integer and RTL accuracy, mismatches and cycles per
inference. The last line is a JSON summary. Exit status 1 when any sample mismatches.

    python -m dalif_hw.verify --network packed --rtl build --stimulus s.npz

runs a given stimulus (SPEC 4: ``spikes`` bool [S, T, M], or ``counts``) instead, through any
network: one with a readout is compared logit by logit and class by class, one without (its
last DA-LIF layer's spikes are the output, e.g. imported from NIR) spike by spike.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import cli
from .core.config import ConfigError
from .core.params import load_stimulus
from .harness.compare import float_accuracy, load_manifest, verify
from .quant.packed import Network


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.verify",
        description="Run the digits test split (or a given stimulus) through a generated "
                    "network on Verilator and compare it with the integer twin.")
    parser.add_argument("--network", required=True, metavar="DIR",
                        help="packed network folder (python -m dalif_hw.pack)")
    parser.add_argument("--rtl", required=True, metavar="BUILD",
                        help="generated network folder (python -m dalif_hw.gen --network)")
    parser.add_argument("--name", default="dalif_network", metavar="NAME",
                        help="top module name (default: %(default)s)")
    parser.add_argument("--stimulus", metavar="NPZ",
                        help="input spikes to run instead of the digits (stimulus.npz: "
                             "'spikes' [S, T, M] or 'counts')")
    parser.add_argument("--samples", type=int, metavar="S",
                        help="only the first S samples (default: all)")
    parser.add_argument("--checkpoint", metavar="MODEL",
                        help="trained model for the float accuracy (default: the one "
                             "network.yaml names, if it is still there)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.check_positive(("--samples", args.samples))
    network = Network.load(args.network)
    rtl = Path(args.rtl)
    manifest_path = rtl / f"{args.name}.json"
    if not manifest_path.is_file():
        raise ConfigError(f"{manifest_path} does not exist: generate the network with "
                          f"python -m dalif_hw.gen --network {args.network} --out {args.rtl}")
    if args.stimulus:
        spikes = load_stimulus(args.stimulus, network.inputs, network.T)[:args.samples]
        manifest = load_manifest(manifest_path, network)
        summary = verify(network, manifest_path, rtl / "sim_build", rtl / "verify", spikes,
                         manifest=manifest)
    else:
        summary = _verify_digits(args, network, manifest_path)
    print(f"samples:             {summary['samples']}")
    if "float_acc" in summary:
        print("float accuracy:      " + (f"{summary['float_acc']:.4f}" if summary["float_acc"]
                                         is not None else "n/a (no checkpoint)"))
    if "int_acc" in summary:
        print(f"integer accuracy:    {summary['int_acc']:.4f}")
        print(f"RTL accuracy:        {summary['rtl_acc']:.4f}")
    if "spikes_out" in summary:
        print(f"output spikes:       {summary['spikes_out']} (integer twin)")
    print(f"mismatches:          {summary['mismatches']}"
          + (f" (first: {summary['first_mismatch']})" if summary["first_mismatch"] else ""))
    if summary["cycles_per_inference"] is not None:
        print(f"cycles per inference: {summary['cycles_per_inference']:.1f}")
    print(json.dumps(summary))
    return 0 if summary["mismatches"] == 0 and summary["first_mismatch"] is None else 1


def _verify_digits(args, network: Network, manifest_path: Path) -> dict:
    """The held-out digits through the network, with the float, integer and RTL accuracy."""
    from .model.train import held_out_stimulus

    spikes, y, data = held_out_stimulus(network, args.samples, f"network {args.network!r}")
    source = network.source.get("checkpoint") if network.source else None
    checkpoint = Path(args.checkpoint) if args.checkpoint else (
        Path(args.network) / source if source else None)
    manifest = load_manifest(manifest_path, network)  # before the float model and the build
    summary = {"float_acc": float_accuracy(checkpoint, data, network)}
    rtl = manifest_path.parent
    summary.update(verify(network, manifest_path, rtl / "sim_build", rtl / "verify", spikes, y,
                          manifest=manifest))
    return summary


if __name__ == "__main__":
    sys.exit(cli.run(main))
