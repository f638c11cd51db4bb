"""``python -m dalif_hw.explore``: sweep lanes, weight width and target, in parallel on Dask.

    python -m dalif_hw.explore --network runs/digits/packed --lanes 2,4,8,16 \\
        --weight-width 4,8 --target ecp5-25k,ice40-up5k --out build/explore
    python -m dalif_hw.explore --neurons 256 --inputs 256 --T 2 --lanes 4,8,16 \\
        --target ecp5-25k --scheduler tcp://host:8786 --out build/explore

Each point is synthesised (Yosys, nextpnr) and put through the cycle model
(:mod:`dalif_hw.flow.explore`), on a local Dask cluster by default (``--workers``
processes) or on the cluster whose scheduler ``--scheduler`` names (its workers need
dalif-hw and the YoWASP tools installed, and the same paths). Progress is shown as points
finish; a point that fails is reported and the sweep goes on. Writes ``results.md``,
``results.json`` and ``pareto.png`` (LUTs and block RAMs against microseconds per inference)
into ``--out`` and prints the fastest configuration that fits each target. Exit status 1 if
every point failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from . import cli
from .core.config import ConfigError
from .core.files import write_text_atomic
from .core.process import children_ignore_sigint
from .flow.targets import TARGETS

__all__ = ["main", "build_parser"]


def _counts(flag: str, what: str, per_layer: bool = False):
    """A parser of comma-separated positive integers (``what`` names them in errors); with
    ``per_layer``, a value may also be one per layer joined by colons (``4:2``), kept as that
    string."""
    def parse(text: str) -> list:
        values = []
        for part in text.split(","):
            try:
                counts = [int(v) for v in (part.split(":") if per_layer else [part])]
            except ValueError:
                raise argparse.ArgumentTypeError(f"{flag} takes comma-separated {what}, not "
                                                 f"{text!r}") from None
            if any(v < 1 for v in counts):
                raise argparse.ArgumentTypeError(f"{flag} values must be positive, not "
                                                 f"{text!r}")
            values.append(counts[0] if len(counts) == 1 else part)
        return values
    return parse


def _targets(text: str) -> list[str]:
    targets = text.split(",")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise argparse.ArgumentTypeError(f"no target {unknown[0]!r} (there are "
                                         f"{', '.join(sorted(TARGETS))})")
    return targets


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dalif_hw.explore",
        description="Sweep lanes, weight width and target for an array or a packed network: "
                    "synthesis and the cycle model per point, in parallel on Dask.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--network", metavar="DIR", help="packed network folder")
    what.add_argument("--neurons", type=int, metavar="N", help="a default array of N neurons")
    parser.add_argument("--inputs", type=int, metavar="M", help="the array's inputs (default N)")
    parser.add_argument("--T", type=int, default=2, help="the array's timesteps (default 2)")
    parser.add_argument("--lanes", type=_counts("--lanes", "lanes (P, or P:P:... per layer)",
                                                per_layer=True),
                        required=True, metavar="P,P,...",
                        help="lanes to try: P (each layer gets as many as it can use) or "
                             "P:P:... (one per layer with neurons, e.g. 4:2)")
    parser.add_argument("--weight-width", type=_counts("--weight-width", "integers"),
                        metavar="WB,...",
                        help="weight widths to try (default: the network's, else 8); a "
                             "network is re-packed from its checkpoint for others")
    parser.add_argument("--target", type=_targets, required=True, metavar="T,T,...",
                        help=f"targets to try ({', '.join(sorted(TARGETS))})")
    parser.add_argument("--freq", type=float, default=150.0, metavar="MHZ",
                        help="nextpnr's clock constraint (default: %(default)s)")
    parser.add_argument("--density", type=float, default=0.1,
                        help="input spike density of an array's cycle model (default 0.1)")
    parser.add_argument("--samples", type=int, metavar="S",
                        help="samples of the cycle model (default: the held-out digits, or 64)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="a Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes of the local cluster (default: %(default)s)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    return parser


async def _stay_down(*args, **kwargs) -> None:
    """A nanny's restart of its worker, replaced: a worker that died (killed by an interrupt,
    or by its point) stays down, and its point is reported failed."""
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.check_positive(("--neurons", args.neurons), ("--inputs", args.inputs),
                       ("--T", args.T), ("--samples", args.samples), ("--workers", args.workers))
    if not 0 < args.density <= 1:
        raise ConfigError(f"--density must be in (0, 1], not {args.density}")
    if not (args.freq > 0 and math.isfinite(args.freq)):
        raise ConfigError(f"--freq must be a positive number of MHz, not {args.freq}")
    if args.network:
        from .quant.packed import Network

        network = Network.load(args.network)   # checked before any worker starts
        design = {"network": str(Path(args.network).resolve())}
        widths = args.weight_width or sorted({layer.params.WB for layer in network.weighted})
    else:
        design = {"neurons": args.neurons, "inputs": args.inputs or args.neurons, "T": args.T,
                  "density": args.density}
        widths = args.weight_width or [8]
    design["samples"] = args.samples
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError("python -m dalif_hw.explore needs Dask: pip install -e '.[explore]'") \
            from None
    from tqdm import tqdm

    from .flow import explore

    if args.scheduler:
        try:
            client = Client(args.scheduler, timeout="10s")
        except (OSError, ValueError) as exc:    # ValueError: not an address at all
            raise ConfigError(f"cannot reach the Dask scheduler --scheduler "
                              f"{args.scheduler!r}: {exc}") from None
        cluster = None
    else:
        # Workers that ignore a terminal's Ctrl-C (this process ends them) and that no nanny
        # restarts once they are gone (a point whose worker died is reported failed).
        with children_ignore_sigint():
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
        for nanny in cluster.workers.values():
            nanny.instantiate = _stay_down
        logging.getLogger("distributed").setLevel(logging.ERROR)
        client = Client(cluster)
    out = cli.output_folder(args.out)
    todo = explore.points(design, args.lanes, widths, args.target, out / "points", args.freq)
    results = []
    try:
        futures = [client.submit(explore.evaluate, point, pure=False) for point in todo]
        for future in tqdm(as_completed(futures), total=len(futures), desc="points",
                           file=sys.stderr):
            try:
                result = future.result()
            except Exception as exc:   # the worker died: the point failed, the sweep goes on
                point = todo[futures.index(future)]
                result = {k: point[k] for k in ("target", "lanes", "WB")}
                result["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            tqdm.write(summary_line(result), file=sys.stderr)
            results.append(result)
    except KeyboardInterrupt:
        # The workers are gone already (cli.handle_signals): close without Dask's warnings.
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    results.sort(key=lambda r: (r["target"], explore.lanes_order(r["lanes"]), r["WB"]))
    write_outputs(out, results)
    best = explore.best_per_target(results)
    for target, r in best.items():
        print(f"{target}: " + (f"fastest that fits: lanes {r['lanes']}, WB {r['WB']}: "
                               f"{r['us_per_inference']} us per inference, {r['luts']} LUTs, "
                               f"{r['brams']} block RAMs, {r['fmax_mhz']} MHz"
                               if r else "nothing fits"))
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'pareto.png'}")
    return 1 if all("error" in r for r in results) else 0


def summary_line(r: dict) -> str:
    head = f"{r['target']} lanes {r['lanes']} WB {r['WB']}: "
    if "error" in r:
        return head + f"failed: {r['error']}"
    if not r.get("fits"):
        return head + f"does not fit ({r['over']})"
    return head + (f"{r['luts']} LUTs, {r['brams']} BRAM, {r['fmax_mhz']} MHz, "
                   f"{r['cycles_per_inference']} cycles, {r['us_per_inference']} us")


COLUMNS = ("target", "lanes", "WB", "fits", "luts", "ffs", "brams", "dsps", "fmax_mhz",
           "cycles_per_inference", "us_per_inference", "int_acc", "pareto", "note")


def write_outputs(out: Path, results: list[dict]) -> None:
    from .flow.explore import pareto

    front = {id(r) for cost in ("luts", "brams") for r in pareto(results, cost)}
    rows = []
    for r in results:
        note = r.get("error") or (r.get("over") if r.get("fits") is False else "")
        rows.append({**{k: r.get(k, "") for k in COLUMNS[:-2]},
                     "pareto": "yes" if id(r) in front else "", "note": note})
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[k]) for k in COLUMNS) + " |" for row in rows]
    write_text_atomic(out / "results.md", "# Design-space sweep\n\n" + "\n".join(lines) +
                      "\n\n![Pareto](pareto.png)\n")
    write_text_atomic(out / "results.json", json.dumps(
        [{k: v for k, v in r.items() if k != "traceback"} for r in results], indent=2) + "\n")
    plot(out / "pareto.png", results)


def plot(path: Path, results: list[dict]) -> None:
    """LUTs and block RAMs against microseconds per inference, per target; the Pareto
    front of each drawn as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .core.files import atomic_path
    from .flow.explore import pareto

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, cost, label in ((axes[0], "luts", "LUTs / LCs"), (axes[1], "brams", "block RAMs")):
        for target in sorted({r["target"] for r in results}):
            mine = [r for r in results if r["target"] == target]
            fit = [r for r in mine if r.get("fits") and r.get("us_per_inference")]
            ax.scatter([r["us_per_inference"] for r in fit], [r[cost] for r in fit],
                       label=target)
            front = pareto(mine, cost)
            ax.plot([r["us_per_inference"] for r in front], [r[cost] for r in front],
                    linestyle="--")
            for r in fit:
                ax.annotate(f"P{r['lanes']} W{r['WB']}", (r["us_per_inference"], r[cost]),
                            fontsize=7)
        ax.set_xlabel("microseconds per inference")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(cli.run(main))
