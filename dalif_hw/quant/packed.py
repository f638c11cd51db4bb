"""A packed network: DA-LIF layers chained through their event streams, then a readout (or
none: the last DA-LIF layer's spikes are the output).

On disk a network is a folder (written by ``python -m dalif_hw.pack``):

- ``network.yaml``: the description: T, the input encoding, and per layer its kind
  (:data:`KINDS`: ``dense``, ``conv2d``, ``sumpool``, ``maxpool``, ``readout``; the
  params files' ``meta`` kinds where they have one), sizes, widths, lanes, scale and files;
- ``<layer>.npz``: the layer's integer parameters (``params.npz`` format; a readout has
  ``weight``, ``bias`` and ``meta`` only);
- ``<layer>_<memory>.hex``: block-RAM init files in the layout of the layer's lanes
  (:mod:`dalif_hw.core.layout`), the same words the generated memories start with.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from ..core.config import RESETS, ArrayConfig, ConfigError
from ..core.conv import POOL_KINDS, PoolShape
from ..core.encoding import check_encoding
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

__all__ = ["Layer", "Network", "FORMAT", "KINDS"]

FORMAT = "dalif-hw network 2"
#: Format 1 named a dense layer ``dalif``; it is read as ``dense``.
OLD_FORMATS = {"dalif-hw network 1": {"dalif": "dense"}}
#: Layer kinds: spiking layers (dense, conv2d), pooling stages on the stream, the readout.
KINDS = ("dense", "conv2d", *POOL_KINDS, "readout")
#: Layer names become Verilog port names (``cfg_<layer>``) and file names.
LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LAYER_NAME_RULE = "an identifier (letters, digits, _; not starting with a digit)"


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer: its kind, name, hardware configuration, integer parameters and scale; a
    pooling stage has neither configuration nor parameters, only its ``pool`` shape."""

    name: str
    kind: str
    config: ArrayConfig | None
    params: IntParams | ConvParams | ReadoutParams | None
    scale: float = 1.0
    pool: PoolShape | None = None

    @property
    def inputs(self) -> int:
        return self.pool.inputs if self.pool is not None else self.config.inputs

    @property
    def outputs(self) -> int:
        return self.pool.outputs if self.pool is not None else self.config.neurons

    def shape(self, side: str) -> tuple:
        """The ``"in"`` or ``"out"`` shape: (C, H, W) for conv2d and pooling, else flat."""
        if self.pool is not None:
            return self.pool.in_shape if side == "in" else self.pool.out_shape
        if self.kind == "conv2d":
            shape = self.params.shape
            return shape.in_shape if side == "in" else shape.out_shape
        return (self.inputs if side == "in" else self.outputs,)

    @property
    def files(self) -> bool:
        """Whether the layer has a params file (and ``.hex`` files)."""
        return self.pool is None

    def memories(self) -> list:
        """The block-RAM images written beside the params, in the hardware's layout (none
        for a pooling stage)."""
        return [] if self.pool is not None else memories(self.config, self.params)

    def describe(self) -> dict:
        if self.pool is not None:
            return {"name": self.name, "kind": self.kind, "in_shape": list(self.pool.in_shape),
                    "window": list(self.pool.window)}
        c = self.config
        entry = {"name": self.name, "kind": self.kind, "neurons": c.neurons,
                 "inputs": c.inputs, "lanes": c.lanes, "WB": c.WB, "VB": c.VB}
        if c.acc_lanes != c.lanes:
            entry["acc_lanes"] = c.acc_lanes
        if self.kind == "conv2d":
            shape = self.params.shape
            entry.update(in_shape=list(shape.in_shape), out_shape=list(shape.out_shape),
                         kernel=list(shape.kernel), stride=list(shape.stride),
                         padding=list(shape.padding), decays=self.params.granularity("alpha"))
        if self.kind in ("dense", "conv2d"):
            entry["beat_cap"] = c.beat_cap
            threshold = (self.params.granularity("threshold") if self.kind == "conv2d" else
                         "neuron" if c.per_neuron_threshold else "layer")
            entry.update(DB=c.DB, reset=c.reset, threshold=threshold)
        entry.update(bias=c.bias, scale=float(self.scale), params=f"{self.name}.npz",
                     memories={m.name: f"{self.name}_{m.name}.hex" for m in self.memories()})
        return entry


@dataclasses.dataclass(frozen=True)
class Network:
    """A chain of DA-LIF layers (and pooling stages), ending in a readout or in a DA-LIF
    layer whose spikes are the output (checked on construction).

    Attributes
    ----------
    T : int
        Timesteps per sample.
    encoding : dict
        How the host turns inputs into spikes (:mod:`dalif_hw.core.encoding`).
    layers : tuple of Layer
    source : dict, optional
        Where it came from: ``checkpoint`` (path relative to the network folder) and the
        checkpoint's ``metrics``.
    """

    T: int
    encoding: dict
    layers: tuple
    source: dict | None = None

    def __post_init__(self):
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        check_encoding(self.encoding, self.T, "encoding")
        if not any(layer.kind in ("dense", "conv2d") for layer in layers) or \
                layers[-1].kind in POOL_KINDS:
            raise ConfigError(f"a network needs at least one DA-LIF layer and ends in a "
                              f"readout or a DA-LIF layer, not {[layer.kind for layer in layers]}")
        for k, layer in enumerate(layers):
            if layer.kind not in KINDS:
                raise ConfigError(f"layer {k} ({layer.name}): kind must be one of "
                                  f"{', '.join(KINDS)}, not {layer.kind!r}")
            if layer.kind == "readout" and k != len(layers) - 1:
                raise ConfigError(f"layer {k} ({layer.name}) is a readout layer: a readout "
                                  "can only be the last layer")
            if (layer.pool is not None) != (layer.kind in POOL_KINDS):
                raise ConfigError(f"layer {layer.name}: a {layer.kind} layer "
                                  f"{'needs' if layer.kind in POOL_KINDS else 'has no'} "
                                  "pooling shape")
            if layer.pool is None and layer.config.T != self.T:
                raise ConfigError(f"layer {layer.name} has T={layer.config.T}, the network "
                                  f"T={self.T}")
            if k and layer.inputs != layers[k - 1].outputs:
                raise ConfigError(f"layer {layer.name} has {layer.inputs} inputs but "
                                  f"{layers[k - 1].name} has {layers[k - 1].outputs} "
                                  f"outputs")
            here, before = layer.shape("in"), layers[k - 1].shape("out") if k else ()
            if len(here) == len(before) == 3 and here != before:
                raise ConfigError(f"layer {layer.name} takes {list(here)} but "
                                  f"{layers[k - 1].name} gives {list(before)}")
        names = [layer.name for layer in layers]
        for name in names:
            if not isinstance(name, str) or not LAYER_NAME.fullmatch(name):
                raise ConfigError(f"layer name must be {LAYER_NAME_RULE}, not {name!r}")
        if len(set(names)) != len(names):
            raise ConfigError(f"layer names must differ, not {names}")

    @property
    def inputs(self) -> int:
        return self.layers[0].inputs

    @property
    def has_readout(self) -> bool:
        """Whether the network ends in a readout (logits and a class per sample); otherwise
        its output is the last DA-LIF layer's spike stream."""
        return self.layers[-1].kind == "readout"

    @property
    def outputs(self) -> int:
        """Classes (with a readout) or output neurons (without)."""
        return self.layers[-1].config.neurons

    @property
    def classes(self) -> int:
        return self.outputs

    # -- files -----------------------------------------------------------------------------

    def describe(self) -> dict:
        description = {"format": FORMAT, "T": self.T, "encoding": dict(self.encoding),
                       "layers": [layer.describe() for layer in self.layers]}
        if self.source:
            description["source"] = dict(self.source)
        return description

    def save(self, folder) -> Path:
        """Write the network folder (each file atomically); return the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for layer in self.layers:
            if layer.files:
                layer.params.save(folder / f"{layer.name}.npz")
            for spec in layer.memories():
                write_text_atomic(folder / f"{layer.name}_{spec.name}.hex", hex_lines(spec))
        write_text_atomic(folder / "network.yaml",
                          yaml.safe_dump(self.describe(), sort_keys=False))
        return folder

    @classmethod
    def load(cls, folder) -> Network:
        """Read and check a network folder: ``network.yaml`` against :data:`SCHEMA` first
        (unknown or misspelt keys, wrong types and inconsistent values are errors), then
        every layer's files against it.

        Raises
        ------
        ConfigError
            If the description is missing or malformed, or disagrees with a layer's file.
        """
        folder = Path(folder)
        path = folder / "network.yaml"
        if not path.is_file():
            raise ConfigError(f"network folder {str(folder)!r} has no network.yaml")
        try:
            text = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") \
                from None
        if not isinstance(text, dict) or (text.get("format") != FORMAT and
                                          text.get("format") not in OLD_FORMATS):
            found = text.get("format") if isinstance(text, dict) else None
            raise ConfigError(f"{path} is not a {FORMAT!r} description (format: {found!r})")
        if text["format"] in OLD_FORMATS:
            renamed = OLD_FORMATS[text["format"]]
            text = {**text, "format": FORMAT, "layers": [
                {**entry, "kind": renamed.get(entry.get("kind"), entry.get("kind"))}
                if isinstance(entry, dict) else entry for entry in text.get("layers") or []]}
            for entry in text["layers"]:
                if isinstance(entry, dict) and entry.get("kind") == "dense" and \
                        entry.get("threshold") in ("per-neuron", "per-layer"):
                    entry["threshold"] = entry["threshold"][len("per-"):]
        check_description(text, str(path))
        layers = [cls._load_layer(folder, entry, text["T"], f"{path}: layer {entry['name']}")
                  for entry in text["layers"]]
        try:
            return cls(T=text["T"], encoding=text["encoding"], layers=layers,
                       source=text.get("source"))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @staticmethod
    def _load_layer(folder: Path, entry: dict, T: int, where: str) -> Layer:
        kind = entry["kind"]
        try:
            if kind in POOL_KINDS:
                return Layer(name=entry["name"], kind=kind, config=None, params=None,
                             pool=PoolShape(kind, entry["in_shape"], entry["window"]))
            if kind in ("dense", "conv2d"):
                params = load_params(folder / entry["params"], WB=entry["WB"], DB=entry["DB"],
                                     VB=entry["VB"], reset=entry["reset"])
                if isinstance(params, ConvParams) != (kind == "conv2d"):
                    raise ConfigError(f"kind {kind} disagrees with {entry['params']}")
                threshold = (params.granularity("threshold") if kind == "conv2d" else
                             "neuron" if params.per_neuron_threshold else "layer")
                if threshold != entry["threshold"]:
                    raise ConfigError(f"threshold: {entry['threshold']} disagrees with "
                                      f"{entry['params']} ({threshold})")
                if params.cap != entry.get("beat_cap", params.inputs):
                    raise ConfigError(f"beat_cap: {entry.get('beat_cap', params.inputs)} "
                                      f"disagrees with {entry['params']} ({params.cap})")
                if kind == "conv2d":
                    shape = params.shape
                    for key in ("in_shape", "out_shape", "kernel", "stride", "padding"):
                        if list(getattr(shape, key)) != entry[key]:
                            raise ConfigError(f"{key}: {entry[key]} disagrees with "
                                              f"{entry['params']} ({list(getattr(shape, key))})")
            else:
                params = load_readout(folder / entry["params"])
                if (params.WB, params.VB) != (entry["WB"], entry["VB"]):
                    raise ConfigError(f"widths WB={entry['WB']}, VB={entry['VB']} disagree "
                                      f"with {entry['params']} (WB={params.WB}, "
                                      f"VB={params.VB})")
            if (params.bias is not None) != entry["bias"]:
                raise ConfigError(f"bias: {entry['bias']} disagrees with {entry['params']}")
            config = params.config(T, lanes=entry["lanes"], acc_lanes=entry.get("acc_lanes"))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if (config.neurons, config.inputs) != (entry["neurons"], entry["inputs"]):
            raise ConfigError(f"{where}: says {entry['neurons']} neurons x "
                              f"{entry['inputs']} inputs, {entry['params']} holds "
                              f"{config.neurons} x {config.inputs}")
        return Layer(name=entry["name"], kind=kind, config=config, params=params,
                     scale=float(entry["scale"]))


# -- the schema of network.yaml ------------------------------------------------------------

def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(value) -> bool:
    return _integer(value) and value >= 1


def _file_name(value) -> bool:
    return isinstance(value, str) and value == Path(value).name and value not in ("", ".", "..")


#: ``network.yaml``, key by key: ``(required, test, what the value must be)``. A layer's keys
#: depend on its kind.
SCHEMA = {
    "format": (True, lambda v: v == FORMAT, repr(FORMAT)),
    "T": (True, _positive, "a positive integer"),
    "encoding": (True, lambda v: isinstance(v, dict), "a mapping"),
    "layers": (True, lambda v: isinstance(v, list) and len(v) >= 1 and
               all(isinstance(e, dict) for e in v), "a non-empty list of layer mappings"),
    "source": (False, lambda v: v is None or isinstance(v, dict), "a mapping"),
}
_LAYER = {
    "name": (True, lambda v: isinstance(v, str) and LAYER_NAME.fullmatch(v) is not None,
             LAYER_NAME_RULE),
    "kind": (True, lambda v: v in KINDS, f"one of {', '.join(KINDS)}"),
    "neurons": (True, _positive, "a positive integer"),
    "inputs": (True, _positive, "a positive integer"),
    "lanes": (True, _positive, "a positive integer"),
    "acc_lanes": (False, _positive, "a positive integer"),
    "WB": (True, _positive, "a positive integer"),
    "VB": (True, _positive, "a positive integer"),
    "bias": (True, lambda v: isinstance(v, bool), "true or false"),
    "scale": (True, lambda v: _number(v) and v > 0, "a positive number"),
    "params": (True, _file_name, "a file name in the network folder"),
    "memories": (True, lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and _file_name(f) for k, f in v.items()),
        "a mapping of memory names to file names"),
}
_NEURONS = {
    "beat_cap": (False, _positive, "a positive integer"),
    "DB": (True, _positive, "a positive integer"),
    "reset": (True, lambda v: v in RESETS, f"one of {', '.join(RESETS)}"),
}


def _ints(count: int, minimum: int):
    return (lambda v: isinstance(v, list) and len(v) == count and
            all(_integer(x) and x >= minimum for x in v))


_CONV = {
    "in_shape": (True, _ints(3, 1), "a list of three positive integers [C, H, W]"),
    "out_shape": (True, _ints(3, 1), "a list of three positive integers [K, HO, WO]"),
    "kernel": (True, _ints(2, 1), "a list of two positive integers"),
    "stride": (True, _ints(2, 1), "a list of two positive integers"),
    "padding": (True, _ints(2, 0), "a list of two integers >= 0"),
    "decays": (True, lambda v: v in ("channel", "neuron"), "channel or neuron"),
}
_POOL = {
    "name": _LAYER["name"], "kind": _LAYER["kind"],
    "in_shape": (True, _ints(3, 1), "a list of three positive integers [C, H, W]"),
    "window": (True, _ints(2, 1), "a list of two positive integers"),
}
SCHEMA_LAYER = {
    "dense": {**_LAYER, **_NEURONS,
              "threshold": (True, lambda v: v in ("neuron", "layer"), "neuron or layer")},
    "conv2d": {**_LAYER, **_NEURONS, **_CONV,
               "threshold": (True, lambda v: v in GRANULARITY, ", ".join(GRANULARITY))},
    "sumpool": _POOL,
    "maxpool": _POOL,
    "readout": _LAYER,
}
_SOURCE = {
    "checkpoint": (False, lambda v: isinstance(v, str), "a path"),
    "metrics": (False, lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and _number(x) for k, x in v.items()),
        "a mapping of names to numbers"),
}


def _check_keys(mapping: dict, schema: dict, where: str) -> None:
    for key in mapping:
        if key not in schema:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(schema)})")
    for key, (required, test, what) in schema.items():
        if key not in mapping:
            if required:
                raise ConfigError(f"{where}: missing key {key!r}")
        elif not test(mapping[key]):
            raise ConfigError(f"{where}: {key} must be {what}, not {mapping[key]!r}")


def check_description(text: dict, where: str = "network.yaml") -> None:
    """Check a parsed ``network.yaml`` against :data:`SCHEMA`: one line naming the key, the
    layer and the value on the first problem.

    Raises
    ------
    ConfigError
    """
    _check_keys(text, SCHEMA, where)
    check_encoding(text["encoding"], text["T"], f"{where}: encoding")
    if text.get("source") is not None:
        _check_keys(text["source"], _SOURCE, f"{where}: source")
    for k, entry in enumerate(text["layers"]):
        name = entry.get("name")
        label = f"{where}: layer {name}" if isinstance(name, str) else f"{where}: layer {k}"
        kind = entry.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{label}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        _check_keys(entry, SCHEMA_LAYER[kind], label)
