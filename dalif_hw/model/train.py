"""Training DA-LIF networks: the scikit-learn digits task, checkpoints, evaluation.

``train/digits.py`` is the command line (through :mod:`dalif_hw.digits`, which also packs the
model and measures its integer twin); this module trains the float model.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from ..core.config import DEFAULT_DB, DEFAULT_VB, DEFAULT_WB
from ..core.encoding import encode
from .convnet import DALIFConvNet
from .mlp import DALIFMLP
from .qat import QAT

__all__ = ["DigitsSplit", "load_digits_split", "TrainOptions", "fit_digits", "evaluate",
           "build_model", "CONV_LAYERS", "RESNET_LAYERS", "MODELS"]


@dataclasses.dataclass(frozen=True)
class DigitsSplit:
    """scikit-learn's 8x8 digits, stratified 80/20 with ``random_state=0``."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def load_digits_split() -> DigitsSplit:
    """The held-out split every part of the project uses (it ships with scikit-learn)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    tx, vx, ty, vy = train_test_split(digits.data, digits.target, test_size=0.2,
                                      stratify=digits.target, random_state=0)
    return DigitsSplit(tx, ty, vx, vy)


def held_out_stimulus(network, samples: int | None = None, name: str = "the network"):
    """The held-out digits as ``network`` takes them: ``(spikes [S, T, M], labels, split)``,
    the first ``samples`` only if given.

    Raises
    ------
    ConfigError
        If ``network`` is no digits classifier (no readout, spike input, or not 64 inputs).
    """
    from ..core.config import ConfigError

    if not network.has_readout or network.encoding["kind"] == "spikes":
        raise ConfigError(f"{name} is no digits classifier (it "
                          f"{'takes spikes' if network.has_readout else 'has no readout'}): "
                          f"give its input with --stimulus s.npz")
    data = load_digits_split()
    if network.inputs != data.test_x.shape[1]:
        raise ConfigError(f"{name} has {network.inputs} inputs, the digits have "
                          f"{data.test_x.shape[1]} pixels")
    return encode(data.test_x[:samples], network.encoding), data.test_y[:samples], data


#: The convolutional digits network (``--model conv``): 8x8x1 -> conv 3x3, 16 channels,
#: padding 1 -> sum pool 2 -> dense 128 -> readout 10.
CONV_LAYERS = ({"kind": "conv2d", "channels": 16, "kernel": 3, "padding": 1},
               {"kind": "sumpool", "window": 2},
               {"kind": "dense", "features": 128})
#: The residual digits network (``--model resnet``): a 3x3 stem of 16 channels, two SEW
#: residual blocks (conv, DA-LIF, conv, DA-LIF, plus the shortcut through an add), sum pool 2,
#: dense 64, readout 10. (8 channels reached 0.972-0.981 over seeds 0-3, below the
#: convolutional network's 0.9833; 16 reach 0.975-0.989 over seeds 0-2, 0.9889 at seed 0.)
RESNET_LAYERS = ({"kind": "conv2d", "channels": 16, "kernel": 3, "padding": 1},
                 {"kind": "residual", "channels": 16},
                 {"kind": "residual", "channels": 16},
                 {"kind": "sumpool", "window": 2},
                 {"kind": "dense", "features": 64})
#: Model kinds of :class:`TrainOptions`.
MODELS = ("mlp", "conv", "resnet")


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """Training settings (defaults: the digits network, 64-256-10 at T = 2; ``model="conv"``:
    ``layers`` on the 8x8 image (default :data:`CONV_LAYERS`; ``model="resnet"``:
    :data:`RESNET_LAYERS`), then a readout of ``sizes[-1]`` classes)."""

    model: str = "mlp"
    qat: bool = False
    layers: tuple | None = None
    sizes: tuple = (64, 256, 10)
    T: int = 2
    epochs: int = 40
    batch: int = 32
    lr: float = 1e-2
    label_smoothing: float = 0.1
    seed: int = 0
    threshold: float = 1.0
    reset: str = "hard"
    surrogate: str = "arctan"
    surrogate_width: float = 1.0
    WB: int = DEFAULT_WB
    DB: int = DEFAULT_DB
    VB: int = DEFAULT_VB

    def neuron(self) -> dict:
        return {"threshold": self.threshold, "reset": self.reset, "surrogate": self.surrogate,
                "surrogate_width": self.surrogate_width}

    def encoding(self) -> dict:
        return {"kind": "thermometer", "T": self.T, "max_value": 16.0}

    def architecture(self) -> dict:
        """What a checkpoint needs to rebuild the model (:func:`build_model`)."""
        qat = {"qat": {"WB": self.WB, "DB": self.DB, "VB": self.VB}} if self.qat else {}
        if self.model == "mlp":
            return {"model": "mlp", "sizes": list(self.sizes), **qat}
        layers = self.layers or (RESNET_LAYERS if self.model == "resnet" else CONV_LAYERS)
        return {"model": "conv", "in_shape": [1, 8, 8], "layers": [dict(x) for x in layers],
                "classes": self.sizes[-1], **qat}

    def build(self) -> DALIFMLP | DALIFConvNet:
        return build_model(self.architecture(), self.neuron())

    def memory_estimate(self, samples: int = 360) -> int:
        """Bytes training takes at least: float32 parameters with their gradients and two
        Adam moments, and the activations of the largest batch (the held-out ``samples``
        at evaluation, a few tensors per layer and timestep)."""
        if self.model == "mlp":
            parameters = sum((m + 3) * n for m, n in zip(self.sizes, self.sizes[1:]))
            units = sum(self.sizes)
        else:
            model = self.build()
            parameters = sum(p.numel() for p in model.parameters())
            units = 64 + sum(h.shape[-1] for h in model.hidden_spikes(torch.zeros(1, 1, 64)))
        activations = units * self.T * max(samples, self.batch) * 8
        return 4 * (4 * parameters + activations)


def build_model(architecture: dict, neuron: dict) -> DALIFMLP | DALIFConvNet:
    """The model an :meth:`TrainOptions.architecture` (or a checkpoint) describes."""
    qat = QAT(**architecture["qat"]) if architecture.get("qat") else None
    if architecture["model"] == "mlp":
        return DALIFMLP(architecture["sizes"], qat=qat, **neuron)
    if architecture["model"] == "conv":
        return DALIFConvNet(architecture["in_shape"], architecture["layers"],
                            architecture["classes"], qat=qat, **neuron)
    raise ValueError(f"model must be one of {', '.join(MODELS)}, not "
                     f"{architecture['model']!r}")


def _spikes(x: np.ndarray, encoding: dict) -> torch.Tensor:
    """Encoded inputs as the model takes them: float [T, batch, inputs]."""
    return torch.from_numpy(encode(x, encoding).transpose(1, 0, 2).astype(np.float32))


def evaluate(model: DALIFMLP, x: np.ndarray, y: np.ndarray, encoding: dict) -> float:
    """Float accuracy of ``model`` on ``x`` (pixels) against ``y``."""
    with torch.no_grad():
        return float((model(_spikes(x, encoding)).argmax(1).numpy() == y).mean())


def fit_digits(options: TrainOptions = TrainOptions(), progress: bool = True
               ) -> tuple[DALIFMLP | DALIFConvNet, dict]:
    """Train on the digits split; return the model (in eval mode) and its metrics:
    ``float_acc`` on the held-out split, ``seconds``. Packing it and the integer twin's
    accuracy are later stages' (:func:`dalif_hw.digits.train_digits` runs them all)."""
    from tqdm import tqdm

    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    data = load_digits_split()
    encoding = options.encoding()
    model = options.build()
    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, options.epochs)
    train_spikes = _spikes(data.train_x, encoding)
    train_y = torch.from_numpy(data.train_y)
    start = time.perf_counter()
    bar = tqdm(range(options.epochs), desc="training", unit="epoch", disable=not progress)
    for _ in bar:
        model.train()
        order = torch.from_numpy(rng.permutation(len(train_y)))
        total = 0.0
        for k in range(0, len(order), options.batch):
            idx = order[k:k + options.batch]
            loss = torch.nn.functional.cross_entropy(
                model(train_spikes[:, idx]), train_y[idx],
                label_smoothing=options.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        bar.set_postfix(loss=f"{total / len(train_y):.3f}")
    model.eval()
    metrics = {"float_acc": evaluate(model, data.test_x, data.test_y, encoding),
               "seconds": time.perf_counter() - start}
    return model, metrics
