"""Networks as graphs (SPEC 7): what a network imported from NIR becomes, and the one view of
every model that packing and the NIR export walk.

``DALIFGraph(in_shape, body, inputs=None, readout=None, integrate=None)``: the ``body`` is a
list of :class:`DALIFLinear`, :class:`DALIFConv2d`, :class:`SpikePool2d`, :class:`Flatten`
and :class:`SpikeAdd`, in an order where every module comes after its inputs; ``inputs[k]``
names module k's inputs by their index in the body (:data:`INPUT` is the network's input;
``None``: a chain, each module taking the one before). A dense or conv2d layer of several
inputs takes them concatenated (flat, or along the channels at equal H x W): the currents of
one synapse per input summed before the neurons (NIR's several synapses into one neuron
node). A :class:`SpikeAdd` adds its inputs' spikes (SEW-ResNet's ADD, NIR's several spike
streams into one node). The output per timestep is the last module's spikes (no
``readout``), the readout's current ``W x + b`` (an ``nn.Linear``), or, with ``integrate``
(a gain per output), its running sum ``sum over t' <= t of gain * (W x + b)``. The hardware's
readout sums over the sample, so the last timestep's integral and the sum of the currents
rank the classes alike.

:func:`graph_of` gives the same view (:class:`GraphView`) of a fully connected, a
convolutional (residual blocks unfolded) or a graph model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core.conv import ConvShape
from .layers import DALIFConv2d, DALIFLinear, Flatten, SEWBlock, SpikeAdd, SpikePool2d

__all__ = ["DALIFGraph", "GraphView", "INPUT", "graph_of", "BODY"]

#: The index that names the network's input among a module's inputs.
INPUT = -1
BODY = (DALIFLinear, DALIFConv2d, SpikePool2d, Flatten, SpikeAdd)
SPIKING = (DALIFLinear, DALIFConv2d)


def out_shape(module: nn.Module, shapes: Sequence[tuple]) -> tuple:
    """The output shape of ``module`` given its inputs' shapes (checked: ValueError naming
    the mismatch)."""
    if isinstance(module, SpikeAdd):
        if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
            raise ValueError(f"an add takes two or more inputs of one shape, not "
                             f"{[list(s) for s in shapes]}")
        return shapes[0]
    if isinstance(module, DALIFLinear):
        n = sum(int(np.prod(s)) for s in shapes)
        if n != module.linear.in_features:
            raise ValueError(f"a dense layer of {module.linear.in_features} inputs gets "
                             f"{[list(s) for s in shapes]} ({n})")
        return (module.linear.out_features,)
    if isinstance(module, DALIFConv2d):
        conv = module.conv
        if any(len(s) != 3 or s[1:] != shapes[0][1:] for s in shapes):
            raise ValueError(f"a convolution's inputs must be [C, H, W] of one H x W, not "
                             f"{[list(s) for s in shapes]}")
        channels = sum(s[0] for s in shapes)
        if channels != conv.in_channels:
            raise ValueError(f"a convolution of {conv.in_channels} input channels gets "
                             f"{channels}")
        return ConvShape((channels, *shapes[0][1:]), conv.out_channels, conv.kernel_size,
                         conv.stride, conv.padding, module.current_pool).out_shape
    if len(shapes) != 1:
        raise ValueError(f"a {type(module).__name__} takes one input, not {len(shapes)}")
    if isinstance(module, SpikePool2d):
        return module.shape(shapes[0]).out_shape
    return (int(np.prod(shapes[0])),)  # Flatten


def combine(module: nn.Module, xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Module ``module`` applied to its inputs' outputs ``xs`` (each [T, batch, ...])."""
    if isinstance(module, SpikeAdd):
        return module(*xs)
    if len(xs) > 1:
        xs = [torch.cat([x.flatten(2) for x in xs], -1) if isinstance(module, DALIFLinear)
              else torch.cat(list(xs), 2)]
    return module(xs[0])


@dataclass(frozen=True)
class GraphView:
    """A model as a graph: ``body[k]`` takes the outputs of ``inputs[k]`` (body indices,
    :data:`INPUT` the network's input); ``shapes[k]`` is its output shape; the readout, if
    any, takes the last module's output."""

    in_shape: tuple
    body: tuple
    inputs: tuple
    shapes: tuple
    readout: nn.Linear | None
    integrate: torch.Tensor | None

    def shape_of(self, index: int) -> tuple:
        return self.in_shape if index == INPUT else self.shapes[index]

    @property
    def spiking(self) -> list[int]:
        return [k for k, m in enumerate(self.body) if isinstance(m, SPIKING)]

    def outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every module's output for ``x`` [T, batch, *in_shape]."""
        if tuple(x.shape[2:]) != self.in_shape:
            raise ValueError(f"input must have shape [T, batch, "
                             f"{', '.join(map(str, self.in_shape))}], not {list(x.shape)}")
        outs: list[torch.Tensor] = []
        for module, given in zip(self.body, self.inputs):
            outs.append(combine(module, [x if i == INPUT else outs[i] for i in given]))
        return outs

    def hidden_spikes(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every spiking layer (conv2d, dense), flat [T, batch, n] each."""
        return [y.flatten(2) for module, y in zip(self.body, self.outputs(x))
                if isinstance(module, SPIKING)]


def _view(in_shape, body, inputs, readout, integrate) -> GraphView:
    shapes = []
    for k, (module, given) in enumerate(zip(body, inputs)):
        if not isinstance(module, BODY):
            raise TypeError(f"body[{k}] must be one of "
                            f"{', '.join(b.__name__ for b in BODY)}, not {module!r}")
        if not given or any(not INPUT <= i < k for i in given) or len(set(given)) != len(given):
            raise ValueError(f"body[{k}]'s inputs must be distinct earlier modules or "
                             f"{INPUT} (the input), not {list(given)}")
        try:
            shapes.append(out_shape(module, [in_shape if i == INPUT else shapes[i]
                                             for i in given]))
        except ValueError as exc:
            raise ValueError(f"body[{k}] ({type(module).__name__}): {exc}") from None
    used = {i for given in inputs for i in given}
    unused = [k for k in range(len(body) - 1) if k not in used]
    if unused:
        raise ValueError(f"body[{unused[0]}] ({type(body[unused[0]]).__name__}) feeds "
                         "nothing: only the last module is the output")
    return GraphView(tuple(in_shape), tuple(body), tuple(tuple(g) for g in inputs),
                     tuple(shapes), readout, integrate)


def graph_of(model: nn.Module) -> GraphView:
    """The graph of a :class:`DALIFGraph`, :class:`~dalif_hw.model.DALIFConvNet` (a residual
    block as conv, conv and the add of the block's input and the second conv's spikes) or
    :class:`~dalif_hw.model.DALIFMLP`."""
    if isinstance(model, DALIFGraph):
        return model.view
    if hasattr(model, "hidden"):  # DALIFMLP
        modules, in_shape = list(model.hidden), (model.sizes[0],)
    else:
        modules, in_shape = list(model.body), model.in_shape
    body, inputs, last = [], [], INPUT
    for module in modules:
        if isinstance(module, SEWBlock):
            shortcut = last
            for conv in module.convs:
                body.append(conv)
                inputs.append((last,))
                last = len(body) - 1
            body.append(SpikeAdd())
            inputs.append((shortcut, last))
        else:
            body.append(module)
            inputs.append((last,))
        last = len(body) - 1
    return _view(in_shape, body, inputs, model.readout, getattr(model, "integrate", None))


class DALIFGraph(nn.Module):
    """Parameters
    ----------
    in_shape : sequence of int
        The shape of one sample's input per timestep, ``(M,)`` or ``(C, H, W)``.
    body : sequence of modules
        DA-LIF layers, pooling stages, flattening, adds (:data:`BODY`), each after its inputs.
    inputs : sequence of sequence of int, optional
        Per module, the body indices of its inputs (:data:`INPUT`: the network's input);
        default a chain.
    readout : nn.Linear, optional
        A final non-spiking layer on the last module's output.
    integrate : tensor [outputs], optional
        With a readout: output the running sum of ``integrate * current`` (NIR's ``I``).

    Raises
    ------
    ValueError, TypeError
        For a module of another type, inputs that are not earlier modules, shapes that do
        not fit, or a module other than the last that feeds nothing.
    """

    def __init__(self, in_shape: Sequence[int], body: Sequence[nn.Module],
                 inputs: Sequence[Sequence[int]] | None = None,
                 readout: nn.Linear | None = None, integrate: torch.Tensor | None = None):
        super().__init__()
        self.in_shape = tuple(int(n) for n in in_shape)
        if inputs is None:
            inputs = [(k - 1,) for k in range(len(body))]
        if len(inputs) != len(body):
            raise ValueError(f"inputs needs one entry per module ({len(body)}), not "
                             f"{len(inputs)}")
        if integrate is not None and readout is None:
            raise ValueError("integrate needs a readout")
        self.body = nn.ModuleList(body)
        self.readout = readout
        if integrate is not None:
            self.register_buffer("integrate", torch.as_tensor(integrate, dtype=torch.float32))
        else:
            self.integrate = None
        self.inputs = [tuple(int(i) for i in given) for given in inputs]
        _view(self.in_shape, body, self.inputs, readout, self.integrate)

    @property
    def view(self) -> GraphView:
        return _view(self.in_shape, list(self.body), self.inputs, self.readout, self.integrate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [T, batch, *in_shape] -> the last module's output [T, batch, *out_shape]."""
        y = self.view.outputs(x)[-1] if len(self.body) else x
        if self.readout is None:
            return y
        current = self.readout(y)
        return current if self.integrate is None else torch.cumsum(self.integrate * current, 0)

    def hidden_spikes(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every spiking layer (conv2d, dense), flat [T, batch, n] each."""
        return self.view.hidden_spikes(x)
