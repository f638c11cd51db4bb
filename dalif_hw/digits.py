"""The digits task end to end, as ``train/digits.py`` runs it: train the float model
(:mod:`dalif_hw.model.train`), pack it (:mod:`dalif_hw.quant`), measure its integer twin
(:mod:`dalif_hw.twin`), write the checkpoint. It sits above the stages it runs, so that each
stage imports only those before it."""

from __future__ import annotations

import time
from pathlib import Path

from .core.encoding import encode
from .model.checkpoint import save_checkpoint
from .model.train import TrainOptions, fit_digits, load_digits_split
from .quant.packing import pack_network
from .twin import classify

__all__ = ["train_digits"]


def train_digits(options: TrainOptions = TrainOptions(), out=None, progress: bool = True):
    """Train on the digits split; return the model and its metrics: ``float_acc`` and
    ``int_acc`` (the packed network's integer twin) on the held-out split, ``seconds``.
    With ``out``, writes ``out/model.pt``."""
    start = time.perf_counter()
    model, metrics = fit_digits(options, progress)
    network = pack_network(model, T=options.T, encoding=options.encoding(), WB=options.WB,
                           DB=options.DB, VB=options.VB)
    data = load_digits_split()
    classes = classify(network, encode(data.test_x, network.encoding))
    metrics = {"float_acc": metrics["float_acc"],
               "int_acc": float((classes == data.test_y).mean()),
               "seconds": time.perf_counter() - start}
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        save_checkpoint(Path(out) / "model.pt", model, options, metrics)
    return model, metrics
