"""``python -m dalif_hw.verify``: a generated network on Verilator against its integer twin.

    python -m dalif_hw.verify --network runs/digits/packed --rtl build/digits

runs the held-out digits split through the network RTL, compares every class and every logit
with the integer twin, and prints float, integer and RTL accuracy, mismatches and cycles per
inference. The last line is a JSON summary. Exit status 1 when any sample mismatches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import cli
from .config import ConfigError
from .encoding import encode
from .network import Network


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.verify",
        description="Run the digits test split through a generated network on Verilator and "
                    "compare it with the integer twin.")
    parser.add_argument("--network", required=True, metavar="DIR",
                        help="packed network folder (python -m dalif_hw.pack)")
    parser.add_argument("--rtl", required=True, metavar="BUILD",
                        help="generated network folder (python -m dalif_hw.gen --network)")
    parser.add_argument("--name", default="dalif_network", metavar="NAME",
                        help="top module name (default: %(default)s)")
    parser.add_argument("--samples", type=int, metavar="S",
                        help="only the first S test samples (default: all)")
    parser.add_argument("--checkpoint", metavar="MODEL",
                        help="trained model for the float accuracy (default: the one "
                             "network.yaml names, if it is still there)")
    return parser


def float_accuracy(checkpoint: Path | None, data, network: Network) -> float | None:
    """The trained model's accuracy, or None without a checkpoint; a checkpoint of another
    network (sizes, T or encoding) is an error."""
    if checkpoint is None or not checkpoint.is_file():
        return None
    from .pack import load_checkpoint
    from .train import evaluate

    model, meta = load_checkpoint(checkpoint)
    sizes = [network.inputs] + [layer.config.neurons for layer in network.layers]
    if list(model.sizes) != sizes or meta["T"] != network.T or \
            dict(meta["encoding"]) != dict(network.encoding):
        raise ConfigError(f"checkpoint {str(checkpoint)!r} is of another network: sizes "
                          f"{list(model.sizes)}, T={meta['T']}, encoding {meta['encoding']}; "
                          f"the packed network has sizes {sizes}, T={network.T}, encoding "
                          f"{network.encoding}")
    return evaluate(model, data.test_x, data.test_y, meta["encoding"])


def load_manifest(path: Path, network: Network | None = None) -> dict:
    """Read a generated design's manifest and check that it is whole (and, with ``network``,
    that it is that network's)."""
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"manifest {str(path)!r} is not valid JSON ({exc}): truncated or "
                          f"not a manifest; generate it again") from None
    missing = [key for key in ("top", "ports", "streams", "params")
               if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise ConfigError(f"manifest {str(path)!r} lacks {', '.join(missing)}: not the "
                          f"manifest of a generated design")
    if network is not None:
        want = {"inputs": network.inputs, "classes": network.classes, "T": network.T,
                "layers": len(network.layers)}
        have = {key: manifest["params"].get(key) for key in want}
        if have != want:
            raise ConfigError(f"manifest {str(path)!r} is of another network ({have}; the "
                              f"packed network: {want}): generate it from this network")
    return manifest


def worst_cycles_per_sample(network: Network) -> int:
    """Cycles a sample can take at most: every layer sees all of its inputs fire in every
    timestep (G (M + 1) cycles to accumulate) and sends all of its neurons."""
    from .simulate import timestep_cycles

    return network.T * sum(timestep_cycles(layer.config, layer.config.inputs)
                           for layer in network.layers)


def verify(network: Network, manifest_path: Path, build_dir: Path, work: Path,
           spikes: np.ndarray, labels: np.ndarray, manifest: dict | None = None) -> dict:
    """Run ``spikes`` [S, T, M] through the RTL; compare with the twin; return the figures.
    ``manifest``: the one at ``manifest_path``, if the caller has read it already."""
    from .simulate import build, run_bench

    if manifest is None:
        manifest = load_manifest(manifest_path, network)
    _, logits = network.run(spikes)
    classes = logits.argmax(axis=1)
    events = [[np.flatnonzero(step).tolist() for step in sample] for sample in spikes]
    case = {"name": "test split", "events": events,
            "expected": {"logits": logits.tolist(), "classes": classes.tolist()},
            "max_cycles": 2 * len(events) * worst_cycles_per_sample(network) + 100000}
    built = build(manifest_path.with_suffix(".v"), manifest["top"], build_dir)
    (result,) = run_bench(built, manifest["top"], manifest_path, [case], work)
    rtl_classes = np.array(result.get("classes", []))
    rtl_logits = result.get("logits", [])
    mismatches = sum(
        1 for s in range(len(events))
        if s >= len(rtl_classes) or rtl_classes[s] != classes[s] or
        s >= len(rtl_logits) or list(rtl_logits[s]) != logits[s].tolist())
    cycles = None
    if result.get("class_cycles") and result.get("first_in") is not None:
        cycles = (result["class_cycles"][-1] - result["first_in"] + 1) / len(events)
    rtl_acc = float((rtl_classes == labels[:len(rtl_classes)]).sum() / len(labels))
    return {"int_acc": float((classes == labels).mean()), "rtl_acc": rtl_acc,
            "mismatches": mismatches, "cycles_per_inference": cycles,
            "first_mismatch": result.get("message"), "samples": len(events)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.check_positive(("--samples", args.samples))
    network = Network.load(args.network)
    rtl = Path(args.rtl)
    manifest_path = rtl / f"{args.name}.json"
    if not manifest_path.is_file():
        raise ConfigError(f"{manifest_path} does not exist: generate the network with "
                          f"python -m dalif_hw.gen --network {args.network} --out {args.rtl}")
    from .train import load_digits_split

    data = load_digits_split()
    if network.inputs != data.test_x.shape[1]:
        raise ConfigError(f"the network has {network.inputs} inputs, the digits have "
                          f"{data.test_x.shape[1]} pixels")
    x, y = data.test_x[:args.samples], data.test_y[:args.samples]
    spikes = encode(x, network.encoding)
    source = network.source.get("checkpoint") if network.source else None
    checkpoint = Path(args.checkpoint) if args.checkpoint else (
        Path(args.network) / source if source else None)
    manifest = load_manifest(manifest_path, network)  # before the float model and the build
    summary = {"float_acc": float_accuracy(checkpoint, data, network)}
    summary.update(verify(network, manifest_path, rtl / "sim_build", rtl / "verify", spikes, y,
                          manifest=manifest))
    print(f"samples:             {summary['samples']}")
    print("float accuracy:      " + (f"{summary['float_acc']:.4f}" if summary["float_acc"]
                                     is not None else "n/a (no checkpoint)"))
    print(f"integer accuracy:    {summary['int_acc']:.4f}")
    print(f"RTL accuracy:        {summary['rtl_acc']:.4f}")
    print(f"mismatches:          {summary['mismatches']}"
          + (f" (first: {summary['first_mismatch']})" if summary["first_mismatch"] else ""))
    if summary["cycles_per_inference"] is not None:
        print(f"cycles per inference: {summary['cycles_per_inference']:.1f}")
    print(json.dumps(summary))
    return 0 if summary["mismatches"] == 0 and summary["first_mismatch"] is None else 1


if __name__ == "__main__":
    sys.exit(cli.run(main))
