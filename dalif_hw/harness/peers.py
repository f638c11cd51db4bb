"""Networks from the SNN frameworks dalif-hw takes models from, for the tests and the docs:
built, simulated and exported to NIR by the frameworks themselves (snnTorch here; the
SpikingJelly fixtures come from ``tests/fixtures/nir/make_spikingjelly.py``).

snnTorch's ``Leaky`` with ``reset_mechanism="zero"`` is, step by step: reset to 0 where the
last step fired, ``mem = beta mem + input``, fire where ``mem > threshold``. Its NIR export
needs per-neuron ``beta`` and ``threshold`` tensors, and ``ignore_dims=[0]`` (the batch
dimension) with nirtorch 2.

snnTorch's ``export_to_nir`` (nirtorch's tracer of module calls) loses the ``+`` of a
residual block: the graph it builds has no edge into the node after the add and fails NIR's
type inference. nirtorch's ``torch_to_nir`` (torch.fx) keeps it as NIR says (a node fed by
several edges sums them); :func:`snntorch_export_graph` exports with it and snnTorch's own
module converter.
"""

from __future__ import annotations

__all__ = ["snntorch_dense", "snntorch_conv", "snntorch_residual", "snntorch_tutorial_mlp",
           "snntorch_tutorial_csnn", "snntorch_run", "snntorch_export", "snntorch_export_graph"]


def _leaky(shape, generator, output=False):
    import snntorch as snn
    import torch

    beta = torch.rand(shape, generator=generator) * 0.5 + 0.4
    threshold = torch.rand(shape, generator=generator) * 0.5 + 0.5
    return snn.Leaky(beta=beta, threshold=threshold, reset_mechanism="zero", init_hidden=True,
                     learn_beta=True, learn_threshold=True, output=output)


def snntorch_dense(sizes=(20, 40, 10), seed: int = 0, gain: float = 4.0,
                   readout: bool = False):
    """``Linear -> Leaky`` per layer of ``sizes`` (with ``readout``, the last ``Linear`` has
    no ``Leaky``: its current is the output); weights scaled by ``gain`` so that the layers
    spike on sparse inputs. Returns ``(net, input shape)``."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    modules = []
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        linear = nn.Linear(a, b)
        with torch.no_grad():
            linear.weight.mul_(gain)
        last = k == len(sizes) - 2
        modules += [linear] if last and readout else [linear, _leaky((b,), g, output=last)]
    return nn.Sequential(*modules), (sizes[0],)


def snntorch_conv(in_shape=(1, 8, 8), channels: int = 4, outputs: int = 5, seed: int = 0):
    """``Conv2d -> Leaky -> AvgPool2d(2) -> Flatten -> Linear -> Leaky``. Returns ``(net,
    input shape)``."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    C, H, W = in_shape
    conv = nn.Conv2d(C, channels, 3, padding=1)
    linear = nn.Linear(channels * (H // 2) * (W // 2), outputs)
    with torch.no_grad():
        conv.weight.mul_(3.0)
        linear.weight.mul_(4.0)
    net = nn.Sequential(conv, _leaky((channels, H, W), g), nn.AvgPool2d(2), nn.Flatten(),
                        linear, _leaky((outputs,), g, output=True))
    return net, tuple(in_shape)


def snntorch_residual(add: str = "spike", in_shape=(1, 6, 6), channels: int = 4,
                      outputs: int = 5, seed: int = 0):
    """A residual block as snnTorch users write one (a module whose ``forward`` adds).
    ``add="spike"``, SEW-ResNet's: ``a = Leaky(Conv(x))``, ``b = Leaky(Conv(a))``, then
    ``Leaky(Linear(Flatten(a + b)))``. ``add="current"``, ResNet's shortcut before the
    neurons: ``a = Leaky(Conv3x3(x))``, ``b = Leaky(Conv3x3(a) + Conv1x1(x))``, then
    ``Leaky(Linear(Flatten(b)))``. Returns ``(net, input shape)``."""
    import torch
    from torch import nn

    if add not in ("spike", "current"):
        raise ValueError(f"add must be 'spike' or 'current', not {add!r}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    C, H, W = in_shape

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv0 = nn.Conv2d(C, channels, 3, padding=1)
            self.lif0 = _leaky((channels, H, W), g)
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
            if add == "current":
                self.shortcut = nn.Conv2d(C, channels, 1)
            self.lif1 = _leaky((channels, H, W), g)
            self.flat = nn.Flatten()
            self.fc = nn.Linear(channels * H * W, outputs)
            self.lif2 = _leaky((outputs,), g, output=True)
            with torch.no_grad():  # weights that make every layer spike on sparse inputs
                shortcut = [self.shortcut] if add == "current" else []
                for conv in [self.conv0, self.conv1, *shortcut]:
                    conv.weight.mul_(3.0)
                self.fc.weight.mul_(4.0)

        def forward(self, x):
            a = self.lif0(self.conv0(x))
            if add == "spike":
                s = a + self.lif1(self.conv1(a))
            else:
                s = self.lif1(self.conv1(a) + self.shortcut(x))
            return self.lif2(self.fc(self.flat(s)))

    return Residual(), tuple(in_shape)


def snntorch_run(net, x):
    """snnTorch's own step-by-step simulation: ``x`` [T, batch, ...] -> the output per
    timestep (spikes, or a final Linear's current)."""
    import snntorch.utils
    import torch

    snntorch.utils.reset(net)
    out = []
    with torch.no_grad():
        for x_t in x:
            y = net(x_t)
            out.append(y[0] if isinstance(y, tuple) else y)
    return torch.stack(out)


def snntorch_tutorial_mlp(inputs: int = 784, hidden: int = 1000, outputs: int = 10,
                          beta: float = 0.95, num_steps: int = 25, seed: int = 0):
    """snnTorch's tutorial 5 network, as written there: a class with ``fc1, lif1, fc2,
    lif2`` (scalar ``beta``, the default ``subtract`` reset) whose ``forward`` feeds the same
    analog input at every one of ``num_steps`` steps and returns the output spikes and
    membranes [num_steps, batch, outputs]. Returns ``(net, input shape)``."""
    import snntorch as snn
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(inputs, hidden)
            self.lif1 = snn.Leaky(beta=beta)
            self.fc2 = nn.Linear(hidden, outputs)
            self.lif2 = snn.Leaky(beta=beta)

        def forward(self, x):
            mem1 = self.lif1.init_leaky()
            mem2 = self.lif2.init_leaky()
            spk2_rec, mem2_rec = [], []
            for _ in range(num_steps):
                cur1 = self.fc1(x)
                spk1, mem1 = self.lif1(cur1, mem1)
                cur2 = self.fc2(spk1)
                spk2, mem2 = self.lif2(cur2, mem2)
                spk2_rec.append(spk2)
                mem2_rec.append(mem2)
            return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)

    return Net(), (inputs,)


def snntorch_tutorial_csnn(in_shape=(1, 28, 28), beta: float = 0.5, seed: int = 0):
    """snnTorch's tutorial 6 network, as written there: ``Conv2d(1, 12, 5), MaxPool2d(2),
    Leaky, Conv2d(12, 64, 5), MaxPool2d(2), Leaky, Flatten, Linear(64*4*4, 10), Leaky`` in an
    ``nn.Sequential`` with ``init_hidden=True`` (max pooling of currents, before the
    neurons). Returns ``(net, input shape)``."""
    import snntorch as snn
    import torch
    from torch import nn

    torch.manual_seed(seed)
    C, H, W = in_shape
    side = ((H - 4) // 2 - 4) // 2, ((W - 4) // 2 - 4) // 2
    net = nn.Sequential(nn.Conv2d(C, 12, 5), nn.MaxPool2d(2),
                        snn.Leaky(beta=beta, init_hidden=True),
                        nn.Conv2d(12, 64, 5), nn.MaxPool2d(2),
                        snn.Leaky(beta=beta, init_hidden=True),
                        nn.Flatten(), nn.Linear(64 * side[0] * side[1], 10),
                        snn.Leaky(beta=beta, init_hidden=True, output=True))
    return net, tuple(in_shape)


def snntorch_export(net, in_shape):
    """snnTorch's ``export_to_nir`` of ``net`` (a ``nir.NIRGraph``)."""
    import warnings

    import torch
    from snntorch.export_nir import export_to_nir

    with warnings.catch_warnings():  # nirtorch 2 deprecates what snnTorch 1.0 calls
        warnings.simplefilter("ignore", DeprecationWarning)
        return export_to_nir(net, torch.zeros(1, *in_shape), ignore_dims=[0])


def snntorch_export_graph(net, in_shape):
    """``net`` (any snnTorch module, branches included) exported to NIR by nirtorch's
    ``torch_to_nir`` with snnTorch's own module converter; the input's type set to
    ``in_shape`` (torch.fx traces without a sample)."""
    import warnings

    import nirtorch
    import numpy as np
    import snntorch as snn
    from snntorch.export_nir import _extract_snntorch_module as convert
    from torch import nn

    types = (snn.Leaky, nn.Conv2d, nn.Linear, nn.Flatten, nn.AvgPool2d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        graph = nirtorch.torch_to_nir(net, {t: convert for t in types},
                                      stateful_modules={snn.Leaky}, type_check=False)
    import nir

    for node in graph.nodes.values():
        if isinstance(node, nir.Input):
            node.input_type = {"input": np.array(in_shape)}
            node.output_type = {"output": np.array(in_shape)}
    graph.infer_types()
    return graph
