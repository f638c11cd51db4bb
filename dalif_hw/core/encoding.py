"""Input encoding: pixels to spikes, done the same way for the model and the hardware.

``thermometer``: with T timesteps and pixel values in ``[0, max_value]``, input j spikes at
timestep t when ``pixel_j >= levels[t]``, the levels rising evenly:
``levels[t] = (t + 1) * max_value / (T + 1)``. A dim stroke spikes once, a bright one every
timestep, so T timesteps carry T + 1 grey levels. The host runs this in Python in front of
the hardware; the model trains on exactly these spikes.

``spikes``: the input is spikes already (a network imported from NIR, which carries no
encoding): ``{"kind": "spikes", "T": 4}``; samples come as a stimulus file (SPEC 4).
"""

from __future__ import annotations

import numpy as np

from .config import ConfigError

__all__ = ["ENCODINGS", "thermometer_levels", "encode", "check_encoding"]

ENCODINGS = ("thermometer", "spikes")


def check_encoding(encoding, T: int | None = None, where: str = "encoding") -> None:
    """Check an encoding description (``{"kind": "thermometer", "T": 2, "max_value": 16.0}``,
    ``{"kind": "spikes", "T": 4}``)
    and, with ``T`` given, that it makes that many timesteps.

    Raises
    ------
    ConfigError
        For anything else: one line naming the key and the value.
    """
    if not isinstance(encoding, dict):
        raise ConfigError(f"{where} must be a mapping, not {encoding!r}")
    known = ("kind", "T", "max_value") if encoding.get("kind") != "spikes" else ("kind", "T")
    for key in encoding:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
    if encoding.get("kind") not in ENCODINGS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(ENCODINGS)}, "
                          f"not {encoding.get('kind')!r}")
    steps = encoding.get("T")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"{where}: T must be a positive integer, not {steps!r}")
    if T is not None and steps != T:
        raise ConfigError(f"{where}: T={steps} disagrees with the network's T={T}")
    if encoding["kind"] == "spikes":
        return
    peak = encoding.get("max_value")
    if not isinstance(peak, (int, float)) or isinstance(peak, bool) or not peak > 0 \
            or peak == float("inf"):
        raise ConfigError(f"{where}: max_value must be a positive number, not {peak!r}")


def thermometer_levels(T: int, max_value: float) -> np.ndarray:
    """The T rising levels of the thermometer code."""
    return (np.arange(1, T + 1) * max_value) / (T + 1)


def encode(pixels: np.ndarray, encoding: dict) -> np.ndarray:
    """Encode ``pixels`` [S, M] into spikes, bool [S, T, M].

    ``encoding`` is the description stored with a trained model and in the network file:
    ``{"kind": "thermometer", "T": 2, "max_value": 16.0}``.

    Raises
    ------
    ConfigError
        For an unknown kind or a malformed description.
    """
    check_encoding(encoding)
    if encoding["kind"] == "spikes":
        raise ConfigError("this network takes spikes, not pixels (encoding 'spikes'): give "
                          "them as a stimulus file, e.g. --stimulus s.npz")
    T, max_value = encoding["T"], float(encoding["max_value"])
    pixels = np.asarray(pixels, np.float64)
    levels = thermometer_levels(T, max_value)
    return pixels[:, None, :] >= levels[None, :, None]
