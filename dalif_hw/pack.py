"""``python -m dalif_hw.pack MODEL --out DIR``: a trained network to integer parameters,
block-RAM init files and ``network.yaml``. The rules are in :mod:`dalif_hw.quant.packing`.

``MODEL`` is a checkpoint (``train``, or ``nir import``), a NIR graph (``model.nir``; NIR
carries no T, so ``--T`` is then required, and the input is spikes, with no encoding), or a
PyTorch module as its users wrote it (``net.py:build_net``, with ``--weights state.pt`` and
``--input-shape``; :mod:`dalif_hw.interchange.modules`: the file is code, and runs; the
weights load with ``weights_only=True``).
"""

from __future__ import annotations

from .core.config import DEFAULT_DB, DEFAULT_VB, DEFAULT_WB, ConfigError, check_input_file
from .core.encoding import check_encoding
from .core.files import check_set_folder, replace_folder
from .interchange import load_checkpoint
from .interchange.nir_graph import DT

# quantize_linear is the library's, imported here too because the README shows it so.
from .quant.packing import pack_network, quantize_linear

__all__ = ["main", "quantize_linear"]


def _ints_arg(text: str, flag: str = "--lanes", what: str = "one per layer") -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"{flag} must be comma-separated integers, {what}, "
                          f"not {text!r}") from None
    if any(p < 1 for p in values):
        raise ConfigError(f"{flag} must be positive, not {text!r}")
    return values


def _calibration(path, model, T: int, encoding: dict, checkpoint: dict):
    """The stimulus [S, T, M] to measure quantization on, and what it is: the file given,
    the held-out digits for a digits model, else random input (spikes at 30%, or values
    uniform over the encoding's range)."""
    import numpy as np

    from .core.encoding import encode
    from .core.params import load_stimulus
    from .model import graph_of

    inputs = int(np.prod(graph_of(model).in_shape))
    if path is not None:
        return load_stimulus(path, inputs, T), path
    if checkpoint.get("encoding") and encoding["kind"] == "thermometer" and inputs == 64:
        from .model.train import load_digits_split

        return encode(load_digits_split().test_x, encoding), "the held-out digits"
    rng = np.random.default_rng(0)
    if encoding["kind"] == "spikes":
        return rng.random((64, T, inputs)) < 0.3, "64 random samples of spikes at 30%"
    return encode(rng.random((64, inputs)) * encoding["max_value"], encoding), \
        f"64 random samples uniform over [0, {encoding['max_value']:g}]"


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
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder, replaced whole (refused if it holds files pack did "
                             "not write there, unless --force)")
    parser.add_argument("--force", action="store_true",
                        help="replace --out even if it holds files pack did not write")
    cli.add_width_arguments(parser, "the checkpoint's",
                            auto="per layer the narrowest that keeps --agreement")
    parser.add_argument("--lanes", metavar="P,P,...",
                        help="lanes per layer (default: min(N, 16) each)")
    parser.add_argument("--acc-lanes", metavar="A,A,...",
                        help="accumulation lanes per layer: a multiple of its lanes (a conv2d "
                             "layer's: P columns in A / P output channels at once; default: "
                             "the lanes; docs/hardware.md has the cost)")
    parser.add_argument("--second-set", metavar="yes|no|auto,...",
                        help="a second set of accumulators per layer, so that the next "
                             "timestep accumulates during the update pass (auto: where the two "
                             "hold at most 64 kbit; docs/hardware.md has the cost)")
    parser.add_argument("--T", type=int, help="timesteps per sample: required for a NIR graph "
                        "(default: the checkpoint's)")
    parser.add_argument("--weights", metavar="STATE.pt",
                        help="the state dict of a module given as FILE.py:NAME")
    parser.add_argument("--input-shape", metavar="C,H,W",
                        help="a module's input shape per sample (default: its first Linear's "
                             "features)")
    parser.add_argument("--analog", type=int, metavar="LEVELS",
                        help="a module's or NIR graph's input is analog, fed at every timestep "
                             "(as snnTorch's tutorials feed an image): each value in [0, "
                             "--max-value] is sent as up to LEVELS beats of its index a "
                             "timestep (default: the input is spikes)")
    parser.add_argument("--max-value", type=float, default=1.0,
                        help="the analog input's largest value (default %(default)g)")
    parser.add_argument("--calibration", metavar="STIMULUS.npz",
                        help="the input to measure quantization on ('spikes' or 'counts' [S, T, "
                             "M]; default: the digits for a digits model, else random input)")
    parser.add_argument("--agreement", type=float, default=0.99,
                        help="with --weight-width auto: the fraction of each layer's spikes (the "
                             "readout's: of classes) to keep (default %(default)g)")
    parser.add_argument("--dt", type=float,
                        help="a NIR graph's Euler step (default: what the file or its writer "
                             f"says, else {DT:g}; python -m dalif_hw.nir import says which)")
    args = parser.parse_args(argv)
    auto = args.weight_width == "auto"
    cli.check_positive(("--weight-width", None if auto else args.weight_width),
                       ("--decay-width", args.decay_width),
                       ("--membrane-width", args.membrane_width), ("--T", args.T))
    source = args.checkpoint.rpartition(":")[0] if ":" in args.checkpoint and \
        not os.path.isfile(args.checkpoint) else args.checkpoint
    out = check_set_folder(args.out, "pack", args.force,
                           inputs=[source, args.weights, args.calibration])
    if not 0 < args.agreement <= 1:
        raise ConfigError(f"--agreement must be a fraction in (0, 1], not {args.agreement!r}")
    if args.calibration is not None:
        check_input_file(args.calibration, "calibration stimulus")
    lanes = _ints_arg(args.lanes) if args.lanes else None
    acc_lanes = _ints_arg(args.acc_lanes, "--acc-lanes") if args.acc_lanes else None
    second_set = cli.second_set_arg(args.second_set) if args.second_set else None
    if args.analog is not None:      # checked before any model is read
        check_encoding({"kind": "analog", "T": 1, "levels": args.analog,
                        "max_value": args.max_value}, where="--analog and --max-value")
    if (args.weights or args.input_shape) and ":" not in args.checkpoint:
        raise ConfigError("--weights and --input-shape are for a module given as FILE.py:NAME, "
                          f"not {args.checkpoint!r}")
    if ":" in args.checkpoint and not os.path.isfile(args.checkpoint):
        from .interchange.modules import from_module, input_shape_of, load_module

        if args.T is None:
            raise ConfigError(f"{args.checkpoint} is a module, which carries no T: give the "
                              "timesteps per sample with --T")
        shape = _ints_arg(args.input_shape, "--input-shape", "features or C,H,W") \
            if args.input_shape else None
        net = load_module(args.checkpoint, args.weights)
        shape = shape or input_shape_of(net)
        if shape is None:
            raise ConfigError(f"{args.checkpoint} starts with no Linear: give its input shape "
                              "per sample with --input-shape C,H,W")
        model, checkpoint = from_module(net, shape), {}
    elif args.checkpoint.endswith(".nir"):
        from .interchange.nir_graph import from_nir

        if args.T is None:
            raise ConfigError(f"{args.checkpoint} is a NIR graph, which carries no T: give "
                              "the timesteps per sample with --T")
        model, checkpoint = from_nir(args.checkpoint, dt=args.dt, T=args.T), {}
        print(f"{args.checkpoint}: dt = {model.nir_source['dt']:g}: "
              f"{model.nir_source['dt_reason']}")
    else:
        model, checkpoint = load_checkpoint(args.checkpoint)
    T = args.T or checkpoint.get("T")
    if T is None:
        raise ConfigError(f"checkpoint {args.checkpoint} (imported from NIR) has no T: give "
                          "the timesteps per sample with --T")
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ConfigError(f"checkpoint {args.checkpoint} has T = {T!r}: timesteps per sample "
                          "are a positive integer")
    if args.T and checkpoint.get("T") and args.T != checkpoint["T"]:
        raise ConfigError(f"--T {args.T} disagrees with the checkpoint's T={checkpoint['T']}")
    encoding = checkpoint.get("encoding") or {"kind": "spikes", "T": T}
    if args.analog is not None:
        if checkpoint.get("encoding"):
            raise ConfigError(f"--analog: checkpoint {args.checkpoint} has its own encoding "
                              f"({checkpoint['encoding']['kind']})")
        encoding = {"kind": "analog", "T": int(T), "levels": args.analog,
                    "max_value": args.max_value}
    widths = {"WB": DEFAULT_WB, "DB": DEFAULT_DB, "VB": DEFAULT_VB, **checkpoint.get("widths", {})}
    for key, value in (("WB", None if auto else args.weight_width), ("DB", args.decay_width),
                       ("VB", args.membrane_width)):
        if value is not None:
            widths[key] = value
    stimulus, about = _calibration(args.calibration, model, int(T), dict(encoding), checkpoint)

    def pack(weight_widths):
        return pack_network(model, T=int(T), encoding=dict(encoding), lanes=lanes,
                            acc_lanes=acc_lanes, second_set=second_set,
                            **{**widths, "WB": weight_widths})

    if auto:
        from .model import graph_of
        from .twin.agreement import narrowest_widths

        view = graph_of(model)
        count = len(view.spiking) + (view.readout is not None)
        widths["WB"], _ = narrowest_widths(pack, model, stimulus, args.agreement, count,
                                           rest=widths["WB"])
    network = pack(widths["WB"])
    relative = os.path.relpath(Path(source).resolve(), out.resolve())
    network = dataclasses.replace(network, source={
        "checkpoint": relative, "metrics": {k: float(v) for k, v in
                                            checkpoint.get("metrics", {}).items()}})
    replace_folder(out, network.save, "pack")
    for layer in network.layers:
        inputs = "" if network.is_chain else f" (from {', '.join(layer.inputs)})"
        print(f"{layer.name}: {layer.summary()}{inputs}")
    from .twin.agreement import agreement

    print(f"the integer twin against the float model, on {about}:")
    for line in agreement(model, network, stimulus).lines():
        print(f"  {line}")
    print(f"wrote {out / 'network.yaml'}")
    return 0


if __name__ == "__main__":
    import sys

    from . import cli

    sys.exit(cli.run(main))
