"""Layer kinds as types: one frozen dataclass per kind of a packed network's layer.

Each kind names its inputs (the layers that feed it, SPEC 7; ``input`` is the network's
input) and knows its own shapes, files and ``network.yaml`` entry. Everything else a stage
does with a kind is registered beside that stage, per type (``functools.singledispatch``):
the twin (:func:`dalif_hw.twin.graph.evaluate`), the hardware (:func:`dalif_hw.hw.network.build`),
the cost model (:func:`dalif_hw.hw.cost.timestep_cycles`), the manifest
(:func:`dalif_hw.hw.emit.manifest_entry`). docs/kinds.md says how to add a kind, file by file.

=========== ================================== =============================================
kind        type                               what
=========== ================================== =============================================
dense       :class:`Dense`                     DA-LIF neurons, every input to every neuron
conv2d      :class:`Conv2d`                    DA-LIF neurons over a convolution (SPEC 6)
sumpool     :class:`SumPool`                   spikes to pooled indices, every beat on
maxpool     :class:`MaxPool`                   spikes to pooled indices, once a timestep
add         :class:`Add`                       the beats of its inputs, one eot (SPEC 7)
readout     :class:`Readout`                   logits summed over a sample (SPEC 5), last
=========== ================================== =============================================
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..core.config import RESETS, ArrayConfig, ConfigError
from ..core.conv import PoolShape, check_shape
from ..core.files import write_text_atomic
from ..core.layout import hex_lines, memories
from ..core.params import (
    GRANULARITY,
    ConvParams,
    IntParams,
    ReadoutParams,
    load_params,
    load_readout,
)

__all__ = ["Layer", "Weighted", "Dense", "Conv2d", "Readout", "Pool", "SumPool", "MaxPool",
           "Add", "KINDS", "INPUT", "LAYER_NAME", "LAYER_NAME_RULE"]

#: The network's input, as layers name it among their inputs (a reserved layer name).
INPUT = "input"
#: Every kind by its name in ``network.yaml``, filled as the classes are defined.
KINDS: dict[str, type] = {}


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    """A finite int or float (not a bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _positive(value) -> bool:
    return _integer(value) and value >= 1


def _file_name(value) -> bool:
    return isinstance(value, str) and value == Path(value).name and value not in ("", ".", "..")


def _ints(count: int, minimum: int):
    return (lambda v: isinstance(v, list) and len(v) == count and
            all(_integer(x) and x >= minimum for x in v))


def _names(value) -> bool:
    return isinstance(value, list) and len(value) >= 1 and all(
        isinstance(v, str) and LAYER_NAME.fullmatch(v) is not None for v in value)


#: Layer names become Verilog port names (``cfg_<layer>``) and file names.
LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LAYER_NAME_RULE = "an identifier (letters, digits, _; not starting with a digit)"
_POSITIVE = (True, _positive, "a positive integer")
_SHAPE3 = (True, _ints(3, 1), "a list of three positive integers [C, H, W]")


@dataclasses.dataclass(frozen=True)
class Layer:
    """What every kind has: a name and the names of its inputs (empty: the layer before it
    in the network, or the network's input for the first; :class:`~.packed.Network` fills
    them in)."""

    name: str
    inputs: tuple = dataclasses.field(default=(), kw_only=True)

    #: The kind's name in ``network.yaml`` and in messages.
    kind: ClassVar[str] = ""
    #: Whether the layer has DA-LIF neurons (whose spikes a network may output).
    spiking: ClassVar[bool] = False
    #: At most this many inputs (None: any number).
    max_inputs: ClassVar[int | None] = 1
    #: The kind's keys in ``network.yaml``: ``{key: (required, test, what the value must
    #: be)}`` (:mod:`.packed` checks them); each kind adds its own to its base's.
    schema: ClassVar[dict] = {
        "name": (True, lambda v: isinstance(v, str) and LAYER_NAME.fullmatch(v) is not None,
                 LAYER_NAME_RULE),
        "kind": (True, lambda v: v in KINDS, "a layer kind"),
        "inputs": (False, _names, "a non-empty list of layer names"),
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind:
            KINDS[cls.kind] = cls

    def __post_init__(self):
        inputs = self.inputs
        if isinstance(inputs, str) or not isinstance(inputs, (list, tuple)) or \
                not all(isinstance(name, str) for name in inputs):
            raise ConfigError(f"layer {self.name}: inputs must be a list of layer names, "
                              f"not {inputs!r}")
        object.__setattr__(self, "inputs", tuple(inputs))

    # -- shapes ----------------------------------------------------------------------------

    @property
    def in_shape(self) -> tuple:
        """What the layer takes: (C, H, W) where it has a spatial shape, else (M,)."""
        raise NotImplementedError

    @property
    def out_shape(self) -> tuple:
        """What the layer gives: (C, H, W) where it has a spatial shape, else (N,)."""
        raise NotImplementedError

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_size(self) -> int:
        return int(np.prod(self.out_shape))

    def join(self, shapes: list[tuple]) -> None:
        """Check that inputs of these out shapes fit the layer (one line on the first that
        does not). One input: its size is the layer's; where both have a spatial shape,
        they are equal."""
        if len(shapes) != 1:
            raise ConfigError(f"layer {self.name} ({self.kind}) takes one input, not "
                              f"{len(shapes)}")
        _same(self, shapes[0], self.in_shape)

    def max_beats(self, given: list) -> int:
        """m(x) of SPEC 7: the most beats the layer's output carries in one timestep, given
        its inputs' (``given``): one per output index (neurons spike once; a max pool sends
        a pooled index once)."""
        return self.out_size

    def summary(self) -> str:
        """One line for people: the kind, its shapes and what the hardware takes."""
        return f"{self.kind} {list(self.in_shape)} -> {list(self.out_shape)}"

    # -- files -----------------------------------------------------------------------------

    def memories(self) -> list:
        """The block-RAM images written beside the params (none without parameters)."""
        return []

    def save(self, folder: Path) -> None:
        """Write the layer's own files into ``folder`` (none without parameters)."""

    def describe(self) -> dict:
        """The layer's ``network.yaml`` entry."""
        return {"name": self.name, "kind": self.kind, "inputs": list(self.inputs)}

    @classmethod
    def load(cls, folder: Path, entry: dict, T: int) -> Layer:
        """The layer from its checked ``network.yaml`` entry and its files in ``folder``."""
        raise NotImplementedError


def _same(layer: Layer, given: tuple, wanted: tuple) -> None:
    if int(np.prod(given)) != int(np.prod(wanted)) or \
            (len(given) == len(wanted) == 3 and tuple(given) != tuple(wanted)):
        raise ConfigError(f"layer {layer.name} takes {list(wanted)} but is given "
                          f"{list(given)}")


# -- layers with parameters ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Weighted(Layer):
    """A layer with weights: its hardware configuration, integer parameters and the float
    scale of one integer current unit."""

    config: ArrayConfig
    params: IntParams | ConvParams | ReadoutParams
    scale: float = 1.0

    params_type: ClassVar[type] = IntParams
    schema: ClassVar[dict] = {
        **Layer.schema, "neurons": _POSITIVE, "in_size": _POSITIVE, "lanes": _POSITIVE,
        "acc_lanes": (False, _positive, "a positive integer"), "WB": _POSITIVE, "VB": _POSITIVE,
        "beat_cap": (False, _positive, "a positive integer"),
        "second_set": (False, lambda v: isinstance(v, bool), "true or false"),
        "bias": (True, lambda v: isinstance(v, bool), "true or false"),
        "scale": (True, lambda v: _number(v) and v > 0, "a positive number"),
        "params": (True, _file_name, "a file name in the network folder"),
        "memories": (True, lambda v: isinstance(v, dict) and all(
            isinstance(k, str) and _file_name(f) for k, f in v.items()),
            "a mapping of memory names to file names"),
    }

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.params, self.params_type):
            raise ConfigError(f"layer {self.name}: a {self.kind} layer's parameters are "
                              f"{self.params_type.__name__}, not {type(self.params).__name__}")

    @property
    def in_shape(self) -> tuple:
        return (self.config.inputs,)

    @property
    def out_shape(self) -> tuple:
        return (self.config.neurons,)

    def memories(self) -> list:
        return memories(self.config, self.params)

    def summary(self) -> str:
        c = self.config
        acc = f" ({c.acc_lanes} accumulating)" if c.acc_lanes != c.lanes else ""
        return (f"{self.kind} {c.inputs} -> {c.neurons}, {c.lanes} lanes{acc}, WB={c.WB} "
                f"VB={c.VB}" + (f" DB={c.DB}" if self.spiking else "")
                + f", scale {self.scale:.6g}")

    def save(self, folder: Path) -> None:
        self.params.save(folder / f"{self.name}.npz")
        for spec in self.memories():
            write_text_atomic(folder / f"{self.name}_{spec.name}.hex", hex_lines(spec))

    def describe(self) -> dict:
        c = self.config
        entry = {**super().describe(), "neurons": c.neurons, "in_size": c.inputs,
                 "lanes": c.lanes, "WB": c.WB, "VB": c.VB, "beat_cap": c.beat_cap}
        if c.acc_lanes != c.lanes:
            entry["acc_lanes"] = c.acc_lanes
        if c.second_set is not None:
            entry["second_set"] = c.second_set
        return entry

    def _files(self) -> dict:
        return {"bias": self.config.bias, "scale": float(self.scale),
                "params": f"{self.name}.npz",
                "memories": {m.name: f"{self.name}_{m.name}.hex" for m in self.memories()}}

    @classmethod
    def _params(cls, folder: Path, entry: dict):
        raise NotImplementedError

    @classmethod
    def load(cls, folder: Path, entry: dict, T: int) -> Layer:
        path = folder / entry["params"]
        if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
            raise ConfigError(f"params {entry['params']!r} is a link to "
                              f"{str(path.resolve())!r}, outside the network folder: a packed "
                              f"network holds its own files (copy it in)")
        params = cls._params(folder, entry)
        if (params.bias is not None) != entry["bias"]:
            raise ConfigError(f"bias: {entry['bias']} disagrees with {entry['params']}")
        if params.cap != entry.get("beat_cap", params.inputs):
            raise ConfigError(f"beat_cap: {entry.get('beat_cap', params.inputs)} "
                              f"disagrees with {entry['params']} ({params.cap})")
        config = params.config(T, lanes=entry["lanes"], acc_lanes=entry.get("acc_lanes"),
                               second_set=entry.get("second_set"))
        if (config.neurons, config.inputs) != (entry["neurons"], entry["in_size"]):
            raise ConfigError(f"says {entry['neurons']} neurons x {entry['in_size']} inputs, "
                              f"{entry['params']} holds {config.neurons} x {config.inputs}")
        return cls(entry["name"], config, params, float(entry["scale"]),
                   inputs=tuple(entry.get("inputs", ())))


@dataclasses.dataclass(frozen=True)
class Spiking(Weighted):
    """A layer of DA-LIF neurons (dense or conv2d). Several inputs are one layer over them
    concatenated (SPEC 7): flat indices one after the other (dense), channels one after the
    other at equal (H, W) (conv2d)."""

    spiking: ClassVar[bool] = True
    max_inputs: ClassVar[int | None] = None
    schema: ClassVar[dict] = {
        **Weighted.schema, "DB": _POSITIVE,
        "reset": (True, lambda v: v in RESETS, f"one of {', '.join(RESETS)}"),
    }

    def join(self, shapes: list[tuple]) -> None:
        if len(shapes) == 1:
            return super().join(shapes)
        _same(self, (sum(int(np.prod(s)) for s in shapes),), (self.in_size,))

    def describe(self) -> dict:
        c = self.config
        return {**super().describe(), "DB": c.DB, "reset": c.reset,
                "threshold": self._threshold(self.params)}

    @classmethod
    def _params(cls, folder: Path, entry: dict):
        params = load_params(folder / entry["params"], WB=entry["WB"], DB=entry["DB"],
                             VB=entry["VB"], reset=entry["reset"])
        if not isinstance(params, cls.params_type):
            raise ConfigError(f"kind {cls.kind} disagrees with {entry['params']}")
        threshold = cls._threshold(params)
        if threshold != entry["threshold"]:
            raise ConfigError(f"threshold: {entry['threshold']} disagrees with "
                              f"{entry['params']} ({threshold})")
        return params


@dataclasses.dataclass(frozen=True)
class Dense(Spiking):
    """DA-LIF neurons, every input index to every neuron (SPEC 1-3)."""

    kind: ClassVar[str] = "dense"
    schema: ClassVar[dict] = {
        **Spiking.schema,
        "threshold": (True, lambda v: v in ("neuron", "layer"), "neuron or layer")}

    @staticmethod
    def _threshold(params) -> str:
        return "neuron" if params.per_neuron_threshold else "layer"

    def describe(self) -> dict:
        return {**super().describe(), **self._files()}


@dataclasses.dataclass(frozen=True)
class Conv2d(Spiking):
    """DA-LIF neurons over a convolution (SPEC 6)."""

    kind: ClassVar[str] = "conv2d"
    params_type: ClassVar[type] = ConvParams
    KEYS: ClassVar[tuple] = ("in_shape", "out_shape", "kernel", "stride", "padding")
    schema: ClassVar[dict] = {
        **Spiking.schema, "in_shape": _SHAPE3,
        "out_shape": (True, _ints(3, 1), "a list of three positive integers [K, HO, WO]"),
        "kernel": (True, _ints(2, 1), "a list of two positive integers"),
        "stride": (True, _ints(2, 1), "a list of two positive integers"),
        "padding": (True, _ints(2, 0), "a list of two integers >= 0"),
        "decays": (True, lambda v: v in ("channel", "neuron"), "channel or neuron"),
        "threshold": (True, lambda v: v in GRANULARITY, ", ".join(GRANULARITY)),
        "current_pool": (False, _ints(2, 1), "a list of two positive integers [PKH, PKW] "
                         "(the max-pooling window of the currents)"),
    }

    @property
    def in_shape(self) -> tuple:
        return self.params.shape.in_shape

    @property
    def out_shape(self) -> tuple:
        return self.params.shape.out_shape

    def join(self, shapes: list[tuple]) -> None:
        if len(shapes) == 1:
            return super().join(shapes)
        C, H, W = self.in_shape
        if any(len(s) != 3 or tuple(s[1:]) != (H, W) for s in shapes) or \
                sum(s[0] for s in shapes) != C:
            raise ConfigError(f"layer {self.name} takes {list(self.in_shape)} from several "
                              f"inputs, their channels concatenated at equal H x W: not "
                              f"{[list(s) for s in shapes]}")

    @staticmethod
    def _threshold(params) -> str:
        return params.granularity("threshold")

    def describe(self) -> dict:
        shape = self.params.shape
        pool = {} if shape.pool is None else {"current_pool": list(shape.pool)}
        return {**super().describe(), **{key: list(getattr(shape, key)) for key in self.KEYS},
                **pool, "decays": self.params.granularity("alpha"), **self._files()}

    @classmethod
    def _params(cls, folder: Path, entry: dict):
        params = super()._params(folder, entry)
        for key in cls.KEYS:
            if list(getattr(params.shape, key)) != entry[key]:
                raise ConfigError(f"{key}: {entry[key]} disagrees with {entry['params']} "
                                  f"({list(getattr(params.shape, key))})")
        pool = None if params.shape.pool is None else list(params.shape.pool)
        if pool != entry.get("current_pool"):
            raise ConfigError(f"current_pool: {entry.get('current_pool')} disagrees with "
                              f"{entry['params']} ({pool})")
        return params


@dataclasses.dataclass(frozen=True)
class Readout(Weighted):
    """Currents summed over a sample to logits, then the class (SPEC 5): a network's last
    layer, if it has one."""

    kind: ClassVar[str] = "readout"
    params_type: ClassVar[type] = ReadoutParams
    schema: ClassVar[dict] = Weighted.schema

    def describe(self) -> dict:
        return {**super().describe(), **self._files()}

    @classmethod
    def _params(cls, folder: Path, entry: dict):
        params = load_readout(folder / entry["params"])
        if (params.WB, params.VB) != (entry["WB"], entry["VB"]):
            raise ConfigError(f"widths WB={entry['WB']}, VB={entry['VB']} disagree with "
                              f"{entry['params']} (WB={params.WB}, VB={params.VB})")
        return params


# -- stages without parameters -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Pool(Layer):
    """A pooling stage on the stream (SPEC 6): no neurons, an index remap."""

    pool: PoolShape
    schema: ClassVar[dict] = {
        **Layer.schema, "in_shape": _SHAPE3,
        "window": (True, _ints(2, 1), "a list of two positive integers")}

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.pool, PoolShape) or self.pool.kind != self.kind:
            raise ConfigError(f"layer {self.name}: a {self.kind} layer needs a {self.kind} "
                              f"PoolShape, not {self.pool!r}")

    @property
    def in_shape(self) -> tuple:
        return self.pool.in_shape

    @property
    def out_shape(self) -> tuple:
        return self.pool.out_shape

    def summary(self) -> str:
        return f"{self.kind} {self.pool.window[0]}x{self.pool.window[1]}, " + \
            f"{list(self.in_shape)} -> {list(self.out_shape)}"

    def describe(self) -> dict:
        return {**super().describe(), "in_shape": list(self.pool.in_shape),
                "window": list(self.pool.window)}

    @classmethod
    def load(cls, folder: Path, entry: dict, T: int) -> Layer:
        return cls(entry["name"], PoolShape(cls.kind, entry["in_shape"], entry["window"]),
                   inputs=tuple(entry.get("inputs", ())))


@dataclasses.dataclass(frozen=True)
class SumPool(Pool):
    kind: ClassVar[str] = "sumpool"

    def max_beats(self, given: list) -> int:
        return given[0]   # every spike passes on (SPEC 7: m of its input)


@dataclasses.dataclass(frozen=True)
class MaxPool(Pool):
    kind: ClassVar[str] = "maxpool"


@dataclasses.dataclass(frozen=True)
class Add(Layer):
    """SEW-ResNet's spike-element-wise ADD (SPEC 7): no neurons; its timestep t carries every
    beat of its inputs' timestep t, then one eot. ``shape`` is each input's: (C, H, W) or
    (M,)."""

    shape: tuple
    kind: ClassVar[str] = "add"
    max_inputs: ClassVar[int | None] = None
    schema: ClassVar[dict] = {
        **Layer.schema, "inputs": (True, _names, "a list of two or more layer names"),
        "shape": (True, lambda v: (_ints(3, 1)(v) or _ints(1, 1)(v)),
                  "a list of positive integers [C, H, W] or [M]")}

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "shape", check_shape(f"layer {self.name}: an add's shape",
                                                      self.shape, (1, 3)))

    @property
    def in_shape(self) -> tuple:
        return self.shape

    @property
    def out_shape(self) -> tuple:
        return self.shape

    def join(self, shapes: list[tuple]) -> None:
        if len(shapes) < 2:
            raise ConfigError(f"layer {self.name}: an add takes two or more inputs, not "
                              f"{len(shapes)}")
        for given in shapes:
            _same(self, given, self.shape)

    def max_beats(self, given: list) -> int:
        return sum(given)

    def describe(self) -> dict:
        return {**super().describe(), "shape": list(self.shape)}

    @classmethod
    def load(cls, folder: Path, entry: dict, T: int) -> Layer:
        return cls(entry["name"], entry["shape"], inputs=tuple(entry.get("inputs", ())))
