"""A fully connected DA-LIF network with a non-spiking readout.

Hidden layers are :class:`DALIFLinear`; the readout is an ``nn.Linear`` whose output is
averaged over the T timesteps (the mean of the classifier over time, as in the DA-LIF paper).
The hardware sums instead of averaging (docs/network.md), which has the same argmax.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .layers import DALIFLinear
from .qat import readout_logits

__all__ = ["DALIFMLP"]


class DALIFMLP(nn.Module):
    """``sizes = [inputs, hidden..., classes]``: DA-LIF hidden layers, linear readout.

    Parameters
    ----------
    sizes : sequence of int
        At least ``[inputs, hidden, classes]``.
    **neuron
        Passed to every hidden layer's :class:`DALIFNeuron`.
    """

    def __init__(self, sizes: Sequence[int], qat=None, **neuron):
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 3 or any(not isinstance(n, int) or n < 1 for n in sizes):
            raise ValueError(f"sizes must be at least [inputs, hidden, classes] of positive "
                             f"integers, not {sizes!r}")
        self.sizes = sizes
        self.qat = qat
        self.hidden = nn.ModuleList(DALIFLinear(a, b, qat=qat, **neuron)
                                    for a, b in zip(sizes[:-2], sizes[1:-1]))
        self.readout = nn.Linear(sizes[-2], sizes[-1])

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """``spikes`` [T, batch, inputs] -> logits [batch, classes] (mean over time)."""
        x = spikes
        for layer in self.hidden:
            x = layer(x)
        return readout_logits(self.readout, x, self.qat)

    def hidden_spikes(self, spikes: torch.Tensor) -> list[torch.Tensor]:
        """The spikes of every hidden layer, [T, batch, n] each."""
        out, x = [], spikes
        for layer in self.hidden:
            x = layer(x)
            out.append(x)
        return out
