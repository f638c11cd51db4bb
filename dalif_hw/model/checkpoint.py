"""Checkpoints: a trained model with its options and metrics, saved and loaded."""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.config import ConfigError, check_input_file
from ..core.files import atomic_path
from .mlp import DALIFMLP

__all__ = ["CHECKPOINT_FORMAT", "read_checkpoint", "load_checkpoint", "build_checkpoint",
           "save_checkpoint"]


#: The ``format`` of checkpoints that :func:`load_checkpoint` understands.
CHECKPOINT_FORMAT = "dalif-hw checkpoint 1"



def read_checkpoint(path) -> dict:
    """The checkpoint dictionary at ``path``, checked: a torch file of
    :data:`CHECKPOINT_FORMAT` whose metrics are numbers.

    Raises
    ------
    ConfigError
        If the file is missing, not a torch checkpoint, or not one this version understands.
    """
    path = Path(path)
    check_input_file(path, "checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not its own
        raise ConfigError(f"checkpoint {str(path)!r} cannot be read by torch.load "
                          f"({_first_line(exc, 120)})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint)
        raise ConfigError(f"checkpoint {str(path)!r} is not a {CHECKPOINT_FORMAT!r} checkpoint "
                          f"(format: {found!r})")
    metrics = checkpoint.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ConfigError(f"checkpoint {str(path)!r}: metrics must be a mapping, not "
                          f"{type(metrics).__name__}")
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"checkpoint {str(path)!r}: metric {key!r} must be a number, "
                              f"not {value!r}")
    return checkpoint


def load_checkpoint(path) -> tuple[torch.nn.Module, dict]:
    """Load a checkpoint written by :func:`save_checkpoint` (a model trained here; one
    imported from NIR loads with :func:`dalif_hw.interchange.load_checkpoint`, which takes
    both).

    Returns the model and the checkpoint dictionary (``T``, ``encoding``, ``metrics``, ...).

    Raises
    ------
    ConfigError
        If the file is missing, not a torch checkpoint, or not one this version understands.
    """
    checkpoint = read_checkpoint(path)
    if checkpoint.get("model") == "nir":
        raise ConfigError(f"checkpoint {str(path)!r} holds a model imported from NIR: load it "
                          f"with dalif_hw.interchange.load_checkpoint")
    return build_checkpoint(checkpoint, path), checkpoint


def build_checkpoint(checkpoint: dict, path) -> torch.nn.Module:
    """The model (in eval mode) of a checkpoint trained here, read by
    :func:`read_checkpoint` from ``path``."""
    from .train import build_model

    try:
        # Checkpoints from before the convolutional model name no model: an MLP.
        model = build_model({"model": "mlp", **checkpoint}, checkpoint["neuron"])
        model.load_state_dict(checkpoint["state_dict"])
        int(checkpoint["T"]), dict(checkpoint["encoding"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"checkpoint {str(path)!r} does not describe a DA-LIF network "
                          f"({_first_line(exc, 160)})") from None
    return model.eval()


def save_checkpoint(path, model: DALIFMLP, options, metrics: dict) -> None:
    """Write ``model.pt`` atomically: architecture, encoding, weights and metrics."""
    checkpoint = {"format": CHECKPOINT_FORMAT, **options.architecture(),
                  "neuron": options.neuron(), "T": options.T, "encoding": options.encoding(),
                  "widths": {"WB": options.WB, "DB": options.DB, "VB": options.VB},
                  "state_dict": model.state_dict(), "metrics": metrics}
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def _first_line(exc: BaseException, limit: int) -> str:
    """``Type: first line of the message`` (the message may be empty)."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0][:limit]}" if lines else type(exc).__name__
