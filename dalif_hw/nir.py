"""``python -m dalif_hw.nir``: models in from and out to NIR, the Neuromorphic Intermediate
Representation (snnTorch, SpikingJelly, Norse, Sinabs, Lava-DL, Rockpool)::

    python -m dalif_hw.nir import model.nir --out model.pt [--dt DT] [--T 8]
    python -m dalif_hw.nir export model.pt --out model.nir [--dt DT]

``import`` checks that the hardware can run the graph (one line naming the node and why,
nothing written, if not) and writes a checkpoint that ``python -m dalif_hw.pack`` takes
(``pack model.nir --T T`` also takes the graph directly). ``export`` writes a dalif-hw model
(a checkpoint from ``train`` or from ``import``) as a NIR graph. The mapping is in
:mod:`dalif_hw.interchange.nir_graph` and docs/nir.md.
"""

from __future__ import annotations

import argparse
import math
import sys

from . import cli
from .core.config import ConfigError
from .interchange.nir_graph import DT, from_nir, to_nir

__all__ = ["main", "from_nir", "to_nir"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dalif_hw.nir",
                                     description="Import a NIR graph as a dalif-hw model, or "
                                                 "export a dalif-hw model as a NIR graph.")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="a .nir graph to a dalif-hw checkpoint")
    imp.add_argument("graph", metavar="MODEL.nir")
    imp.add_argument("--out", required=True, metavar="MODEL.pt")
    imp.add_argument("--T", type=int, help="timesteps per sample, kept for pack (NIR has none)")
    exp = sub.add_parser("export", help="a dalif-hw checkpoint to a .nir graph")
    exp.add_argument("checkpoint", metavar="MODEL.pt")
    exp.add_argument("--out", required=True, metavar="MODEL.nir")
    imp.add_argument("--dt", type=float,
                     help="the Euler step of the graph's time constants (default: what the file "
                          "or its writer says, else 1e-4; the import says which it took)")
    exp.add_argument("--dt", type=float,
                     help=f"the Euler step to write the time constants with (default: an "
                          f"imported model's own, else {DT:g})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.dt is not None and not (args.dt > 0 and math.isfinite(args.dt)):
        raise ConfigError(f"--dt must be a positive number, not {args.dt!r}")
    if args.command == "import":
        cli.check_positive(("--T", args.T))
        from .interchange.nir_graph import save_model

        model = from_nir(args.graph, dt=args.dt, T=args.T)  # every check before anything is written
        out = cli.output_path(args.out, "--out", inputs=[args.graph])
        save_model(out, model, T=args.T)
        layers = ", ".join(type(m).__name__ for m in model.body) + \
            (", readout" if model.readout is not None else "")
        print(f"{args.graph}: input {list(model.in_shape)}; {layers}")
        print(f"dt = {model.nir_source['dt']:g}: {model.nir_source['dt_reason']}")
        print(f"wrote {out}")
        return 0
    import nir

    from .core.files import atomic_path
    from .interchange import load_checkpoint

    model, _ = load_checkpoint(args.checkpoint)
    graph = to_nir(model, dt=args.dt)
    out = cli.output_path(args.out, "--out", inputs=[args.checkpoint])
    with atomic_path(out) as tmp:
        nir.write(tmp, graph)
    print(f"{args.checkpoint}: {len(graph.nodes)} NIR nodes")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
