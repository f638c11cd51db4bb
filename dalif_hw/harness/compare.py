"""A generated network on Verilator against its integer twin: the library behind
``python -m dalif_hw.verify``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.config import ConfigError, parse_text
from ..quant.packed import Network
from ..twin import run_network


def float_accuracy(checkpoint: Path | None, data, network: Network) -> float | None:
    """The trained model's accuracy, or None without a checkpoint; a checkpoint of another
    network (sizes, T or encoding) is an error."""
    if checkpoint is None or not checkpoint.is_file():
        return None
    import torch

    from ..interchange import load_checkpoint
    from ..model.train import evaluate

    model, meta = load_checkpoint(checkpoint)
    # Sizes of the input and of every layer with neurons, both sides.
    sizes = [network.inputs] + [layer.out_size for layer in network.weighted]
    with torch.no_grad():
        hidden = model.hidden_spikes(torch.zeros(1, 1, network.inputs))
    model_sizes = [network.inputs] + [h.shape[-1] for h in hidden] + \
        [model.readout.out_features]
    if model_sizes != sizes or meta["T"] != network.T or \
            dict(meta["encoding"]) != dict(network.encoding):
        raise ConfigError(f"checkpoint {str(checkpoint)!r} is of another network: sizes "
                          f"{model_sizes}, T={meta['T']}, encoding {meta['encoding']}; "
                          f"the packed network has sizes {sizes}, T={network.T}, encoding "
                          f"{network.encoding}")
    return evaluate(model, data.test_x, data.test_y, meta["encoding"])


def load_manifest(path: Path, network: Network | None = None) -> dict:
    """Read a generated design's manifest and check that it is whole (and, with ``network``,
    that it is that network's)."""
    try:
        manifest = parse_text(path.read_text(), f"manifest {str(path)!r}")
    except ValueError as exc:
        raise ConfigError(f"manifest {str(path)!r} is not valid JSON ({exc}): truncated or "
                          f"not a manifest; generate it again") from None
    missing = [key for key in ("top", "ports", "streams", "params")
               if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise ConfigError(f"manifest {str(path)!r} lacks {', '.join(missing)}: not the "
                          f"manifest of a generated design")
    if network is not None:
        want = {"inputs": network.inputs,
                ("classes" if network.has_readout else "outputs"): network.outputs,
                "T": network.T, "layers": len(network.layers)}
        have = {key: manifest["params"].get(key) for key in want}
        if have != want:
            raise ConfigError(f"manifest {str(path)!r} is of another network ({have}; the "
                              f"packed network: {want}): generate it from this network")
    return manifest


def worst_cycles_per_sample(network: Network) -> int:
    """Cycles a sample can take at most, by the cost model (:mod:`dalif_hw.hw.cost`): every
    layer counts its beat cap of beats at the dearest index and sends all of its neurons in
    every timestep."""
    from ..hw.cost import worst_timestep_cycles

    beats = network.max_beats()
    return network.T * sum(worst_timestep_cycles(layer, sum(beats[n] for n in layer.inputs))
                           for layer in network.layers)


def verify(network: Network, manifest_path: Path, build_dir: Path, work: Path,
           spikes: np.ndarray, labels: np.ndarray | None = None,
           manifest: dict | None = None) -> dict:
    """Run ``spikes`` [S, T, M] (bool, or counts) through the RTL; compare with the twin;
    return the figures: every logit and class (a network with a readout; accuracies with
    ``labels``) or every output spike (without), mismatching samples, the first mismatch,
    cycles per inference.
    ``manifest``: the one at ``manifest_path``, if the caller has read it already."""
    from .verilator import build, expected_beats, run_bench

    if manifest is None:
        manifest = load_manifest(manifest_path, network)
    traces, logits = run_network(network, spikes)
    index = np.arange(spikes.shape[2])
    # Spikes, or counts: a beat per count, ascending (SPEC 6).
    events = [[np.repeat(index, step).tolist() for step in sample] for sample in spikes]
    case = {"name": "stimulus", "events": events,
            "max_cycles": 2 * len(events) * worst_cycles_per_sample(network) + 100000}
    if network.has_readout:
        classes = logits.argmax(axis=1)
        case["expected"] = {"logits": logits.tolist(), "classes": classes.tolist()}
    else:
        expected = expected_beats(traces[-1].spikes_out)
        case.update(expected=expected, record=True)
    built = build(manifest_path.with_suffix(".v"), manifest["top"], build_dir)
    (result,) = run_bench(built, manifest["top"], manifest_path, [case], work)
    summary = {"samples": len(events), "first_mismatch": result.get("message")}
    if network.has_readout:
        rtl_classes = np.array(result.get("classes", []))
        rtl_logits = result.get("logits", [])
        summary["mismatches"] = sum(
            1 for s in range(len(events))
            if s >= len(rtl_classes) or rtl_classes[s] != classes[s] or
            s >= len(rtl_logits) or list(rtl_logits[s]) != logits[s].tolist())
        cycles = result.get("class_cycles")
        if labels is not None:
            summary["int_acc"] = float((classes == labels).mean())
            summary["rtl_acc"] = float((rtl_classes == labels[:len(rtl_classes)]).sum()
                                       / len(labels))
    else:
        got = result.get("spikes", [])
        summary["mismatches"] = sum(1 for s in range(len(events))
                                    if s >= len(got) or got[s] != expected[s])
        summary["spikes_out"] = int(traces[-1].spikes_out.sum())
        cycles = result.get("eot_cycles")
    summary["cycles_per_inference"] = None
    if cycles and result.get("first_in") is not None:
        summary["cycles_per_inference"] = (cycles[-1] - result["first_in"] + 1) / len(events)
    return summary
