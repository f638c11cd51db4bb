"""A packed network: DA-LIF layers chained through their event streams, then a readout.

On disk a network is a folder (written by ``python -m dalif_hw.pack``):

- ``network.yaml``: the description: T, the input encoding, and per layer its kind
  (``dalif`` or ``readout``), sizes, widths, lanes, scale and files;
- ``<layer>.npz``: the layer's integer parameters (``params.npz`` format; a readout has
  ``weight``, ``bias`` and ``meta`` only);
- ``<layer>_<memory>.hex``: block-RAM init files in the layout of the layer's lanes
  (:mod:`dalif_hw.layout`), the same words the generated memories start with.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import yaml

from . import twin
from .config import ArrayConfig, ConfigError
from .files import write_text_atomic
from .layout import hex_lines, memories
from .params import IntParams, ReadoutParams, load_params, load_readout

__all__ = ["Layer", "Network", "FORMAT"]

FORMAT = "dalif-hw network 1"
KINDS = ("dalif", "readout")


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
        How the host turns inputs into spikes (:mod:`dalif_hw.encoding`).
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
        if len(set(names)) != len(names):
            raise ConfigError(f"layer names must differ, not {names}")

    @property
    def inputs(self) -> int:
        return self.layers[0].config.inputs

    @property
    def classes(self) -> int:
        return self.layers[-1].config.neurons

    def run(self, spikes) -> tuple[list, np.ndarray]:
        """The integer twin of the whole network: ``(hidden traces, logits [S, classes])``."""
        traces, x = [], spikes
        for layer in self.layers[:-1]:
            trace = twin.run(layer.params, x)
            traces.append(trace)
            x = trace.spikes_out
        return traces, twin.readout(self.layers[-1].params, x)

    def classify(self, spikes) -> np.ndarray:
        """Classes [S]: the argmax of the logits, the lowest index among equal maxima."""
        return self.run(spikes)[1].argmax(axis=1)

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
        """Read and check a network folder.

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
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(text, dict) or text.get("format") != FORMAT:
            found = text.get("format") if isinstance(text, dict) else None
            raise ConfigError(f"{path} is not a {FORMAT!r} description (format: {found!r})")
        try:
            T, encoding, entries = int(text["T"]), dict(text["encoding"]), list(text["layers"])
            layers = [cls._load_layer(folder, entry, T) for entry in entries]
            source = dict(text["source"]) if text.get("source") else None
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path} is malformed: {exc!r}") from None
        return cls(T=T, encoding=encoding, layers=layers, source=source)

    @staticmethod
    def _load_layer(folder: Path, entry: dict, T: int) -> Layer:
        kind = entry["kind"]
        if kind not in KINDS:
            raise ConfigError(f"layer {entry.get('name')!r} has unknown kind {kind!r}")
        if kind == "dalif":
            params = load_params(folder / entry["params"], WB=entry["WB"], DB=entry["DB"],
                                 VB=entry["VB"], reset=entry["reset"])
        else:
            params = load_readout(folder / entry["params"])
            if (params.WB, params.VB) != (entry["WB"], entry["VB"]):
                raise ConfigError(f"layer {entry['name']}: widths in network.yaml disagree "
                                  f"with {entry['params']}")
        config = params.config(T, lanes=int(entry["lanes"]))
        if (config.neurons, config.inputs) != (entry["neurons"], entry["inputs"]):
            raise ConfigError(f"layer {entry['name']}: network.yaml says {entry['neurons']} x "
                              f"{entry['inputs']}, {entry['params']} holds "
                              f"{config.neurons} x {config.inputs}")
        return Layer(name=str(entry["name"]), kind=kind, config=config, params=params,
                     scale=float(entry["scale"]))
