"""Integer parameters of one neuron array and the files that carry them.

``params.npz`` (written with ``np.savez``) holds ``weight`` [N, M], ``alpha`` [N], ``beta`` [N],
``threshold`` (0-d or [N]), optionally ``bias`` [N], all of any integer dtype, and ``meta``, a
JSON string with ``WB``, ``DB``, ``VB`` and ``reset``. ``stimulus.npz`` holds ``spikes``, bool
[S, T, M]. Loading checks everything against docs/formats.md and raises :class:`ConfigError`
with a one-line message that names the array, the position and the value.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

from .config import ArrayConfig, ConfigError, check_input_file, parse_meta, parse_text, signed_range
from .conv import ConvShape
from .files import savez_atomic

__all__ = ["IntParams", "ConvParams", "ReadoutParams", "load_params", "load_readout",
           "load_stimulus", "check_fits", "first_bad", "GRANULARITY"]


def first_bad(name: str, bad: np.ndarray) -> tuple[str, tuple] | None:
    """Where the first true element of ``bad`` is: ``("weight[3, 5]", (3, 5))`` (the name
    alone for a 0-d array), or None if there is none."""
    if not bad.any():
        return None
    pos = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"{name}[{', '.join(map(str, pos))}]" if pos else name), pos


def check_fits(name: str, values: np.ndarray, lo: int, hi: int, what: str) -> None:
    """Raise :class:`ConfigError` naming the first element of ``values`` outside ``[lo, hi]``."""
    values = np.asarray(values)
    if values.size == 0:
        return
    found = first_bad(name, (values < lo) | (values > hi))
    if found:
        where, pos = found
        raise ConfigError(f"{where} = {int(values[pos])} does not fit {what} [{lo}, {hi}]")


def _check_ranges(params, decay_one: int | None = None) -> None:
    """Every value of ``params`` within its width: weights WB signed bits, thresholds and
    biases VB (and, given ``decay_one``, decays in [0, decay_one]); the first one that is
    not is named by its position in its own array."""
    check_fits("weight", params.weight, *signed_range(params.WB), f"WB={params.WB} signed bits")
    if decay_one is not None:
        for name in ("alpha", "beta"):
            check_fits(name, getattr(params, name), 0, decay_one, f"DB={params.DB} decays")
    for name in ("threshold", "bias"):
        if getattr(params, name) is not None:
            check_fits(name, getattr(params, name), *signed_range(params.VB),
                       f"VB={params.VB} signed bits")


def _as_int_array(name: str, value) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype.kind not in "iu":
        raise ConfigError(f"{name} must have an integer dtype, not {value.dtype}")
    if value.dtype == np.uint64 and value.size and value.max() > np.iinfo(np.int64).max:
        raise ConfigError(f"{name} has a value {int(value.max())} too large for int64")
    return value.astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class IntParams:
    """The integer parameters of one neuron array (checked on construction).

    Parameters
    ----------
    weight : array of int, [N, M]
        Signed WB-bit weights; ``weight[i, j]`` is from input j to neuron i.
    alpha, beta : array of int, [N]
        Spatial and temporal decays in ``[0, 2**DB]`` (``2**DB`` means 1.0).
    threshold : int or array of int, 0-d or [N]
        Signed VB-bit firing thresholds, one per layer (0-d) or one per neuron.
    bias : array of int, [N], or None
        Signed VB-bit biases added to the current every timestep; None means no bias.
    WB, DB, VB : int
        Weight width, decay fraction bits, membrane width.
    reset : str
        ``"hard"`` or ``"soft"``.
    beat_cap : int, optional
        B, the counted beats of a timestep (default M; :class:`ArrayConfig`).

    Raises
    ------
    ConfigError
        If a shape, dtype or value does not fit.
    """

    weight: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray
    bias: np.ndarray | None = None
    WB: int = 8
    DB: int = 8
    VB: int = 16
    reset: str = "hard"
    beat_cap: int | None = None

    def __post_init__(self):
        setattr_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        weight = _as_int_array("weight", self.weight)
        if weight.ndim != 2 or 0 in weight.shape:
            raise ConfigError(f"weight must have shape [N, M] with N, M >= 1, "
                              f"not {list(weight.shape)}")
        n, m = weight.shape
        # Validates the widths and the reset, and that int64 arithmetic cannot overflow.
        config = ArrayConfig(n, m, 1, self.WB, self.DB, self.VB, self.reset,
                             beat_cap=self.beat_cap)
        setattr_("weight", weight)
        for name in ("alpha", "beta"):
            value = _as_int_array(name, getattr(self, name))
            if value.shape != (n,):
                raise ConfigError(f"{name} must have shape [{n}] (one per neuron), "
                                  f"not {list(value.shape)}")
            check_fits(name, value, 0, config.decay_one, f"DB={self.DB} decays")
            setattr_(name, value)
        threshold = _as_int_array("threshold", self.threshold)
        if threshold.shape not in ((), (n,)):
            raise ConfigError(f"threshold must have shape [] (per layer) or [{n}] (per neuron), "
                              f"not {list(threshold.shape)}")
        setattr_("threshold", threshold)
        if self.bias is not None:
            bias = _as_int_array("bias", self.bias)
            if bias.shape != (n,):
                raise ConfigError(f"bias must have shape [{n}] (one per neuron), "
                                  f"not {list(bias.shape)}")
            setattr_("bias", bias)
        _check_ranges(self)

    @property
    def neurons(self) -> int:
        return self.weight.shape[0]

    @property
    def inputs(self) -> int:
        return self.weight.shape[1]

    @property
    def per_neuron_threshold(self) -> bool:
        return self.threshold.ndim == 1

    def config(self, T: int, lanes: int | None = None, acc_lanes: int | None = None,
               second_set: bool | None = None) -> ArrayConfig:
        """The :class:`ArrayConfig` of an array with these parameters and ``T`` timesteps
        (``lanes``, ``acc_lanes``, ``second_set``: its fields of those names)."""
        return ArrayConfig(self.neurons, self.inputs, T, self.WB, self.DB, self.VB, self.reset,
                           lanes=lanes, per_neuron_threshold=self.per_neuron_threshold,
                           bias=self.bias is not None, beat_cap=self.beat_cap,
                           acc_lanes=acc_lanes, second_set=second_set)

    @property
    def cap(self) -> int:
        """B: the beat cap, M unless set."""
        return self.inputs if self.beat_cap is None else self.beat_cap

    def meta(self) -> dict:
        meta = {"WB": self.WB, "DB": self.DB, "VB": self.VB, "reset": self.reset}
        if self.beat_cap is not None:
            meta["beat_cap"] = self.beat_cap
        return meta

    def thresholds(self) -> np.ndarray:
        """The threshold of every neuron, [N] (a per-layer threshold repeated)."""
        return np.broadcast_to(self.threshold, (self.neurons,)).copy()

    def biases(self) -> np.ndarray:
        """The bias of every neuron, [N] (zeros without a bias)."""
        return np.zeros(self.neurons, np.int64) if self.bias is None else self.bias.copy()

    def save(self, path) -> None:
        """Write ``params.npz`` atomically."""
        arrays = dict(weight=self.weight, alpha=self.alpha, beta=self.beta,
                      threshold=self.threshold, meta=np.array(json.dumps(self.meta())))
        if self.bias is not None:
            arrays["bias"] = self.bias
        savez_atomic(path, **arrays)


#: How a conv2d layer's per-neuron values may be given: the shapes, by name.
GRANULARITY = ("layer", "channel", "neuron")


@dataclasses.dataclass(frozen=True, eq=False)
class ConvParams:
    """The integer parameters of a conv2d layer (SPEC 6; checked on construction).

    Parameters
    ----------
    weight : array of int, [K, C, KH, KW]
        Signed WB-bit kernel weights.
    alpha, beta : array of int, [K] (per channel) or [N] (per neuron, flat)
    threshold : array of int, 0-d, [K] or [N]
    bias : array of int, [K] or [N], or None
    in_shape : (C, H, W)
    stride, padding : (SH, SW), (PH, PW)
    current_pool : (PKH, PKW), optional
        Max pooling of the currents before the neurons (SPEC 6): the neurons (and every
        per-neuron value, [N]) are the pooled positions.
    WB, DB, VB, reset, beat_cap
        As for :class:`IntParams`.

    The layer is the neuron array :meth:`dense` describes: flat indices, channel-major.
    """

    weight: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray
    bias: np.ndarray | None = None
    in_shape: tuple = ()
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    WB: int = 8
    DB: int = 8
    VB: int = 16
    reset: str = "hard"
    beat_cap: int | None = None
    current_pool: tuple | None = None

    def __post_init__(self):
        setattr_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        weight = _as_int_array("weight", self.weight)
        if weight.ndim != 4 or 0 in weight.shape:
            raise ConfigError(f"a conv2d weight must have shape [K, C, KH, KW], "
                              f"not {list(weight.shape)}")
        shape = ConvShape(tuple(self.in_shape) if isinstance(self.in_shape, (list, tuple))
                          else self.in_shape, weight.shape[0], weight.shape[2:],
                          self.stride, self.padding, self.current_pool)
        if weight.shape[1] != shape.in_shape[0]:
            raise ConfigError(f"the weight has {weight.shape[1]} input channels but in_shape "
                              f"{list(shape.in_shape)} has C = {shape.in_shape[0]}")
        for name in ("in_shape", "stride", "padding"):
            setattr_(name, getattr(shape, name))
        setattr_("current_pool", shape.pool)
        setattr_("weight", weight)
        K, N = shape.channels, shape.neurons
        allowed = {"alpha": ((K,), (N,)), "beta": ((K,), (N,)), "threshold": ((), (K,), (N,)),
                   "bias": ((K,), (N,))}
        for name, shapes in allowed.items():
            if name == "bias" and self.bias is None:
                continue
            value = _as_int_array(name, getattr(self, name))
            if value.shape not in shapes:
                names = {(): "[] (per layer)", (K,): f"[{K}] (per channel)",
                         (N,): f"[{N}] (per neuron)"}
                raise ConfigError(f"{name} must have shape "
                                  f"{' or '.join(names[s] for s in shapes)}, "
                                  f"not {list(value.shape)}")
            setattr_(name, value)
        # The widths (and that int64 cannot overflow), then every value, named by its
        # position in the file's own arrays (weight[k, c, ky, kx]).
        config = ArrayConfig(N, shape.inputs, 1, self.WB, self.DB, self.VB, self.reset,
                             beat_cap=self.beat_cap)
        _check_ranges(self, config.decay_one)

    @property
    def shape(self) -> ConvShape:
        return ConvShape(self.in_shape, self.weight.shape[0], self.weight.shape[2:],
                         self.stride, self.padding, self.current_pool)

    @property
    def neurons(self) -> int:
        return self.shape.neurons

    @property
    def inputs(self) -> int:
        return self.shape.inputs

    @property
    def cap(self) -> int:
        return self.inputs if self.beat_cap is None else self.beat_cap

    def check_acc_lanes(self, acc_lanes: int | None, lanes: int) -> None:
        """Raise :class:`ConfigError` unless ``acc_lanes`` is None or PK P with PK (the output
        channels an input spike reaches at once) from 1 to K."""
        K = self.shape.channels
        if acc_lanes is not None and (isinstance(acc_lanes, bool) or
                                      not isinstance(acc_lanes, (int, np.integer)) or
                                      acc_lanes % lanes or not lanes <= acc_lanes <= K * lanes):
            raise ConfigError(f"a conv2d layer's acc_lanes must be a multiple of its lanes "
                              f"({lanes}) up to lanes x channels ({lanes} x {K} = {K * lanes}): "
                              f"a spike reaches P columns in acc_lanes / P channels at once, "
                              f"not {acc_lanes!r}")

    def config(self, T: int, lanes: int | None = None, acc_lanes: int | None = None,
               second_set: bool | None = None) -> ArrayConfig:
        """The :class:`ArrayConfig` of the layer (sizes of its dense equivalent). Lanes run
        over neighbouring output columns of one channel: at most WO (default min(WO, 16)).
        ``acc_lanes`` (default the lanes) is PK P: a spike reaches runs of P columns in PK
        output channels at once."""
        WO = self.shape.out_shape[2]
        lanes = min(WO, 16) if lanes is None else lanes
        if isinstance(lanes, int) and lanes > WO:
            raise ConfigError(f"lanes run over the output columns: at most WO = {WO}, "
                              f"not {lanes}")
        if isinstance(lanes, int) and not isinstance(lanes, bool) and lanes >= 1:
            self.check_acc_lanes(acc_lanes, lanes)
        return ArrayConfig(self.neurons, self.inputs, T, self.WB, self.DB, self.VB, self.reset,
                           lanes=lanes, acc_lanes=acc_lanes,
                           per_neuron_threshold=self.granularity("threshold") != "layer",
                           bias=self.bias is not None, beat_cap=self.beat_cap,
                           second_set=second_set)

    @property
    def per_neuron_threshold(self) -> bool:
        """Whether the threshold is stored per neuron or channel (not one register)."""
        return self.threshold.ndim == 1

    def granularity(self, name: str) -> str:
        """How ``name`` (alpha, beta, threshold, bias) is stored: one of :data:`GRANULARITY`."""
        value = getattr(self, name)
        if value is None or value.ndim == 0:
            return "layer"
        return "channel" if value.shape[0] == self.shape.channels and \
            self.shape.channels != self.neurons else "neuron"

    def per_neuron(self, name: str) -> np.ndarray | None:
        """``name`` for every neuron, [N] (per-channel values repeated over HO WO)."""
        value = getattr(self, name)
        if value is None or value.ndim == 0 or value.shape[0] == self.neurons:
            return value
        _, HO, WO = self.shape.out_shape
        return np.repeat(value, HO * WO)

    def biases(self) -> np.ndarray:
        """The bias of every neuron, [N] (zeros without a bias), as :meth:`IntParams.biases`."""
        return np.zeros(self.neurons, np.int64) if self.bias is None else \
            np.array(self.per_neuron("bias"))

    def dense(self) -> IntParams:
        """The same layer as a dense array: [N, M] weights, per-neuron decays and biases (a
        layer that pools its currents has none: max is not a weighted sum)."""
        if self.current_pool is not None:
            raise ConfigError("a convolution that pools its currents has no dense equivalent")
        return IntParams(weight=self.shape.dense(self.weight), alpha=self.per_neuron("alpha"),
                         beta=self.per_neuron("beta"), threshold=self.per_neuron("threshold"),
                         bias=self.per_neuron("bias"), WB=self.WB, DB=self.DB, VB=self.VB,
                         reset=self.reset, beat_cap=self.beat_cap)

    def meta(self) -> dict:
        meta = {"WB": self.WB, "DB": self.DB, "VB": self.VB, "reset": self.reset,
                **self.shape.meta()}
        if self.beat_cap is not None:
            meta["beat_cap"] = self.beat_cap
        return meta

    def save(self, path) -> None:
        """Write ``params.npz`` atomically (SPEC 6)."""
        arrays = dict(weight=self.weight, alpha=self.alpha, beta=self.beta,
                      threshold=self.threshold, meta=np.array(json.dumps(self.meta())))
        if self.bias is not None:
            arrays["bias"] = self.bias
        savez_atomic(path, **arrays)


def _open_npz(path, what: str):
    path = Path(path)
    check_input_file(path, f"{what} file")
    if path.stat().st_size == 0:
        raise ConfigError(f"{what} file {str(path)!r} is empty (0 bytes), not an .npz archive")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{what} file {str(path)!r} is not an .npz archive "
                          f"({type(exc).__name__}: {exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ConfigError(f"{what} file {str(path)!r} holds a single array (.npy), not an "
                          f".npz archive of named arrays")
    return archive


#: The largest array a params, readout or stimulus file may declare (1 GiB): checked from
#: the array's header, before anything is decompressed.
MAX_ARRAY_BYTES = 1 << 30


def _declared_bytes(npz, name: str) -> tuple[tuple, int]:
    """The shape and size in bytes that member ``name`` of an .npz archive declares."""
    with npz.zip.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    return shape, int(np.prod(shape, dtype=object)) * dtype.itemsize


def _get(npz, name: str, what: str) -> np.ndarray:
    if name not in npz.files:
        raise ConfigError(f"{what} file has no array {name!r} (it has: {', '.join(npz.files)})")
    try:
        shape, size = _declared_bytes(npz, name)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{what} array {name!r} cannot be read ({exc})") from None
    if size > MAX_ARRAY_BYTES:
        raise ConfigError(f"{what} array {name!r} declares shape {list(shape)}, {size / 2**30:.3g} "
                          f"GiB: more than the {MAX_ARRAY_BYTES / 2**30:g} GiB an array may hold")
    try:
        return npz[name]
    except ValueError as exc:  # object arrays need pickle, which we refuse
        raise ConfigError(f"{what} array {name!r} cannot be read ({exc})") from None


def load_params(path, *, WB: int | None = None, DB: int | None = None, VB: int | None = None,
                reset: str | None = None) -> IntParams | ConvParams:
    """Read and check ``params.npz``: a dense array's (:class:`IntParams`), or a conv2d
    layer's (:class:`ConvParams`, ``meta`` ``"kind": "conv2d"``).

    Widths and reset given here must agree with the file's ``meta``; ``None`` takes the
    value from ``meta``.

    Raises
    ------
    ConfigError
        On a missing file or array, a malformed ``meta``, a disagreeing width, or any
        shape, dtype or value that does not fit.
    """
    with _open_npz(path, "params") as npz:
        meta = parse_meta(_get(npz, "meta", "params"))
        kind = meta.pop("kind")
        shape = {key: meta.pop(key) for key in ("in_shape", "stride", "padding",
                                                "current_pool") if key in meta}
        for key, given in (("WB", WB), ("DB", DB), ("VB", VB), ("reset", reset)):
            if given is not None and given != meta[key]:
                raise ConfigError(f"{key}={given!r} disagrees with the params meta "
                                  f"{key}={meta[key]!r}")
        arrays = {name: _get(npz, name, "params")
                  for name in ("weight", "alpha", "beta", "threshold")}
        arrays["bias"] = _get(npz, "bias", "params") if "bias" in npz.files else None
    if kind == "dense":
        return IntParams(**arrays, **meta)
    return ConvParams(**arrays, **shape, **meta)


@dataclasses.dataclass(frozen=True, eq=False)
class ReadoutParams:
    """The integer parameters of a readout layer (checked on construction).

    A readout sums its input currents over the T timesteps of a sample:
    ``logit_i = sum over t of (bias_i + sum of w_ij over the counted beats of t)``.

    Parameters
    ----------
    weight : array of int, [N, M]
        Signed WB-bit weights.
    bias : array of int, [N], or None
        Signed VB-bit biases, added every timestep.
    WB, VB : int
    beat_cap : int, optional
        The most beats counted in a timestep (default M); inside a network, the most its
        input can send (SPEC 7), as for :class:`IntParams`.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    WB: int = 8
    VB: int = 16
    beat_cap: int | None = None

    def __post_init__(self):
        weight = _as_int_array("weight", self.weight)
        if weight.ndim != 2 or 0 in weight.shape:
            raise ConfigError(f"weight must have shape [N, M] with N, M >= 1, "
                              f"not {list(weight.shape)}")
        ArrayConfig(weight.shape[0], weight.shape[1], 1, self.WB, 1, self.VB,
                    beat_cap=self.beat_cap)
        object.__setattr__(self, "weight", weight)
        check_fits("weight", weight, *signed_range(self.WB), f"WB={self.WB} signed bits")
        if self.bias is not None:
            bias = _as_int_array("bias", self.bias)
            if bias.shape != (weight.shape[0],):
                raise ConfigError(f"bias must have shape [{weight.shape[0]}] (one per neuron), "
                                  f"not {list(bias.shape)}")
            check_fits("bias", bias, *signed_range(self.VB), f"VB={self.VB} signed bits")
            object.__setattr__(self, "bias", bias)

    neurons = IntParams.neurons
    inputs = IntParams.inputs
    biases = IntParams.biases
    cap = IntParams.cap

    def config(self, T: int, lanes: int | None = None, acc_lanes: int | None = None,
               second_set: bool | None = None) -> ArrayConfig:
        return ArrayConfig(self.neurons, self.inputs, T, self.WB, 1, self.VB, lanes=lanes,
                           per_neuron_threshold=False, bias=self.bias is not None,
                           beat_cap=self.beat_cap, acc_lanes=acc_lanes, second_set=second_set)

    def meta(self) -> dict:
        meta = {"layer": "readout", "WB": self.WB, "VB": self.VB}
        if self.beat_cap is not None:
            meta["beat_cap"] = self.beat_cap
        return meta

    def save(self, path) -> None:
        """Write the readout's ``.npz`` atomically (``weight``, ``bias``, ``meta``)."""
        arrays = dict(weight=self.weight, meta=np.array(json.dumps(self.meta())))
        if self.bias is not None:
            arrays["bias"] = self.bias
        savez_atomic(path, **arrays)


def load_readout(path) -> ReadoutParams:
    """Read and check a readout layer's ``.npz`` (see :class:`ReadoutParams`)."""
    with _open_npz(path, "readout") as npz:
        meta_text = _get(npz, "meta", "readout")
        weight = _get(npz, "weight", "readout")
        bias = _get(npz, "bias", "readout") if "bias" in npz.files else None
    try:
        meta = parse_text(str(meta_text), "readout meta")
        WB, VB = meta["WB"], meta["VB"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"readout meta must be JSON with WB and VB ({exc!r})") from None
    if meta.get("layer") != "readout":
        raise ConfigError(f"readout meta must say layer: readout, not {meta.get('layer')!r}")
    return ReadoutParams(weight=weight, bias=bias, WB=WB, VB=VB,
                         beat_cap=meta.get("beat_cap"))


def load_stimulus(path, inputs: int | None = None, T: int | None = None) -> np.ndarray:
    """Read and check ``stimulus.npz``: ``spikes``, bool [S, T, M], or ``counts``, int
    [S, T, M] (beats per index, repeats included, sent in ascending index order; SPEC 6).

    Raises
    ------
    ConfigError
        On a missing file or array (or both), a wrong dtype, a negative count, a shape that
        is not [S, T, M] with S, T >= 1, M different from ``inputs`` or T from ``T`` (a
        network's).
    """
    with _open_npz(path, "stimulus") as npz:
        names = [name for name in ("spikes", "counts") if name in npz.files]
        if len(names) != 1:
            raise ConfigError("stimulus file must hold 'spikes' or 'counts', one of them "
                              f"(it has: {', '.join(npz.files)})")
        name = names[0]
        stimulus = _get(npz, name, "stimulus")
    if name == "spikes" and stimulus.dtype != np.bool_:
        raise ConfigError(f"stimulus spikes must have dtype bool, not {stimulus.dtype}")
    if name == "counts":
        stimulus = _as_int_array("stimulus counts", stimulus)
        check_fits("counts", stimulus, 0, np.iinfo(np.int64).max, "beats (>= 0)")
    if stimulus.ndim != 3 or stimulus.shape[0] < 1 or stimulus.shape[1] < 1:
        raise ConfigError(f"stimulus {name} must have shape [S, T, M] with S, T >= 1, "
                          f"not {list(stimulus.shape)}")
    if inputs is not None and stimulus.shape[2] != inputs:
        raise ConfigError(f"stimulus {name} have {stimulus.shape[2]} inputs but the weights "
                          f"have {inputs} (shape {list(stimulus.shape)})")
    if T is not None and stimulus.shape[1] != T:
        raise ConfigError(f"stimulus {str(path)!r} has T={stimulus.shape[1]} timesteps, the "
                          f"network T={T}")
    return stimulus
