"""Input encoding: pixels to spikes, done the same way for the model and the hardware.

``thermometer``: with T timesteps and pixel values in ``[0, max_value]``, input j spikes at
timestep t when ``pixel_j >= levels[t]``, the levels rising evenly:
``levels[t] = (t + 1) * max_value / (T + 1)``. A dim stroke spikes once, a bright one every
timestep, so T timesteps carry T + 1 grey levels. The host runs this in Python in front of
the hardware; the model trains on exactly these spikes.

``spikes``: the input is spikes already (a network imported from NIR, which carries no
encoding): ``{"kind": "spikes", "T": 4}``; samples come as a stimulus file (SPEC 4).

``analog``: the analog input fed to the first layer at every timestep, as snnTorch's and
SpikingJelly's tutorials feed an image: ``{"kind": "analog", "T": 25, "levels": 15,
"max_value": 1.0}``. A value x in ``[0, max_value]`` is ``round(x / max_value * levels)``
beats of its index in every timestep (SPEC 4's counts, repeats counting again), and packing
folds ``max_value / levels`` into the first layer's weights: exact for inputs on that grid,
a rounding of ``max_value / (2 levels)`` at most otherwise.
"""

from __future__ import annotations

import numpy as np

from .config import ConfigError

__all__ = ["ENCODINGS", "thermometer_levels", "encode", "check_encoding", "input_factor",
           "input_beats"]

ENCODINGS = ("thermometer", "spikes", "analog")
#: The keys of each encoding.
KEYS = {"thermometer": ("kind", "T", "max_value"), "spikes": ("kind", "T"),
        "analog": ("kind", "T", "levels", "max_value")}
#: The most levels an analog input may have (beats of one index in one timestep).
MAX_LEVELS = 255


def check_encoding(encoding, T: int | None = None, where: str = "encoding") -> None:
    """Check an encoding description (``{"kind": "thermometer", "T": 2, "max_value": 16.0}``,
    ``{"kind": "spikes", "T": 4}``, ``{"kind": "analog", "T": 4, "levels": 15,
    "max_value": 1.0}``)
    and, with ``T`` given, that it makes that many timesteps.

    Raises
    ------
    ConfigError
        For anything else: one line naming the key and the value.
    """
    if not isinstance(encoding, dict):
        raise ConfigError(f"{where} must be a mapping, not {encoding!r}")
    known = KEYS.get(encoding.get("kind"), KEYS["thermometer"])
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
    if encoding["kind"] == "analog":
        levels = encoding.get("levels")
        if not isinstance(levels, int) or isinstance(levels, bool) or \
                not 1 <= levels <= MAX_LEVELS:
            raise ConfigError(f"{where}: levels must be an integer from 1 to {MAX_LEVELS}, "
                              f"not {levels!r}")
    peak = encoding.get("max_value")
    if not isinstance(peak, (int, float)) or isinstance(peak, bool) or not peak > 0 \
            or peak == float("inf"):
        raise ConfigError(f"{where}: max_value must be a positive number, not {peak!r}")


def thermometer_levels(T: int, max_value: float) -> np.ndarray:
    """The T rising levels of the thermometer code."""
    return (np.arange(1, T + 1) * max_value) / (T + 1)


def input_factor(encoding: dict) -> float:
    """What one input beat stands for: ``max_value / levels`` for analog input (folded into
    the first layer's weights when packing), else 1."""
    return encoding["max_value"] / encoding["levels"] if encoding["kind"] == "analog" else 1.0


def input_beats(encoding: dict) -> int:
    """The most beats of one input index in one timestep."""
    return encoding["levels"] if encoding["kind"] == "analog" else 1


def encode(pixels: np.ndarray, encoding: dict) -> np.ndarray:
    """Encode ``pixels`` [S, M] into spikes, bool [S, T, M] (analog input: counts, int64).

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
    if encoding["kind"] == "analog":
        bad = ~((pixels >= 0) & (pixels <= max_value))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ConfigError(f"analog input {float(pixels[where])!r} at {list(where)} is outside "
                              f"[0, max_value = {max_value:g}]")
        counts = np.round(pixels / max_value * encoding["levels"]).astype(np.int64)
        return np.repeat(counts[:, None, :], T, axis=1)
    levels = thermometer_levels(T, max_value)
    return pixels[:, None, :] >= levels[None, :, None]
