"""Networks from the SNN frameworks dalif-hw takes models from, for the tests and the docs:
built, simulated and exported to NIR by the frameworks themselves (snnTorch here; the
SpikingJelly fixtures come from ``tests/fixtures/nir/make_spikingjelly.py``).

snnTorch's ``Leaky`` with ``reset_mechanism="zero"`` is, step by step: reset to 0 where the
last step fired, ``mem = beta mem + input``, fire where ``mem > threshold``. Its NIR export
needs per-neuron ``beta`` and ``threshold`` tensors, and ``ignore_dims=[0]`` (the batch
dimension) with nirtorch 2.
"""

from __future__ import annotations

__all__ = ["snntorch_dense", "snntorch_conv", "snntorch_run", "snntorch_export"]


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


def snntorch_export(net, in_shape):
    """snnTorch's ``export_to_nir`` of ``net`` (a ``nir.NIRGraph``)."""
    import warnings

    import torch
    from snntorch.export_nir import export_to_nir

    with warnings.catch_warnings():  # nirtorch 2 deprecates what snnTorch 1.0 calls
        warnings.simplefilter("ignore", DeprecationWarning)
        return export_to_nir(net, torch.zeros(1, *in_shape), ignore_dims=[0])
