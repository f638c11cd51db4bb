"""Benchmarks: throughput, resources and Fmax, the digits network, generator and simulator speed.

    python benchmarks/run.py --jobs 2 --out benchmarks/results  # the full set (about an hour)
    python benchmarks/run.py --quick --out benchmarks/results   # a few minutes of it
    python benchmarks/run.py --only digits --out benchmarks/results   # redo one section

writes ``results.md`` (Markdown tables), ``results.json`` and PNG plots into ``--out``.
Cycle counts come from Verilator and are exact; times are wall-clock on this machine and
noisy (compare them as ratios within one run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dalif_hw import twin  # noqa: E402
from dalif_hw.core.config import ArrayConfig  # noqa: E402
from dalif_hw.core.files import write_text_atomic  # noqa: E402
from dalif_hw.core.params import IntParams  # noqa: E402
from dalif_hw.core.tools import ToolError  # noqa: E402
from dalif_hw.flow.synthesis import DoesNotFit, synthesize  # noqa: E402
from dalif_hw.flow.targets import TARGETS  # noqa: E402
from dalif_hw.harness.verilator import (  # noqa: E402
    build,
    config_writes,
    expected_beats,
    run_bench,
)
from dalif_hw.hw.cost import worst_timestep_cycles  # noqa: E402
from dalif_hw.hw.emit import emit_array, emit_network, write_outputs  # noqa: E402
from dalif_hw.hw.network import NetworkTop  # noqa: E402
from dalif_hw.hw.neuron_array import NeuronArray  # noqa: E402
from dalif_hw.quant.packed import Dense  # noqa: E402


def firing_params(config: ArrayConfig, rng) -> IntParams:
    """Positive weights and low thresholds: most neurons fire (both bound terms matter)."""
    n, m = config.neurons, config.inputs
    return IntParams(weight=rng.integers(0, 128, (n, m)), alpha=np.full(n, 256),
                     beta=np.full(n, 128), threshold=np.full(n, 200),
                     bias=np.zeros(n, np.int64))


def throughput(work: Path, shapes, beats, timesteps: int) -> list[dict]:
    rows = []
    for N, M, P in shapes:
        config = ArrayConfig(N, M, 2, lanes=P)
        folder = work / f"tp_{N}_{M}_{P}"
        write_outputs(folder, emit_array(NeuronArray(config), "dalif_array"))
        start = time.perf_counter()
        built = build(folder / "dalif_array.v", "dalif_array", work / f"tp_{N}_{M}_{P}_sim")
        build_s = time.perf_counter() - start
        rng = np.random.default_rng(0)
        params = firing_params(config, rng)
        manifest = json.loads((folder / "dalif_array.json").read_text())
        cases = []
        for E in beats:
            if E > M:
                continue
            events = [[rng.integers(0, M, E).tolist() for _ in range(2)]
                      for _ in range(timesteps // 2)]
            trace = twin.run(params, events)
            case = {"name": f"E={E}", "events": events,
                    "expected": expected_beats(trace.spikes_out),
                    "F": float(trace.spikes_out.sum(axis=2).mean()), "E": E,
                    "max_cycles": 4 * timesteps * worst_timestep_cycles(
                        Dense("array", config, params, 1.0), E)}
            if not cases:
                case["config"] = [config_writes(manifest, params)]
            cases.append(case)
        start = time.perf_counter()
        results = run_bench(built, "dalif_array", folder / "dalif_array.json", cases,
                            work / f"tp_{N}_{M}_{P}_run")
        sim_s = time.perf_counter() - start
        simulated = 0
        for case, result in zip(cases, results):
            if not result["ok"]:
                raise RuntimeError(f"{N}/{P} {case['name']}: {result.get('message')}")
            cycles = (result["last_out"] - result["first_in"] + 1) / timesteps
            simulated += result["last_out"] + result.get("config_cycles", 0)
            G, E, F = config.groups, case["E"], case["F"]
            rows.append({"N": N, "M": M, "P": P, "E": E, "F": round(F, 1),
                         "cycles_per_timestep": round(cycles, 2),
                         "steady": float(np.median(np.diff(result["eot_cycles"]))),
                         "bound": max(G * (E + 1), F + 1) + 8,
                         "utilization": round(E * N / (P * cycles), 3) if E else 0.0})
        rows[-1]["sim_cycles_per_s"] = round(simulated / sim_s)
        rows[-1]["verilator_build_s"] = round(build_s, 1)
    return rows


def synth_one(work: Path, target: str, N: int, M: int, P: int) -> dict:
    config = ArrayConfig(N, M, 2, lanes=P)
    row = {"target": target, "N": N, "M": M, "P": P}
    try:
        # As python -m dalif_hw.synth builds it: the target's memories and DSP blocks.
        report = synthesize(NeuronArray(config, **TARGETS[target].build_options),
                            "dalif_array", target, work / f"syn_{target}_{N}_{M}_{P}")
        row.update(luts=report.luts, ffs=report.ffs, brams=report.brams,
                   dsps=report.dsps, fmax_mhz=round(report.fmax_mhz, 1),
                   seconds=round(sum(report.seconds.values())))
    except DoesNotFit as exc:
        row["fits"] = f"no: {exc}"
    except ToolError as exc:
        row["fits"] = f"tool failed: {str(exc).splitlines()[0]}"
    print(row, flush=True)
    return row


def resources(work: Path, runs, jobs: int) -> list[dict]:
    """Synthesise each (target, N, M, P) of ``runs``, ``jobs`` at a time."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(synth_one, *zip(*[(work, *run) for run in runs])))


#: The commit whose default array is the "before" of the Fmax and area table: the last one
#: before issue 14's hardware changes (its rtl/dalif_array.v, read with git).
BEFORE = "a5f9f1f"
#: ODIN (Frenkel et al., 2019), a 256-neuron core, on the same flow and part (issue 14).
ODIN = {"luts": 11150, "fmax_mhz": 20.0}


def default_array(work: Path, seeds=(1, 2, 3), freq_mhz: float = 150.0) -> list[dict]:
    """The default array (256 x 256, T = 2) on the ECP5-25F as ``synth`` builds it, at commit
    :data:`BEFORE` and now, nextpnr seeds ``seeds``, with the ratios to ODIN."""
    before = subprocess.run(["git", "show", f"{BEFORE}:rtl/dalif_array.v"], cwd=ROOT,
                            capture_output=True, text=True)
    if before.returncode:
        raise RuntimeError(f"git show {BEFORE}:rtl/dalif_array.v failed (the section needs "
                           f"a git checkout): {before.stderr.strip()}")
    now = NeuronArray(ArrayConfig(256, 256, 2), **TARGETS["ecp5-25k"].build_options)
    rows = []
    for label, design in ((BEFORE, before.stdout), ("now", now)):
        for seed in seeds:
            report = synthesize(design, "dalif_array", "ecp5-25k",
                                work / f"default_{label}_seed{seed}", freq_mhz=freq_mhz,
                                seed=seed)
            path = report.critical_path
            rows.append({"design": label, "seed": seed, "freq_mhz": freq_mhz,
                         "luts": report.luts, "ffs": report.ffs, "brams": report.brams,
                         "dsps": report.dsps, "fmax_mhz": round(report.fmax_mhz, 1),
                         "critical_path": f"{path['from']} -> {path['to']} "
                                          f"({path['logic_ns']} ns logic, "
                                          f"{path['routing_ns']} ns routing)",
                         "luts_vs_odin": round(report.luts / ODIN["luts"], 2),
                         "fmax_vs_odin": round(report.fmax_mhz / ODIN["fmax_mhz"], 1)})
            print(rows[-1], flush=True)
    return rows


def digits(work: Path, target: str) -> list[dict]:
    """The digits network trained once, packed (hidden layer: 16 lanes, accumulating 16 as
    before and 64), verified on Verilator and synthesised: one row each."""
    import torch

    from dalif_hw.digits import train_digits
    from dalif_hw.model.train import TrainOptions

    torch.set_num_threads(2)
    start = time.perf_counter()
    model, metrics = train_digits(TrainOptions(), out=work / "digits", progress=False)
    train_s = time.perf_counter() - start
    return [digits_one(work, target, acc, model, metrics, train_s) for acc in (16, 64)]


def digits_one(work: Path, target: str, acc: int, model, metrics: dict,
               train_s: float) -> dict:
    from dalif_hw.core.encoding import encode
    from dalif_hw.harness.compare import verify
    from dalif_hw.model.train import TrainOptions, load_digits_split
    from dalif_hw.quant.packing import pack_network

    options = TrainOptions()
    network = pack_network(model, T=options.T, encoding=options.encoding(),
                           acc_lanes=[acc, None])
    work = work / f"acc{acc}"
    folder = work / "digits_rtl"
    # One design, verified and synthesised: as python -m dalif_hw.synth builds it for the
    # target (its memories, and its DSP blocks shared out among the layers).
    hw = NetworkTop(network, **TARGETS[target].build_options)
    start = time.perf_counter()
    write_outputs(folder, emit_network(hw, "dalif_network"))
    gen_s = time.perf_counter() - start
    data = load_digits_split()
    spikes = encode(data.test_x, network.encoding)
    start = time.perf_counter()
    summary = verify(network, folder / "dalif_network.json", work / "digits_sim",
                     work / "digits_verify", spikes, data.test_y)
    verify_s = time.perf_counter() - start
    report = synthesize(hw, "dalif_network", target, work / "digits_syn")
    traces, _ = twin.run_network(network, spikes)
    # Synaptic operations: every counted input beat adds a weight into each of the N
    # neurons of its layer.
    sops = spikes.sum() * network.layers[0].config.neurons + sum(
        trace.spikes_out.sum() * layer.config.neurons
        for trace, layer in zip(traces, network.layers[1:]))
    cycles = summary["cycles_per_inference"]
    fmax = report.fmax_mhz
    return {"acc_lanes": acc, "float_acc": metrics["float_acc"], "int_acc": summary["int_acc"],
            "rtl_acc": summary["rtl_acc"], "mismatches": summary["mismatches"],
            "cycles_per_inference": round(cycles, 1), "target": target,
            "fmax_mhz": round(fmax, 1), "luts": report.luts, "brams": report.brams,
            "dsps": report.dsps, "us_per_inference": round(cycles / fmax, 2),
            "inferences_per_s": round(fmax * 1e6 / cycles),
            "sops_per_inference": round(float(sops) / len(spikes)),
            "sops_per_s": round(float(sops) / len(spikes) * fmax * 1e6 / cycles),
            "seconds": {"train": round(train_s, 1), "generate": round(gen_s, 1),
                        "verify": round(verify_s, 1)}}


def generator_speed(sizes) -> list[dict]:
    rows = []
    for N in sizes:
        config = ArrayConfig(N, 256, 2, lanes=min(N, 16))
        start = time.perf_counter()
        files = emit_array(NeuronArray(config), "dalif_array")
        rows.append({"N": N, "M": 256, "P": config.lanes,
                     "seconds": round(time.perf_counter() - start, 2),
                     "verilog_kb": round(len(files["dalif_array.v"]) / 1024)})
        print(rows[-1], flush=True)
    return rows


def twin_speed(samples: int = 1000, repeats: int = 5) -> list[dict]:
    """The integer twin on the default 256 x 256 array, T = 2, against the twin of commit
    b62675b (benchmarks/twin_reference.py), both in this run: best of ``repeats``, and the
    results bit for bit."""
    import twin_reference

    config = ArrayConfig(256, 256, 2)
    rng = np.random.default_rng(0)
    params = firing_params(config, rng)
    rows = []
    for density in (0.1, 0.5):
        spikes = rng.random((samples, config.T, config.inputs)) < density
        timings = {}
        for name, fn in (("b62675b", lambda: twin_reference.run(params, spikes)),
                         ("now", lambda: twin.run(params, spikes))):
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                result = fn()
                best = min(best, time.perf_counter() - start)
            timings[name] = (best, result)
        ref, now = timings["b62675b"][1], timings["now"][1]
        identical = all(np.array_equal(a, b) for a, b in
                        zip(ref, (now.current, now.membrane, now.spikes_out)))
        rows.append({"density": density, "samples": samples, "T": config.T,
                     "b62675b_ms": round(1e3 * timings["b62675b"][0], 2),
                     "now_ms": round(1e3 * timings["now"][0], 2),
                     "speedup": round(timings["b62675b"][0] / timings["now"][0], 1),
                     "identical": identical})
        print(rows[-1], flush=True)
    return rows


def table(rows: list[dict]) -> str:
    if not rows:
        return "(none)\n"
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def cell(value) -> str:
    """A table cell: floats to at most four decimals, dicts as ``key value`` pairs."""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        return ", ".join(f"{k} {cell(v)}" for k, v in value.items())
    return str(value)


def plots(out: Path, tp: list[dict], res: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key in sorted({(r["N"], r["P"]) for r in tp}):
        rows = [r for r in tp if (r["N"], r["P"]) == key]
        ax1.plot([r["E"] for r in rows], [r["cycles_per_timestep"] for r in rows], "o-",
                 label=f"N={key[0]}, P={key[1]}")
        ax2.plot([r["E"] for r in rows], [r["utilization"] for r in rows], "o-",
                 label=f"N={key[0]}, P={key[1]}")
    ax1.set(xlabel="spike beats per timestep E", ylabel="cycles per timestep",
            xscale="symlog", yscale="log", title="throughput")
    ax2.set(xlabel="spike beats per timestep E", ylabel="utilization E*N/(P*cycles)",
            xscale="symlog", title="datapath utilization")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=120)
    fitted = [r for r in res if "luts" in r]
    if fitted:
        fig, ax = plt.subplots(figsize=(6, 4))
        for target in sorted({r["target"] for r in fitted}):
            rows = [r for r in fitted if r["target"] == target]
            ax.scatter([r["luts"] for r in rows], [r["fmax_mhz"] for r in rows], label=target)
            for r in rows:
                ax.annotate(f"N={r['N']},P={r['P']}", (r["luts"], r["fmax_mhz"]), fontsize=7)
        ax.set(xlabel="LUTs", ylabel="Fmax (MHz)", title="resources and Fmax")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "resources.png", dpi=120)


SECTIONS = ("generator", "throughput", "resources", "digits", "default", "twin")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results", help="output folder")
    parser.add_argument("--quick", action="store_true", help="a small subset (minutes)")
    parser.add_argument("--only", nargs="+", metavar="SECTION",
                        help="rerun only these sections (generator, throughput, resources, "
                             "digits, default, twin) and keep the others from --out's "
                             "results.json")
    parser.add_argument("--jobs", type=int, default=1,
                        help="synthesis runs at a time (each takes one core; default 1)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    if args.only:
        unknown = sorted(set(args.only) - set(SECTIONS))
        if unknown:
            parser.error(f"--only: no section {', '.join(unknown)} (there are "
                         f"{', '.join(SECTIONS)})")
        if not (out / "results.json").exists():
            parser.error(f"--only needs the results of an earlier run in "
                         f"{out / 'results.json'}")
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    if args.quick:
        shapes, beats, timesteps = [(64, 64, 4), (64, 64, 16), (256, 64, 16)], [0, 4, 16, 64], 48
        runs = [("ecp5-25k", 64, 64, 16), ("ecp5-25k", 256, 256, 16)]
        gens = [64, 256, 1024]
    else:
        shapes = [(64, 64, 4), (64, 64, 16), (64, 64, 64), (256, 256, 16), (1024, 256, 16)]
        beats, timesteps = [0, 1, 4, 16, 64, 256], 32
        # M = min(N, 256): a 1024 x 1024 array's 8 Mbit of weights fits no ECP5.
        ecp5 = [(64, 64, 4), (64, 64, 16), (256, 256, 16), (256, 256, 32), (1024, 256, 16)]
        runs = [(target, *size) for target in ("ecp5-25k", "ecp5-85k") for size in ecp5]
        runs += [("ice40-up5k", *size) for size in [(64, 64, 2), (64, 64, 4), (256, 256, 16)]]
        gens = [64, 256, 1024, 4096]
    sections = {"generator": lambda: generator_speed(gens),
                "throughput": lambda: throughput(work, shapes, beats, timesteps),
                "resources": lambda: resources(work, runs, args.jobs),
                "digits": lambda: digits(work, "ecp5-25k"),
                "default": lambda: default_array(work),
                "twin": lambda: twin_speed()}
    results = json.loads((out / "results.json").read_text()) if args.only else {}
    for name, run in sections.items():
        if not args.only or name in args.only:
            results[name] = run()
    write_text_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    plots(out, results["throughput"], results["resources"])
    md = ["# dalif-hw benchmarks", "",
          "Cycle counts from Verilator (exact); times are wall-clock and noisy.", "",
          "## Throughput", "",
          "Cycles per timestep as the spec counts them (first input beat to last output "
          "eot, over all timesteps; the one-off fill and drain is amortised over the run), "
          "`steady` the median distance between eot beats, `bound` max(GA E + G, F+1) + 8 "
          "(GA = G here), "
          "utilization E*N/(P*cycles).", "",
          table(results["throughput"]), "![throughput](throughput.png)", "",
          "## Resources and post-route Fmax (out of context on ECP5; board top on iCE40)", "",
          table(results["resources"]), "![resources](resources.png)", "",
          "## The digits network", "",
          "The hidden layer's 16 lanes accumulating 16 neurons a cycle (as before) and 64 "
          "(`--acc-lanes 64,10`), in this run.", "",
          table(results["digits"]),
          "## The default array on the ECP5-25F, before and after", "",
          f"256 x 256, T = 2, as `python -m dalif_hw.synth --neurons 256 --T 2 --target "
          f"ecp5-25k` builds it (`--freq 150`, the default): commit {BEFORE}'s "
          f"rtl/dalif_array.v and now, nextpnr seeds 1-3, in this run. ODIN (256 neurons) "
          f"takes {ODIN['luts']:,} LUTs at {ODIN['fmax_mhz']:g} MHz on the same flow and part.",
          "", table(results.get("default", [])),
          "## Generator time (M = 256)", "", table(results["generator"]),
          "## Integer twin speed (256 x 256, T = 2; against commit b62675b, same run)", "",
          table(results.get("twin", []))]
    write_text_atomic(out / "results.md", "\n".join(md) + "\n")
    print(f"wrote {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
