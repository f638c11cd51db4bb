"""A packed network: DA-LIF layers chained through their event streams, then a readout.

On disk a network is a folder (written by ``python -m dalif_hw.pack``):

- ``network.yaml``: the description: T, the input encoding, and per layer its kind
  (``dalif`` or ``readout``), sizes, widths, lanes, scale and files;
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
from ..core.encoding import check_encoding
from ..core.files import write_text_atomic
from ..core.layout import hex_lines, memories
from ..core.params import IntParams, ReadoutParams, load_params, load_readout

__all__ = ["Layer", "Network", "FORMAT"]

FORMAT = "dalif-hw network 1"
KINDS = ("dalif", "readout")
#: Layer names become Verilog port names (``cfg_<layer>``) and file names.
LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LAYER_NAME_RULE = "an identifier (letters, digits, _; not starting with a digit)"


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer: its kind, name, hardware configuration, integer parameters and scale."""

    name: str
    kind: str
    config: ArrayConfig
    params: IntParams | ReadoutParams
    scale: float

    def describe(self) -> dict:
        c = self.config
        entry = {"name": self.name, "kind": self.kind, "neurons": c.neurons,
                 "inputs": c.inputs, "lanes": c.lanes, "WB": c.WB, "VB": c.VB}
        if self.kind == "dalif":
            entry.update(DB=c.DB, reset=c.reset, threshold="per-neuron"
                         if c.per_neuron_threshold else "per-layer")
        entry.update(bias=c.bias, scale=float(self.scale), params=f"{self.name}.npz",
                     memories={m.name: f"{self.name}_{m.name}.hex"
                               for m in memories(c, self.params)})
        return entry


@dataclasses.dataclass(frozen=True)
class Network:
    """A chain of DA-LIF layers and a final readout (checked on construction).

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
        if len(layers) < 2:
            raise ConfigError(f"a network needs at least one DA-LIF layer and a readout, "
                              f"not {len(layers)} layers")
        for k, layer in enumerate(layers):
            want = "readout" if k == len(layers) - 1 else "dalif"
            if layer.kind != want:
                raise ConfigError(f"layer {k} ({layer.name}) must be a {want} layer, "
                                  f"not {layer.kind!r}")
            if layer.config.T != self.T:
                raise ConfigError(f"layer {layer.name} has T={layer.config.T}, the network "
                                  f"T={self.T}")
            if k and layer.config.inputs != layers[k - 1].config.neurons:
                raise ConfigError(f"layer {layer.name} has {layer.config.inputs} inputs but "
                                  f"{layers[k - 1].name} has {layers[k - 1].config.neurons} "
                                  f"neurons")
        names = [layer.name for layer in layers]
        for name in names:
            if not isinstance(name, str) or not LAYER_NAME.fullmatch(name):
                raise ConfigError(f"layer name must be {LAYER_NAME_RULE}, not {name!r}")
        if len(set(names)) != len(names):
            raise ConfigError(f"layer names must differ, not {names}")

    @property
    def inputs(self) -> int:
        return self.layers[0].config.inputs

    @property
    def classes(self) -> int:
        return self.layers[-1].config.neurons

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
            layer.params.save(folder / f"{layer.name}.npz")
            for spec in memories(layer.config, layer.params):
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
        if not isinstance(text, dict) or text.get("format") != FORMAT:
            found = text.get("format") if isinstance(text, dict) else None
            raise ConfigError(f"{path} is not a {FORMAT!r} description (format: {found!r})")
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
            if kind == "dalif":
                params = load_params(folder / entry["params"], WB=entry["WB"], DB=entry["DB"],
                                     VB=entry["VB"], reset=entry["reset"])
                if params.per_neuron_threshold != (entry["threshold"] == "per-neuron"):
                    raise ConfigError(f"threshold: {entry['threshold']} disagrees with "
                                      f"{entry['params']}")
            else:
                params = load_readout(folder / entry["params"])
                if (params.WB, params.VB) != (entry["WB"], entry["VB"]):
                    raise ConfigError(f"widths WB={entry['WB']}, VB={entry['VB']} disagree "
                                      f"with {entry['params']} (WB={params.WB}, "
                                      f"VB={params.VB})")
            if (params.bias is not None) != entry["bias"]:
                raise ConfigError(f"bias: {entry['bias']} disagrees with {entry['params']}")
            config = params.config(T, lanes=entry["lanes"])
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
    "layers": (True, lambda v: isinstance(v, list) and len(v) >= 2 and
               all(isinstance(e, dict) for e in v), "a list of at least two layer mappings"),
    "source": (False, lambda v: v is None or isinstance(v, dict), "a mapping"),
}
_LAYER = {
    "name": (True, lambda v: isinstance(v, str) and LAYER_NAME.fullmatch(v) is not None,
             LAYER_NAME_RULE),
    "kind": (True, lambda v: v in KINDS, f"one of {', '.join(KINDS)}"),
    "neurons": (True, _positive, "a positive integer"),
    "inputs": (True, _positive, "a positive integer"),
    "lanes": (True, _positive, "a positive integer"),
    "WB": (True, _positive, "a positive integer"),
    "VB": (True, _positive, "a positive integer"),
    "bias": (True, lambda v: isinstance(v, bool), "true or false"),
    "scale": (True, lambda v: _number(v) and v > 0, "a positive number"),
    "params": (True, _file_name, "a file name in the network folder"),
    "memories": (True, lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and _file_name(f) for k, f in v.items()),
        "a mapping of memory names to file names"),
}
SCHEMA_LAYER = {
    "dalif": {**_LAYER,
              "DB": (True, _positive, "a positive integer"),
              "reset": (True, lambda v: v in RESETS, f"one of {', '.join(RESETS)}"),
              "threshold": (True, lambda v: v in ("per-neuron", "per-layer"),
                            "per-neuron or per-layer")},
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
