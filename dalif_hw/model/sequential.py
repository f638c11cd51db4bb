"""A chain of DA-LIF layers with any ending: what a network imported from NIR becomes.

``DALIFSequential(in_shape, body, readout=None, integrate=None)``: the ``body`` is a list of
:class:`DALIFLinear`, :class:`DALIFConv2d`, :class:`SpikePool2d` and :class:`Flatten`; the
output per timestep is the body's spikes (no ``readout``), the readout's current ``W x + b``
(an ``nn.Linear``), or, with ``integrate`` (a gain per output), its running sum
``sum over t' <= t of gain * (W x + b)``. The hardware's readout sums over the sample, so the
last timestep's integral and the sum of the currents rank the classes alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .layers import DALIFConv2d, DALIFLinear, Flatten, SpikePool2d, spiking_outputs

__all__ = ["DALIFSequential"]

BODY = (DALIFLinear, DALIFConv2d, SpikePool2d, Flatten)


class DALIFSequential(nn.Module):
    """Parameters
    ----------
    in_shape : sequence of int
        The shape of one sample's input per timestep, ``(M,)`` or ``(C, H, W)``.
    body : sequence of modules
        DA-LIF layers, pooling stages, flattening (:data:`BODY`), in order.
    readout : nn.Linear, optional
        A final non-spiking layer.
    integrate : tensor [outputs], optional
        With a readout: output the running sum of ``integrate * current`` (NIR's ``I``).
    """

    def __init__(self, in_shape: Sequence[int], body: Sequence[nn.Module],
                 readout: nn.Linear | None = None, integrate: torch.Tensor | None = None):
        super().__init__()
        self.in_shape = tuple(int(n) for n in in_shape)
        for k, module in enumerate(body):
            if not isinstance(module, BODY):
                raise TypeError(f"body[{k}] must be one of "
                                f"{', '.join(b.__name__ for b in BODY)}, not {module!r}")
        if integrate is not None and readout is None:
            raise ValueError("integrate needs a readout")
        self.body = nn.ModuleList(body)
        self.readout = readout
        if integrate is not None:
            self.register_buffer("integrate", torch.as_tensor(integrate, dtype=torch.float32))
        else:
            self.integrate = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [T, batch, *in_shape] -> the last node's output [T, batch, *out_shape]."""
        if tuple(x.shape[2:]) != self.in_shape:
            raise ValueError(f"input must have shape [T, batch, "
                             f"{', '.join(map(str, self.in_shape))}], not {list(x.shape)}")
        for module in self.body:
            x = module(x)
        if self.readout is None:
            return x
        current = self.readout(x)
        return current if self.integrate is None else torch.cumsum(self.integrate * current, 0)

    def hidden_spikes(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every spiking layer (conv2d, dense), flat [T, batch, n] each."""
        return spiking_outputs(self.body, x)
