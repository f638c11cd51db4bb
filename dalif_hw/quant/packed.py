"""A packed network: layers of DA-LIF neurons, pooling and add stages as a directed acyclic
graph (SPEC 7), ending in a readout (or none: the last DA-LIF layer's spikes are the output).

Each layer is one of the kinds of :mod:`.kinds` and names its inputs; a chain needs no names
(each layer takes the one before it). On disk a network is a folder (written by
``python -m dalif_hw.pack``):

- ``network.yaml``: the description: T, the input encoding, and per layer its kind, inputs,
  sizes, widths, lanes, scale and files (format 3; formats 1 and 2, chains, are still read);
- ``<layer>.npz``: the layer's integer parameters (``params.npz`` format; a readout has
  ``weight``, ``bias`` and ``meta`` only);
- ``<layer>_<memory>.hex``: block-RAM init files in the layout of the layer's lanes
  (:mod:`dalif_hw.core.layout`), the same words the generated memories start with.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from ..core.config import MAX_T, ConfigError, parse_text
from ..core.encoding import check_encoding
from ..core.files import set_files, write_text_atomic
from .kinds import (
    INPUT,
    KINDS,
    LAYER_NAME,
    LAYER_NAME_RULE,
    Add,
    Conv2d,
    Dense,
    Layer,
    MaxPool,
    Readout,
    SumPool,
    Weighted,
    _number,
    _positive,
)

__all__ = ["Layer", "Weighted", "Dense", "Conv2d", "SumPool", "MaxPool", "Add", "Readout",
           "Network", "FORMAT", "KINDS", "INPUT"]

FORMAT = "dalif-hw network 3"
#: Earlier formats (chains): format 1 named a dense layer ``dalif`` and its thresholds
#: ``per-neuron`` / ``per-layer``; formats 1 and 2 gave a layer's input count as ``inputs``
#: (format 3: ``in_size``; ``inputs`` names the layers that feed it).
OLD_FORMATS = ("dalif-hw network 1", "dalif-hw network 2")


@dataclasses.dataclass(frozen=True)
class Network:
    """Layers as a directed acyclic graph (SPEC 7), listed so that every layer comes after
    its inputs; the last is the output: a readout, or a DA-LIF layer whose spikes are the
    output. Checked on construction; a layer without ``inputs`` takes the one before it.

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
        check_encoding(self.encoding, self.T, "encoding")
        if not layers:
            raise ConfigError("a network needs at least one layer")
        for k, layer in enumerate(layers):
            if not isinstance(layer, Layer) or type(layer) not in KINDS.values():
                raise ConfigError(f"layer {k} must be one of the layer kinds "
                                  f"({', '.join(KINDS)}), not {layer!r}")
        names = [layer.name for layer in layers]
        for name in names:
            if not isinstance(name, str) or not LAYER_NAME.fullmatch(name) or name == INPUT:
                raise ConfigError(f"layer name must be {LAYER_NAME_RULE} other than "
                                  f"{INPUT!r}, not {name!r}")
        if len(set(names)) != len(names):
            raise ConfigError(f"layer names must differ, not {names}")
        # A layer without inputs takes the one before it.
        layers = tuple(layer if layer.inputs else dataclasses.replace(
            layer, inputs=(names[k - 1] if k else INPUT,)) for k, layer in enumerate(layers))
        object.__setattr__(self, "layers", layers)
        if layers[0].inputs != (INPUT,):
            raise ConfigError(f"the first layer ({layers[0].name}) takes the network's input, "
                              f"not {list(layers[0].inputs)}")
        shapes = {INPUT: layers[0].in_shape}
        for k, layer in enumerate(layers):
            if isinstance(layer, Readout) and k != len(layers) - 1:
                raise ConfigError(f"layer {k} ({layer.name}) is a readout layer: a readout "
                                  "can only be the last layer")
            if isinstance(layer, Weighted) and layer.config.T != self.T:
                raise ConfigError(f"layer {layer.name} has T={layer.config.T}, the network "
                                  f"T={self.T}")
            for name in layer.inputs:
                if name not in shapes:
                    raise ConfigError(f"layer {layer.name} takes {name!r}, which is "
                                      f"{'not a layer' if name not in names else 'not before it'}"
                                      f" (layers: {', '.join(names)})")
            if len(set(layer.inputs)) != len(layer.inputs):
                raise ConfigError(f"layer {layer.name} names an input twice: "
                                  f"{list(layer.inputs)}")
            if layer.max_inputs is not None and len(layer.inputs) > layer.max_inputs:
                raise ConfigError(f"layer {layer.name} ({layer.kind}) takes one input, not "
                                  f"{list(layer.inputs)}")
            if isinstance(layer, MaxPool) and isinstance(self._get(layers, layer.inputs[0]),
                                                         Add):
                raise ConfigError(f"layer {layer.name}: max pooling after an add is refused "
                                  "(the max of summed spikes is a count, which max pooling "
                                  "of spikes does not carry)")
            if k:
                layer.join([shapes[name] for name in layer.inputs])
            shapes[layer.name] = layer.out_shape
        beats = self.max_beats()
        for layer in layers:
            if isinstance(layer, Weighted) and layer.inputs != (INPUT,):
                most = sum(beats[name] for name in layer.inputs)
                if layer.config.beat_cap < most:
                    raise ConfigError(
                        f"layer {layer.name}: its beat cap {layer.config.beat_cap} is below the "
                        f"{most} beats its inputs can send in a timestep (SPEC 7: nothing "
                        f"drops inside a network); give it a beat cap of at least {most}")
        last = layers[-1]
        if not (isinstance(last, Readout) or last.spiking):
            raise ConfigError(f"a network ends in a readout or a DA-LIF layer, not "
                              f"{last.kind} ({last.name})")
        for layer in layers[:-1]:
            if not self.consumers(layer.name):
                raise ConfigError(f"layer {layer.name} feeds no layer (only the last layer, "
                                  f"{last.name}, is the output)")

    @staticmethod
    def _get(layers, name):
        return next((layer for layer in layers if layer.name == name), None)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        found = self._get(self.layers, name)
        if found is None:
            raise KeyError(name)
        return found

    def consumers(self, name: str) -> list[Layer]:
        """The layers that ``name`` (a layer or :data:`INPUT`) feeds, in network order."""
        return [layer for layer in self.layers if name in layer.inputs]

    def max_beats(self) -> dict:
        """m(x) of SPEC 7 for every stream (the network's input and each layer's output):
        the most beats it carries in one timestep."""
        beats = {INPUT: self.layers[0].in_size}
        for layer in self.layers:
            beats[layer.name] = layer.max_beats([beats[name] for name in layer.inputs])
        return beats

    @property
    def weighted(self) -> list:
        """The layers with parameters (and a configuration port), in network order."""
        return [layer for layer in self.layers if isinstance(layer, Weighted)]

    @property
    def is_chain(self) -> bool:
        """Whether every layer takes the one before it (and no stream forks)."""
        return all(layer.inputs == ((self.layers[k - 1].name,) if k else (INPUT,))
                   for k, layer in enumerate(self.layers))

    @property
    def inputs(self) -> int:
        """The network's input indices M."""
        return self.layers[0].in_size

    @property
    def has_readout(self) -> bool:
        """Whether the network ends in a readout (logits and a class per sample); otherwise
        its output is the last DA-LIF layer's spike stream."""
        return isinstance(self.layers[-1], Readout)

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
            layer.save(folder)
        write_text_atomic(folder / "network.yaml",
                          yaml.safe_dump(self.describe(), sort_keys=False))
        return folder

    @classmethod
    def load(cls, folder) -> Network:
        """Read and check a network folder: ``network.yaml`` against each kind's schema
        first (unknown or misspelt keys, wrong types and inconsistent values are errors),
        then every layer's files against it.

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
            text = parse_text(path.read_text(), str(path), "yaml")
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") \
                from None
        if not isinstance(text, dict) or (text.get("format") != FORMAT and
                                          text.get("format") not in OLD_FORMATS):
            found = text.get("format") if isinstance(text, dict) else None
            raise ConfigError(f"{path} is not a {FORMAT!r} description (format: {found!r})")
        if text["format"] in OLD_FORMATS:
            text = _upgrade(text)
        check_description(text, str(path))
        _check_whole(folder, text, path)
        layers = []
        for entry in text["layers"]:
            try:
                layers.append(KINDS[entry["kind"]].load(folder, entry, text["T"]))
            except ConfigError as exc:
                raise ConfigError(f"{path}: layer {entry['name']}: {exc}") from None
        try:
            return cls(T=text["T"], encoding=text["encoding"], layers=layers,
                       source=text.get("source"))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def _check_whole(folder: Path, text: dict, path: Path) -> None:
    """Refuse a description that leaves out layer files pack wrote with it (by the folder's
    set record): a truncated ``network.yaml`` would otherwise build a network without its
    last layers."""
    written = set_files(folder, "pack")
    if written is None:
        return
    described = {"network.yaml"}
    for entry in text["layers"]:
        described.add(entry.get("params"))
        described.update((entry.get("memories") or {}).values())
    left_out = [name for name in written if name.endswith((".npz", ".hex")) and
                name not in described]
    if left_out:
        raise ConfigError(f"{path} does not describe {', '.join(left_out[:3])}, which pack "
                          "wrote with it: it is truncated or edited; pack the network again")


def _upgrade(text: dict) -> dict:
    """A format 1 or 2 description (a chain) in format 3's keys."""
    old = text["format"] == OLD_FORMATS[0]
    layers = []
    for entry in text.get("layers") or []:
        if isinstance(entry, dict):
            entry = dict(entry)
            if old and entry.get("kind") == "dalif":
                entry["kind"] = "dense"
            if old and entry.get("kind") == "dense" and \
                    entry.get("threshold") in ("per-neuron", "per-layer"):
                entry["threshold"] = entry["threshold"][len("per-"):]
            if "inputs" in entry:
                entry["in_size"] = entry.pop("inputs")
        layers.append(entry)
    return {**text, "format": FORMAT, "layers": layers}


# -- the schema of network.yaml ------------------------------------------------------------

#: ``network.yaml``, key by key: ``(required, test, what the value must be)``. A layer's keys
#: are its kind's (:attr:`Layer.schema <dalif_hw.quant.kinds.Layer.schema>`).
SCHEMA = {
    "format": (True, lambda v: v == FORMAT, repr(FORMAT)),
    "T": (True, lambda v: _positive(v) and v <= MAX_T, f"a positive integer up to {MAX_T}"),
    "encoding": (True, lambda v: isinstance(v, dict), "a mapping"),
    "layers": (True, lambda v: isinstance(v, list) and len(v) >= 1 and
               all(isinstance(e, dict) for e in v), "a non-empty list of layer mappings"),
    "source": (False, lambda v: v is None or isinstance(v, dict), "a mapping"),
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
    """Check a parsed ``network.yaml`` against :data:`SCHEMA` and each layer's kind: one
    line naming the key, the layer and the value on the first problem.

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
        _check_keys(entry, KINDS[kind].schema, label)
