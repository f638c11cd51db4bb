"""The one source of truth for widths, rounding and saturation.

Everything that must agree bit for bit between the integer twin, the generator and the packer
lives here: the parameters of one neuron array, the ranges of its integer values, the rounding
``rnd`` and the saturation ``sat_VB`` of the DA-LIF arithmetic (see ``docs/arithmetic.md``).
No Amaranth here (the model and the twin work without it): the hardware's saturation of
Amaranth values, from these ranges, is in :mod:`dalif_hw.hw.arith`.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

__all__ = [
    "RESETS", "PARAMS_KINDS", "CONV_KEYS", "ArrayConfig", "ConfigError", "parse_meta",
    "parse_text", "MAX_NESTING", "MAX_T", "check_input_file",
    "signed_range", "unsigned_bits", "index_width", "rnd", "sat",
]

#: The reset modes, in the spelling used by ``meta`` and the command lines (SPEC 2): ``hard``
#: (to zero), ``soft`` (subtract the threshold after a spike), ``subtract`` (snnTorch's
#: default: the threshold comes off at the next timestep, after the decay) and ``none``.
RESETS = ("hard", "soft", "subtract", "none")
#: The ``kind`` of a params file's ``meta`` (SPEC 6): a dense array or a conv2d layer.
PARAMS_KINDS = ("dense", "conv2d")
#: What a conv2d ``meta`` adds.
CONV_KEYS = ("in_shape", "stride", "padding")

#: Defaults of the generator and of ``meta`` (docs/arithmetic.md).
DEFAULT_WB = 8
DEFAULT_DB = 8
DEFAULT_VB = 16
DEFAULT_RESET = "hard"
#: Default lanes are min(N, 16): P = N for large arrays needs more multipliers and block RAM
#: than a small FPGA has.
DEFAULT_MAX_LANES = 16

#: The integer twin computes in int64; every intermediate must fit with a bit to spare.
_INT64_BITS = 63


class ConfigError(ValueError):
    """A parameter, width or file content that does not fit the DA-LIF contract.

    The message is one line that names the problem and the offending value, so that command
    lines can print it as it is.
    """


def check_input_file(path, what: str) -> None:
    """Raise :class:`ConfigError` unless the input ``path`` is a regular file: it does not
    exist, or it is a folder, a fifo or a device (which would block or never end)."""
    from pathlib import Path

    path = Path(path)
    if path.is_file():
        return
    if not path.exists():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    kind = "a folder" if path.is_dir() else "not a regular file (a fifo, a socket or a device)"
    raise ConfigError(f"{what} {str(path)!r} is {kind}")


#: The most timesteps per sample (a 16-bit count; traces and stimuli hold T per sample).
MAX_T = 65535

#: The deepest nesting of brackets a JSON or YAML file of ours may have (ours nest 4 deep).
MAX_NESTING = 32


def parse_text(text: str, what: str, kind: str = "json"):
    """``text`` parsed as JSON (or YAML with ``kind="yaml"``), refused in one line if it
    nests brackets deeper than :data:`MAX_NESTING` (before the parser recurses into it) or
    the parser gives up."""
    depth = deepest = 0
    quote, escaped = None, False
    for char in text:
        if quote:      # inside a string: brackets do not count
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = None
        elif char == '"' or char == "'" and kind == "yaml":
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    if deepest > MAX_NESTING:
        raise ConfigError(f"{what} nests {deepest} levels deep, more than the {MAX_NESTING} "
                          "a file of ours has")
    try:
        if kind == "yaml":
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except RecursionError:
        raise ConfigError(f"{what} nests deeper than can be read") from None


def signed_range(bits: int) -> tuple[int, int]:
    """Return ``(lo, hi)``, the inclusive range of a signed two's complement integer."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def unsigned_bits(value: int) -> int:
    """Return the number of bits an unsigned integer ``value >= 0`` needs (at least 1)."""
    return max(1, int(value).bit_length())


def index_width(count: int) -> int:
    """Return the width of the ``index`` field of a stream with ``count`` possible indices."""
    return max(1, math.ceil(math.log2(count))) if count > 1 else 1


def rnd(x, DB: int, out=None):
    """Round ``x / 2**DB`` to an integer, halves toward +infinity.

    ``rnd(x) = floor((x + 2**(DB-1)) / 2**DB)``: an arithmetic shift right after adding half.
    Works on Python integers, numpy or torch integer arrays, and signed Amaranth values
    (where ``>>`` is an arithmetic shift) alike; ``out`` (numpy) writes the result there.
    """
    if out is not None:
        np.add(x, 1 << (DB - 1), out=out)
        return np.right_shift(out, DB, out=out)
    return (x + (1 << (DB - 1))) >> DB


def sat(x, VB: int, out=None):
    """Clamp ``x`` to the signed ``VB``-bit range ``[-2**(VB-1), 2**(VB-1) - 1]``.

    Works on Python integers and numpy (or torch) arrays (``out``: numpy, in place); the
    hardware's saturation of Amaranth values, from the same range, is
    :func:`dalif_hw.hw.arith.sat`.
    """
    lo, hi = signed_range(VB)
    if isinstance(x, int):
        return min(max(x, lo), hi)
    if out is not None:
        return np.clip(x, lo, hi, out=out)
    return x.clip(lo, hi)


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class ArrayConfig:
    """The parameters of one DA-LIF neuron array.

    Parameters
    ----------
    neurons : int
        N, the number of neurons.
    inputs : int
        M, the number of inputs (spike indices ``0 .. M-1``).
    T : int
        Timesteps per sample.
    WB : int
        Weight width, signed.
    DB : int
        Decay fraction bits: a decay ``d`` in ``[0, 2**DB]`` means ``d / 2**DB``.
    VB : int
        Membrane width, signed; also the width of thresholds and biases.
    reset : str
        ``"hard"`` (to zero), ``"soft"`` (subtract the threshold), ``"subtract"`` (subtract
        it at the next timestep, after the decay) or ``"none"`` (:data:`RESETS`).
    lanes : int, optional
        P, how many neurons the hardware updates in parallel (default ``min(N, 16)``). The
        arithmetic does not depend on it.
    per_neuron_threshold : bool
        One threshold per neuron (default) or one for the array.
    bias : bool
        Whether the array adds a per-neuron bias to the current (default True).
    beat_cap : int, optional
        B: of the spike beats of a timestep with an index below M, the first B count; the
        rest are dropped (default M; a layer behind a sum pool needs more, SPEC 6).
    acc_lanes : int, optional
        A, how many neurons one input spike reaches a cycle (default P): a spike beat walks
        ceil(N / A) words of A weights, and the accumulators are handed to the update P at
        a time. A multiple of P, at most P * G; adders and weight-memory width, no
        multipliers. The arithmetic does not depend on it. A conv2d layer's is PK P (P columns in
        PK channels).
    second_set : bool, optional
        Whether the accumulators have a second set, so that the next timestep accumulates
        during the update pass (True), or one (False); default (None): a second set where the
        two hold at most 64 kbit (:func:`dalif_hw.hw.accumulate.second_set`). The arithmetic
        does not depend on it.

    Raises
    ------
    ConfigError
        If a value has the wrong type, is out of range, or the widths would overflow the
        64-bit arithmetic of the integer twin.
    """

    neurons: int
    inputs: int
    T: int
    WB: int = DEFAULT_WB
    DB: int = DEFAULT_DB
    VB: int = DEFAULT_VB
    reset: str = DEFAULT_RESET
    lanes: int | None = None
    per_neuron_threshold: bool = True
    bias: bool = True
    beat_cap: int | None = None
    acc_lanes: int | None = None
    second_set: bool | None = None

    def __post_init__(self):
        for name in ("neurons", "inputs", "T", "WB", "DB", "VB"):
            object.__setattr__(self, name, _check_int(name, getattr(self, name), 1))
        if self.T > MAX_T:
            raise ConfigError(f"T must be at most {MAX_T} timesteps per sample, not {self.T}")
        if self.beat_cap is None:
            object.__setattr__(self, "beat_cap", self.inputs)
        object.__setattr__(self, "beat_cap", _check_int("beat_cap", self.beat_cap, 1))
        if self.lanes is None:
            object.__setattr__(self, "lanes", min(self.neurons, DEFAULT_MAX_LANES))
        object.__setattr__(self, "lanes", _check_int("lanes", self.lanes, 1))
        if self.lanes > self.neurons:
            raise ConfigError(f"lanes must be at most the number of neurons ({self.neurons}), "
                              f"not {self.lanes}")
        if self.acc_lanes is None:
            object.__setattr__(self, "acc_lanes", self.lanes)
        object.__setattr__(self, "acc_lanes", _check_int("acc_lanes", self.acc_lanes, 1))
        if self.acc_lanes % self.lanes or self.acc_lanes > self.lanes * self.groups:
            raise ConfigError(f"acc_lanes must be a multiple of lanes ({self.lanes}) and at most "
                              f"lanes x groups ({self.lanes * self.groups}), not "
                              f"{self.acc_lanes}")
        if not (self.second_set is None or isinstance(self.second_set, bool)):
            raise ConfigError(f"second_set must be true, false or none (the default rule), not "
                              f"{self.second_set!r}")
        if self.reset not in RESETS:
            raise ConfigError(f"reset must be one of {', '.join(RESETS)}, not {self.reset!r}")
        # alpha * I is the widest product: (DB + 2) bits of decay times current_width bits.
        if self.current_width + self.DB + 2 > _INT64_BITS:
            raise ConfigError(
                f"widths WB={self.WB}, DB={self.DB}, VB={self.VB} with a beat cap of "
                f"{self.beat_cap} need {self.current_width + self.DB + 2} bits, more than 63")

    # -- ranges of the stored values ------------------------------------------------------

    @property
    def weight_range(self) -> tuple[int, int]:
        return signed_range(self.WB)

    @property
    def membrane_range(self) -> tuple[int, int]:
        """Range of V, H, thresholds and biases."""
        return signed_range(self.VB)

    @property
    def decay_one(self) -> int:
        """The integer that means a decay of 1.0."""
        return 1 << self.DB

    @property
    def decay_width(self) -> int:
        """Unsigned bits of a stored decay (``[0, 2**DB]`` needs DB + 1)."""
        return self.DB + 1

    # -- widths of the datapath ----------------------------------------------------------

    @property
    def current_width(self) -> int:
        """Signed width in which the input current I never wraps.

        Bias (VB bits) plus at most B counted beats of one weight each (WB bits):
        ``max(VB, WB + ceil(log2(B + 1))) + 1``.
        """
        return max(self.VB, self.WB + math.ceil(math.log2(self.beat_cap + 1))) + 1

    @property
    def update_width(self) -> int:
        """Signed width of the largest value inside the neuron update: a decay times the
        membrane or the current, plus half for the rounding (the integer twin computes in
        int32 when this is at most 32)."""
        return self.DB + max(self.VB, self.current_width) + 1

    @property
    def logit_width(self) -> int:
        """Signed width of a readout's logit, the sum of T currents: never wraps."""
        return self.current_width + math.ceil(math.log2(self.T)) if self.T > 1 \
            else self.current_width

    @property
    def groups(self) -> int:
        """G = ceil(N / P): the neurons are updated P at a time, in G groups."""
        return -(-self.neurons // self.lanes)

    @property
    def acc_groups(self) -> int:
        """ceil(N / A): the weight words an input spike walks, one a cycle."""
        return -(-self.neurons // self.acc_lanes)

    @property
    def in_index_width(self) -> int:
        return index_width(self.inputs)

    @property
    def out_index_width(self) -> int:
        return index_width(self.neurons)

    # -- meta ----------------------------------------------------------------------------

    def meta(self) -> dict:
        """The ``meta`` dictionary of ``params.npz``."""
        return {"WB": self.WB, "DB": self.DB, "VB": self.VB, "reset": self.reset}

    def manifest(self) -> dict:
        """The ``params`` of a generated array's manifest."""
        return {"neurons": self.neurons, "inputs": self.inputs, "T": self.T,
                "lanes": self.lanes, "acc_lanes": self.acc_lanes, **self.meta(),
                "threshold": "per-neuron" if self.per_neuron_threshold else "per-layer",
                "bias": self.bias, "beat_cap": self.beat_cap}


def parse_meta(text) -> dict:
    """Parse and check the ``meta`` JSON string of ``params.npz``.

    Returns a dictionary with the keys ``WB``, ``DB``, ``VB``, ``reset`` and ``kind``
    (:data:`PARAMS_KINDS`, ``dense`` where absent), ``beat_cap`` where the file gives one,
    and for conv2d ``in_shape``, ``stride`` and ``padding`` (checked by
    :class:`~dalif_hw.core.conv.ConvShape`).

    Raises
    ------
    ConfigError
        If ``text`` is not a JSON object with those keys, or a value is invalid.
    """
    if isinstance(text, np.ndarray):
        if text.shape != () or text.dtype.kind not in "US":
            raise ConfigError(f"meta must be a JSON string, not an array of {text.dtype} "
                              f"with shape {text.shape}")
        text = text.item()
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        meta = parse_text(text, "meta")
    except (TypeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"meta is not valid JSON ({exc}): {str(text)[:60]!r}") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"meta must be a JSON object, not {str(text)[:60]!r}")
    out = {}
    for key in ("WB", "DB", "VB", "reset"):
        if key not in meta:
            raise ConfigError(f"meta has no key {key!r}")
    for key in ("WB", "DB", "VB"):
        out[key] = _check_int(f"meta {key}", meta[key], 1)
    if meta["reset"] not in RESETS:
        raise ConfigError(f"meta reset must be one of {', '.join(RESETS)}, "
                          f"not {meta['reset']!r}")
    out["reset"] = meta["reset"]
    if meta.get("beat_cap") is not None:
        out["beat_cap"] = _check_int("meta beat_cap", meta["beat_cap"], 1)
    out["kind"] = meta.get("kind", "dense")
    if out["kind"] not in PARAMS_KINDS:
        raise ConfigError(f"meta kind must be one of {', '.join(PARAMS_KINDS)}, "
                          f"not {out['kind']!r}")
    if out["kind"] == "conv2d":
        missing = [key for key in CONV_KEYS if key not in meta]
        if missing:
            raise ConfigError(f"a conv2d meta needs {', '.join(missing)}")
        out.update({key: meta[key] for key in CONV_KEYS})
        if meta.get("current_pool") is not None:
            out["current_pool"] = _current_pool(meta["current_pool"])
    return out


def _current_pool(value) -> list:
    """The window of a conv2d meta's ``current_pool`` (``{"kind": "max", "window": [PKH,
    PKW]}``; checked further by ConvShape)."""
    if not isinstance(value, dict) or set(value) != {"kind", "window"}:
        raise ConfigError(f'meta current_pool must be {{"kind": "max", "window": [PKH, PKW]}}, '
                          f"not {str(value)[:60]}")
    if value["kind"] != "max":
        raise ConfigError(f"meta current_pool kind must be max (average pooling of currents "
                          f"is folded into the convolution when packing), "
                          f"not {value['kind']!r}")
    return value["window"]
