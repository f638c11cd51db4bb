"""Design-space sweeps: lanes, weight width and target per point, each point synthesised and
put through the cycle model, in parallel on Dask (the library behind
``python -m dalif_hw.explore``).

A point is a plain dict (picklable, so that any Dask worker can run it):
``{"design": {...}, "lanes": P, "WB": WB, "target": T, "work": folder, "freq": MHz}``;
``P`` is an int (every layer gets as many of P lanes as it can use) or a string of one
count per layer with neurons, ``"4:2"``.
:func:`evaluate` never raises: a point that fails says so in its result (``error``), one
that does not fit says which resource (``fits`` false), so that a sweep survives both.
"""

from __future__ import annotations

import dataclasses
import itertools
import traceback
from pathlib import Path

import numpy as np

__all__ = ["points", "evaluate", "cycles_per_inference", "pareto", "best_per_target",
           "with_lanes"]


def points(design: dict, lanes, widths, targets, work: Path, freq: float) -> list[dict]:
    """Every combination of ``lanes``, ``widths`` and ``targets`` for ``design``."""
    return [{"design": design, "lanes": P, "WB": WB, "target": target, "freq": freq,
             "work": str(Path(work) / f"{target}_P{str(P).replace(':', '-')}_WB{WB}")}
            for target, P, WB in itertools.product(targets, lanes, widths)]


# -- designs -----------------------------------------------------------------------------------

def _lanes_for(layer, P: int) -> int:
    """``P`` lanes for a layer, as many as it can use (a convolution's row width)."""
    from ..quant.kinds import Conv2d

    if isinstance(layer, Conv2d):
        return min(P, layer.params.shape.out_shape[2])
    return min(P, layer.config.neurons)


def lanes_order(P) -> tuple:
    """A sort key for lanes values, ints and ``"4:2"`` strings alike."""
    return tuple(int(v) for v in str(P).split(":"))


def layer_lanes(layers, P) -> list[int]:
    """Lanes of each layer with neurons for the lanes value ``P`` (see the module
    docstring)."""
    if isinstance(P, str):
        values = lanes_order(P)
        if len(values) != len(layers):
            raise ValueError(f"lanes {P} name {len(values)} layers, the network has "
                             f"{len(layers)} with neurons")
        return [_lanes_for(layer, v) for layer, v in zip(layers, values)]
    return [_lanes_for(layer, P) for layer in layers]


def _acc_lanes_for(layer, T: int, P: int) -> int | None:
    """The layer's accumulation lanes at ``P`` lanes: its packed ones where the layer's
    config takes them with P lanes (a convolution's: as many channels at once, A / P, as
    packed), else P (None)."""
    from ..core.config import ConfigError
    from ..quant.kinds import Conv2d

    A = layer.config.acc_lanes
    if A == layer.config.lanes:
        return None
    if isinstance(layer, Conv2d):
        A = A // layer.config.lanes * P
    try:
        layer.params.config(T, lanes=P, acc_lanes=A)
    except ConfigError:
        return None
    return A


def with_lanes(network, P):
    """The packed ``network`` at ``P`` lanes (see the module docstring); each layer keeps its
    accumulation lanes where they fit the new lanes, and its ``second_set``."""
    from ..quant.kinds import Weighted

    spiking = [layer for layer in network.layers if isinstance(layer, Weighted)]
    lanes = layer_lanes(spiking, P)
    acc_lanes = [_acc_lanes_for(layer, network.T, p) for layer, p in zip(spiking, lanes)]
    given = iter(zip(lanes, acc_lanes))
    layers = [layer if not isinstance(layer, Weighted) else dataclasses.replace(
        layer, config=layer.params.config(network.T, *next(given),
                                          second_set=layer.config.second_set))
        for layer in network.layers]
    return dataclasses.replace(network, layers=layers)


def build_network(design: dict, P, WB: int):
    """The packed network of ``design`` (``{"network": folder}``) at ``P`` lanes and ``WB``
    weight bits: the packed one with new lanes, or re-packed from its checkpoint for another
    weight width; each layer keeps its accumulation lanes where they fit the new lanes, and
    its ``second_set``."""
    from ..quant.kinds import Weighted
    from ..quant.packed import Network

    network = Network.load(design["network"])
    spiking = [layer for layer in network.layers if isinstance(layer, Weighted)]
    if all(layer.params.WB == WB for layer in spiking):
        return with_lanes(network, P)
    lanes = layer_lanes(spiking, P)
    acc_lanes = [_acc_lanes_for(layer, network.T, p) for layer, p in zip(spiking, lanes)]
    from ..interchange import load_checkpoint
    from ..quant.packing import pack_network

    source = (network.source or {}).get("checkpoint")
    if source is None or not (Path(design["network"]) / source).is_file():
        raise ValueError(f"WB={WB} needs the network's checkpoint to re-pack, and "
                         f"{design['network']} names none that exists")
    model, checkpoint = load_checkpoint(Path(design["network"]) / source)
    widths = checkpoint.get("widths", {})
    return pack_network(model, T=network.T, encoding=dict(network.encoding), lanes=lanes,
                        acc_lanes=acc_lanes, WB=WB,
                        second_set=[layer.config.second_set for layer in spiking],
                        **{k: v for k, v in widths.items() if k != "WB"})


def stimulus(design: dict, network) -> tuple[np.ndarray, np.ndarray | None]:
    """The samples of the cycle model (and labels): the held-out digits for a digits
    classifier, else random spikes at ``design['density']``."""
    from ..core.config import ConfigError
    from ..model.train import held_out_stimulus

    try:
        spikes, labels, _ = held_out_stimulus(network, design.get("samples"))
        return spikes, labels
    except ConfigError:   # no digits classifier
        pass
    rng = np.random.default_rng(0)
    return rng.random((design.get("samples") or 64, network.T, network.inputs)) < \
        design.get("density", 0.1), None


def array_network(design: dict, P, WB: int):
    """A single default array (``{"neurons", "inputs", "T"}``) as a one-layer network."""
    from ..core.config import ArrayConfig
    from ..core.layout import default_params
    from ..quant.packed import Dense, Network

    if isinstance(P, str):
        raise ValueError(f"an array has one layer: give its lanes as one number, not {P}")

    config = ArrayConfig(design["neurons"], design["inputs"], design["T"], WB=WB,
                         lanes=min(P, design["neurons"]))
    params = default_params(config)
    return Network(T=config.T, encoding={"kind": "spikes", "T": config.T},
                   layers=[Dense("array", config, params, 1.0)])


# -- the cycle model ---------------------------------------------------------------------------

def layer_cycles(network, spikes: np.ndarray) -> np.ndarray:
    """Cycles of each layer in each timestep of each sample, [layers, S, T], by the cost
    model of each layer kind (:mod:`dalif_hw.hw.cost`) on the beats the twin says it gets
    (behind a counting pool, the beats of its counts: :func:`~dalif_hw.hw.cost.counted_beats`;
    the pool sends them besides)."""
    from .. import twin
    from ..hw import cost
    from ..hw.pool import counted_pools, input_shifts

    counted = counted_pools(network)
    rows = []
    for layer, step in twin.walk(network, spikes):
        behind = input_shifts(network, layer, counted) > 1
        counts = cost.counted_beats(step.counts) if behind else step.counts
        cycles = cost.timestep_cycles(layer, counts, step.output)
        if layer.name in counted:
            cycles = cycles + cost.counted_beats(step.output).sum(axis=2)
        rows.append(cycles)
    return np.stack(rows)


def cycles_per_inference(network, spikes: np.ndarray) -> float:
    """Mean cycles per sample: the layers work on different timesteps at once, so each
    timestep costs its slowest layer, and every other layer adds one timestep of fill."""
    cycles = layer_cycles(network, spikes).astype(np.float64)   # [L, S, T]
    slowest = cycles.max(axis=0).sum(axis=1)                     # [S]
    fill = cycles.mean(axis=2).sum(axis=0) - cycles.mean(axis=2).max(axis=0)
    return float((slowest + fill).mean())


# -- one point ---------------------------------------------------------------------------------

def evaluate(point: dict) -> dict:
    """Synthesise ``point`` and model its cycles; never raises (see the module docstring)."""
    result = {k: point[k] for k in ("target", "lanes", "WB")}
    try:
        result.update(_evaluate(point))
    except Exception as exc:   # a failed point is a result, not the end of the sweep
        result.update(error=f"{type(exc).__name__}: {exc}".splitlines()[0],
                      traceback=traceback.format_exc())
    return result


def _evaluate(point: dict) -> dict:
    from .. import twin
    from ..hw.network import NetworkTop
    from .synthesis import DoesNotFit, synthesize
    from .targets import TARGETS

    design, P, WB, target = point["design"], point["lanes"], point["WB"], point["target"]
    network = build_network(design, P, WB) if "network" in design else \
        array_network(design, P, WB)
    spikes, labels = stimulus(design, network)
    out = {"cycles_per_inference": round(cycles_per_inference(network, spikes), 1)}
    if labels is not None:
        out["int_acc"] = round(float((twin.classify(network, spikes) == labels).mean()), 4)
    options = TARGETS[target].build_options
    if "network" in design:
        hw = NetworkTop(network, **options)
        name = "dalif_network"
    else:
        from ..hw.neuron_array import NeuronArray

        layer = network.layers[0]
        hw = NeuronArray(layer.config, layer.params, **options)
        name = "dalif_array"
    try:
        report = synthesize(hw, name, target, Path(point["work"]), freq_mhz=point["freq"])
    except DoesNotFit as exc:
        return {**out, "fits": False, "over": str(exc)}
    out.update(fits=True, luts=report.luts, ffs=report.ffs, brams=report.brams,
               dsps=report.dsps, fmax_mhz=round(report.fmax_mhz, 1),
               us_per_inference=round(out["cycles_per_inference"] / report.fmax_mhz, 3)
               if report.fmax_mhz > 0 else None)
    return out


# -- the results -------------------------------------------------------------------------------

def pareto(results: list[dict], cost: str) -> list[dict]:
    """The points that fit and that no other point beats on both ``cost`` and microseconds
    per inference (lower is better for both)."""
    fit = [r for r in results if r.get("fits") and r.get("us_per_inference") is not None]
    return sorted((r for r in fit if not any(
        o[cost] <= r[cost] and o["us_per_inference"] <= r["us_per_inference"] and
        (o[cost] < r[cost] or o["us_per_inference"] < r["us_per_inference"]) for o in fit)),
        key=lambda r: r[cost])


def best_per_target(results: list[dict]) -> dict:
    """The fastest point that fits, per target (None where none fits)."""
    best = {}
    for r in results:
        best.setdefault(r["target"], None)
        if r.get("fits") and r.get("us_per_inference") is not None:
            if best[r["target"]] is None or \
                    r["us_per_inference"] < best[r["target"]]["us_per_inference"]:
                best[r["target"]] = r
    return best
