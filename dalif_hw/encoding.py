"""Input encoding: pixels to spikes, done the same way for the model and the hardware.

``thermometer``: with T timesteps and pixel values in ``[0, max_value]``, input j spikes at
timestep t when ``pixel_j >= levels[t]``, the levels rising evenly:
``levels[t] = (t + 1) * max_value / (T + 1)``. A dim stroke spikes once, a bright one every
timestep, so T timesteps carry T + 1 grey levels. The host runs this in Python in front of
the hardware; the model trains on exactly these spikes.
"""

from __future__ import annotations

import numpy as np

from .config import ConfigError

__all__ = ["ENCODINGS", "thermometer_levels", "encode"]

ENCODINGS = ("thermometer",)


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
    kind = encoding.get("kind")
    if kind not in ENCODINGS:
        raise ConfigError(f"encoding kind must be one of {', '.join(ENCODINGS)}, not {kind!r}")
    try:
        T, max_value = int(encoding["T"]), float(encoding["max_value"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"encoding needs integer T and number max_value ({exc!r}): "
                          f"{encoding!r}") from None
    pixels = np.asarray(pixels, np.float64)
    levels = thermometer_levels(T, max_value)
    return pixels[:, None, :] >= levels[None, :, None]
