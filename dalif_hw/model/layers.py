"""Layers that pair a synapse (``nn.Linear``, ``nn.Conv2d``) with DA-LIF neurons.

Inputs and outputs are multi-step: [T, batch, ...]. The synapse is applied to every timestep
at once (time folded into the batch), then the neurons run through time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..core.conv import PoolShape
from .neuron import DALIFNeuron

__all__ = ["DALIFLinear", "DALIFConv2d", "SpikePool2d", "SEWBlock", "SpikeAdd", "Flatten",
           "POOLS"]

#: Pooling of spikes: ``sum`` (a window's spikes added: what the hardware's sum pool sends
#: on), ``avg`` (their mean: sum pooling with 1 / window folded into the next layer when
#: packing) and ``max`` (OR).
POOLS = ("sum", "avg", "max")


def _per_step(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    T, batch = x.shape[:2]
    y = module(x.flatten(0, 1))
    return y.reshape(T, batch, *y.shape[1:])


class DALIFLinear(nn.Module):
    """``nn.Linear`` followed by DA-LIF neurons: [T, batch, in] -> spikes [T, batch, out].

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Whether the linear layer has a bias (added to the current every timestep).
    **neuron
        Passed to :class:`DALIFNeuron` (decays, threshold, reset, surrogate, granularity).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, qat=None,
                 **neuron):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.neuron = DALIFNeuron((out_features,), **neuron)
        self.qat = qat

    def current(self, x: torch.Tensor) -> torch.Tensor:
        """The input current X of every timestep, [T, batch, out]."""
        return _per_step(self.linear, x)

    def forward(self, x: torch.Tensor, return_membrane: bool = False):
        if self.qat is None:
            return self.neuron(self.current(x), return_membrane=return_membrane)
        from .qat import layer_scale_t, quantized

        s = layer_scale_t(self.linear.weight, self.qat.WB)
        w = quantized(self.linear.weight, s, self.qat.WB)
        b = quantized(self.linear.bias, s, self.qat.VB)
        current = x.double() @ w.T + (0 if b is None else b)
        return self.neuron(current, return_membrane, qat=self.qat, unit=s)


class DALIFConv2d(nn.Module):
    """``nn.Conv2d`` followed by DA-LIF neurons: [T, batch, C, H, W] -> spikes.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding : as for ``nn.Conv2d``
    input_size : (H, W), optional
        Spatial size of the input; needed for per-neuron decays (the default granularity),
        whose shape is the output's (C, H', W').
    current_pool : (PKH, PKW), optional
        Max pooling of the currents before the neurons (window = stride, floor mode; SPEC 6),
        as ``Conv2d -> MaxPool2d -> neuron``: the neurons are the pooled positions.
    bias : bool
    **neuron
        Passed to :class:`DALIFNeuron`.

    Raises
    ------
    ValueError
        If per-neuron decays are asked for without ``input_size``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 input_size: Sequence[int] | None = None, bias: bool = True, qat=None,
                 current_pool: Sequence[int] | None = None, **neuron):
        super().__init__()
        self.qat = qat
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=padding, bias=bias)
        self.current_pool = None if current_pool is None else \
            tuple(int(v) for v in nn.modules.utils._pair(current_pool))
        if input_size is not None:
            with torch.no_grad():
                shape = tuple(self._pooled(
                    self.conv(torch.zeros(1, in_channels, *input_size))).shape[1:])
        elif neuron.get("granularity", "neuron") == "neuron":
            raise ValueError("Per-neuron decays of a convolution need input_size=(H, W) to know "
                             "the number of neurons; or use granularity='channel' or 'layer'")
        else:
            shape = (out_channels,)
        self.neuron = DALIFNeuron(shape, **neuron)

    def _pooled(self, current: torch.Tensor) -> torch.Tensor:
        """``current`` [batch, C, HO, WO] max-pooled by ``current_pool`` (or as it is)."""
        if self.current_pool is None:
            return current
        return nn.functional.max_pool2d(current, self.current_pool, self.current_pool)

    def current(self, x: torch.Tensor) -> torch.Tensor:
        """The input current X of every timestep, [T, batch, C, H', W'] (pooled where
        ``current_pool`` says)."""
        return _per_step(lambda v: self._pooled(self.conv(v)), x)

    def forward(self, x: torch.Tensor, return_membrane: bool = False):
        if self.qat is None:
            return self.neuron(self.current(x), return_membrane=return_membrane)
        from .qat import layer_scale_t, quantized

        s = layer_scale_t(self.conv.weight, self.qat.WB)
        w = quantized(self.conv.weight, s, self.qat.WB)
        b = quantized(self.conv.bias, s, self.qat.VB)
        conv = self.conv
        current = _per_step(lambda v: self._pooled(nn.functional.conv2d(
            v, w, None if b is None else b, conv.stride, conv.padding)), x.double())
        return self.neuron(current, return_membrane, qat=self.qat, unit=s)

    def extra_repr(self) -> str:
        return "" if self.current_pool is None else f"current_pool={self.current_pool}"


class SpikePool2d(nn.Module):
    """Pooling of spikes, window = stride, no padding, floor mode (SPEC 6):
    [T, batch, C, H, W] -> [T, batch, C, H // PKH, W // PKW].

    Parameters
    ----------
    kind : str
        One of :data:`POOLS`.
    window : int or (PKH, PKW)
    """

    def __init__(self, kind: str, window):
        super().__init__()
        if kind not in POOLS:
            raise ValueError(f"Pooling kind must be one of {', '.join(POOLS)}, not {kind!r}")
        self.kind = kind
        self.window = (window, window) if isinstance(window, int) else tuple(window)
        if len(self.window) != 2 or min(self.window) < 1:
            raise ValueError(f"Pooling window must be positive, not {window!r}")

    def shape(self, in_shape) -> PoolShape:
        """The hardware's pooling stage for an input (C, H, W): ``maxpool``, or ``sumpool``
        for sum and average (the average's 1 / window is folded into the next layer when
        packing). Checked (SPEC 6): raises ConfigError for a window larger than the input."""
        return PoolShape("maxpool" if self.kind == "max" else "sumpool", in_shape, self.window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = nn.functional.max_pool2d if self.kind == "max" else nn.functional.avg_pool2d
        y = _per_step(lambda v: pool(v, self.window, self.window), x)
        return y * (self.window[0] * self.window[1]) if self.kind == "sum" else y

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, window={self.window}"


class SEWBlock(nn.Module):
    """A spike-element-wise residual block (SEW-ResNet, ADD): two convolutions of DA-LIF
    neurons, each keeping the shape (C, H, W) (stride 1, padding kernel // 2), and the
    block's input added to the second one's spikes: [T, batch, C, H, W] -> counts in {0, 1,
    2}, which the next layer takes as counted beats (SPEC 7's add).

    Parameters
    ----------
    channels : int
    kernel_size : int
        Odd.
    input_size : (H, W)
    **options
        Passed to both :class:`DALIFConv2d` (``granularity``, ``qat``, the neuron's).
    """

    def __init__(self, channels: int, kernel_size: int, input_size: Sequence[int], **options):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"a residual block's kernel must be odd (its convolutions keep "
                             f"the shape), not {kernel_size}")
        self.convs = nn.ModuleList(
            DALIFConv2d(channels, channels, kernel_size, padding=kernel_size // 2,
                        input_size=input_size, **options) for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.convs[1](self.convs[0](x))


class SpikeAdd(nn.Module):
    """The spikes of two or more inputs of one shape added (SEW-ResNet's ADD, SPEC 7's add):
    counts the next layer takes as counted beats."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.stack(xs).sum(0)


class Flatten(nn.Module):
    """[T, batch, C, H, W] -> [T, batch, C H W], channel-major (the hardware's flat order)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)
