"""A convolutional DA-LIF network: conv2d and pooling stages, dense layers, a readout.

Built from a list of layer descriptions, the names those of ``network.yaml`` (SPEC 6)::

    [{"kind": "conv2d", "channels": 16, "kernel": 3, "padding": 1},
     {"kind": "sumpool", "window": 2},
     {"kind": "dense", "features": 64}]

(``{"kind": "residual", "channels": 16}`` is a SEW residual block, :class:`SEWBlock`), then
a linear readout averaged over time (as :class:`~dalif_hw.model.mlp.DALIFMLP`). The
input is flat spikes [T, batch, C H W], as the hardware takes them. Convolutions default to
per-channel decays (``conv_granularity``), dense layers to per-neuron ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .graph import graph_of
from .layers import DALIFConv2d, DALIFLinear, Flatten, SEWBlock, SpikePool2d
from .qat import readout_logits

__all__ = ["DALIFConvNet", "LAYER_KINDS"]

#: Layer kinds of a description and their keys (required, then optional with defaults).
LAYER_KINDS = {
    "conv2d": (("channels", "kernel"), {"stride": 1, "padding": 0}),
    "sumpool": (("window",), {}),
    "avgpool": (("window",), {}),
    "maxpool": (("window",), {}),
    "dense": (("features",), {}),
    # A SEW residual block (SEWBlock): two convolutions keeping (C, H, W), plus the shortcut.
    "residual": (("channels",), {"kernel": 3}),
}


class DALIFConvNet(nn.Module):
    """Parameters
    ----------
    in_shape : (C, H, W)
    layers : sequence of dict
        Layer descriptions (see the module docstring and :data:`LAYER_KINDS`).
    classes : int
    conv_granularity : str
        Decays of the convolutions: ``"channel"`` (default), ``"neuron"`` or ``"layer"``.
    **neuron
        Passed to every :class:`~dalif_hw.model.neuron.DALIFNeuron`.
    """

    def __init__(self, in_shape: Sequence[int], layers: Sequence[dict], classes: int,
                 conv_granularity: str = "channel", qat=None, **neuron):
        super().__init__()
        self.qat = qat
        self.in_shape = tuple(int(v) for v in in_shape)
        self.layers_spec = [dict(layer) for layer in layers]
        self.classes = classes
        self.conv_granularity = conv_granularity
        modules, shape = [], self.in_shape
        for k, layer in enumerate(self.layers_spec):
            kind = layer.get("kind")
            if kind not in LAYER_KINDS:
                raise ValueError(f"layer {k}: kind must be one of {', '.join(LAYER_KINDS)}, "
                                 f"not {kind!r}")
            required, optional = LAYER_KINDS[kind]
            unknown = set(layer) - {"kind", *required, *optional}
            missing = [key for key in required if key not in layer]
            if unknown or missing:
                raise ValueError(f"layer {k} ({kind}): "
                                 + (f"missing {', '.join(missing)}" if missing else
                                    f"unknown keys {', '.join(sorted(unknown))}"))
            spec = {**optional, **layer}
            if kind == "conv2d":
                if len(shape) != 3:
                    raise ValueError(f"layer {k}: a convolution needs a [C, H, W] input")
                module = DALIFConv2d(shape[0], spec["channels"], spec["kernel"],
                                     stride=spec["stride"], padding=spec["padding"],
                                     input_size=shape[1:], granularity=conv_granularity,
                                     qat=qat, **neuron)
                shape = module.neuron.shape  # (K, HO, WO): input_size was given
            elif kind == "residual":
                if len(shape) != 3 or shape[0] != spec["channels"]:
                    raise ValueError(f"layer {k}: a residual block keeps its input's shape: "
                                     f"it needs a [{spec['channels']}, H, W] input, not "
                                     f"{list(shape)}")
                module = SEWBlock(spec["channels"], spec["kernel"], input_size=shape[1:],
                                  granularity=conv_granularity, qat=qat, **neuron)
            elif kind.endswith("pool"):
                if len(shape) != 3:
                    raise ValueError(f"layer {k}: pooling needs a [C, H, W] input")
                if kind == "avgpool" and qat is not None:
                    raise ValueError(f"layer {k}: quantization-aware training takes sum or "
                                     "max pooling (an average is a sum with 1 / window "
                                     "folded into the next layer's weights)")
                module = SpikePool2d(kind[:-len("pool")], spec["window"])
                shape = module.shape(shape).out_shape
            else:
                if len(shape) == 3:
                    modules.append(Flatten())
                    shape = (shape[0] * shape[1] * shape[2],)
                module = DALIFLinear(shape[0], spec["features"], qat=qat, **neuron)
                shape = (spec["features"],)
            modules.append(module)
        if len(shape) == 3:
            modules.append(Flatten())
            shape = (shape[0] * shape[1] * shape[2],)
        self.body = nn.ModuleList(modules)
        self.readout = nn.Linear(shape[0], classes)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """``spikes`` [T, batch, C H W] -> logits [batch, classes] (mean over time)."""
        x = spikes.reshape(*spikes.shape[:2], *self.in_shape)
        for module in self.body:
            x = module(x)
        return readout_logits(self.readout, x, self.qat)

    def hidden_spikes(self, spikes: torch.Tensor) -> list[torch.Tensor]:
        """The output of every spiking layer (conv2d, dense), flat [T, batch, n] each."""
        return graph_of(self).hidden_spikes(spikes.reshape(*spikes.shape[:2], *self.in_shape))
