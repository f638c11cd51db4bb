"""Networks of frameworks that are not test dependencies, replayed from what their fixture
writers recorded (tests/fixtures/recording.py): the module rebuilt from its record, the
framework's own spikes unpacked.

The rebuilt module has PyTorch's layers where the framework's subclass them, and stand-ins of
its neuron classes: classes of the same module path and name, carrying the recorded
attributes (a class-valued attribute, a spike function, as a stand-in class of its name; a
dataclass, a reset function, as a stand-in object with its fields) and the parameters the
state dict holds for them. That is all the importer reads; the state dict is loaded strictly,
so its keys prove the structure.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(path: str) -> dict:
    """A fixture, ``<framework>/<name>.pt`` under tests/fixtures."""
    return torch.load(FIXTURES / path, weights_only=True)


def unpacked(spikes: dict) -> torch.Tensor:
    bits = np.unpackbits(spikes["bits"].numpy())[:int(np.prod(spikes["shape"]))]
    return torch.from_numpy(bits.reshape(spikes["shape"]).astype(np.float32))


def _stand_in_class(qualified: str) -> type:
    module_path, _, name = qualified.rpartition(".")
    return type(name, (), {"__module__": module_path})


def _value(value):
    if isinstance(value, dict) and set(value) == {"class"}:
        return _stand_in_class(value["class"])
    if isinstance(value, dict) and set(value) == {"object", "fields"}:
        instance = _stand_in_class(value["object"])()
        for key, field in value["fields"].items():
            setattr(instance, key, field)
        return instance
    if isinstance(value, dict) and set(value) == {"tensor"}:
        return torch.tensor(value["tensor"])
    return value


def _neuron(leaf: dict, state: dict) -> nn.Module:
    module_path, _, name = leaf["class"].rpartition(".")
    module = type(name, (nn.Module,), {"__module__": module_path})()
    for key, value in leaf["attributes"].items():
        setattr(module, key, _value(value))
    prefix = leaf["path"] + "."
    for key, tensor in state.items():
        if key.startswith(prefix) and "." not in key[len(prefix):]:
            module.register_parameter(key[len(prefix):], nn.Parameter(torch.zeros_like(tensor)))
    return module


def _layer(leaf: dict) -> nn.Module:
    attrs = {key: _value(value) for key, value in leaf["attributes"].items()}
    base_path, _, base = leaf["torch"].rpartition(".")
    kind = getattr(importlib.import_module(base_path), base)
    if kind is nn.Linear:
        return nn.Linear(attrs["in_features"], attrs["out_features"], attrs["bias"])
    if kind is nn.Conv2d:
        return nn.Conv2d(**attrs)
    if base == "LPPool2d":          # sinabs' SumPool2d: a norm-1 LPPool2d
        module = type("SumPool2d", (nn.LPPool2d,),
                      {"__module__": leaf["class"].rpartition(".")[0]})(1, **attrs)
        return module
    return kind(**attrs)


def replay(record: dict) -> nn.Module:
    """The network ``record`` describes, its state dict loaded strictly, in eval mode."""
    root = nn.Module()
    state = record["state_dict"]
    for leaf in record["modules"]:
        module = _neuron(leaf, state) if leaf["neuron"] else _layer(leaf)
        parent = root
        *containers, last = leaf["path"].split(".")
        for part in containers:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.add_module(last, module)
    root.load_state_dict(state, strict=True)
    return root.eval()


def assert_same_spikes(ours: list, theirs: list) -> None:
    """Every layer's spikes [T, batch, n] equal the framework's, each layer spiking (a test
    whose layers never fire would compare nothing); a mismatch names layer, timestep, sample
    and neuron."""
    assert all(0.02 < float(s.mean()) < 0.95 for s in theirs), [float(s.mean()) for s in theirs]
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        bad = torch.nonzero(a != b)
        assert bad.numel() == 0, f"layer {k}: timestep, sample, neuron {bad[0].tolist()}"
