"""Models straight from the PyTorch module their users wrote: ``from_module(net, in_shape)``.

The frameworks' NIR exporters break on the networks their own tutorials build (snnTorch:
a scalar ``beta`` fails NIR's type inference and its default ``subtract`` reset is written
as a hard one). This module reads the module itself: its layers, in the order they are
registered (``nn.Sequential``, or the attributes of a module whose ``forward`` runs them one
after the other), each mapped to what the hardware computes:

- ``nn.Linear`` or ``nn.Conv2d`` followed by a neuron is a dense or conv2d layer; a
  ``BatchNorm2d`` between them folds into the convolution; an ``AvgPool2d`` between them
  folds into the convolution too (a larger kernel at a larger stride); a ``MaxPool2d``
  between them pools the currents (SPEC 6's ``current_pool``: snnTorch's tutorial order,
  ``Conv2d, MaxPool2d, Leaky``).
- SpikingJelly's ``IFNode``, ``LIFNode`` and ``ParametricLIFNode`` (``v_reset`` 0: hard reset,
  None: soft) are DA-LIF neurons with their decays fixed (:func:`_spikingjelly_node`); its
  ``layer`` modules are PyTorch's, and its containers are opened.
- snnTorch's ``Leaky`` is a DA-LIF neuron with alpha fixed at 1, its ``beta`` (clamped to
  [0, 1] as snnTorch does) and ``threshold`` (scalars, per channel or per neuron), firing on
  ``V > theta`` and its ``reset_mechanism`` as SPEC 2's reset (``zero``: hard, ``subtract``:
  subtract, ``none``: none).
- ``MaxPool2d`` or ``AvgPool2d`` after a neuron pools spikes (SPEC 6); ``Flatten`` flattens;
  ``Dropout`` (PyTorch's or SpikingJelly's) and ``Identity`` do nothing at inference.
- A last ``nn.Linear`` without a neuron is the readout.

Anything else is refused with one line naming the module (its path in the network), its
type and why. The module is code its author wrote: this reads its attributes and never calls
its ``forward``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..core.config import ConfigError, check_input_file
from ..core.conv import ConvShape
from ..model import DALIFConv2d, DALIFGraph, DALIFLinear, Flatten, SpikePool2d
from ..model.graph import out_shape

__all__ = ["from_module", "load_module", "input_shape_of", "NEURONS"]


def _fail(path: str, module, why: str):
    raise ConfigError(f"module {path!r} ({type(module).__name__}): {why}")


def _leaves(module: nn.Module, prefix: str = ""):
    """``(path, module)`` of the layers in registration order, containers opened (a neuron
    is a leaf, whatever it holds: SpikingJelly's hold their surrogate functions)."""
    children = list(module.named_children())
    if not children or _class_name(module) in NEURONS:
        yield prefix or type(module).__name__, module
        return
    for name, child in children:
        yield from _leaves(child, f"{prefix}.{name}" if prefix else name)


def _class_name(module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _per_neuron(path, module, name: str, value: torch.Tensor, shape: tuple):
    """A scalar stays a float; anything else is broadcast to the neurons' ``shape``."""
    value = value.detach().to(torch.float32)
    if value.numel() == 1:
        return float(value.reshape(()))
    try:
        return torch.broadcast_to(value, shape).clone()
    except RuntimeError:
        _fail(path, module, f"{name} of shape {list(value.shape)} does not broadcast to the "
              f"layer's neurons {list(shape)}")


def _keywords(shape: tuple, *, alpha: float, beta, threshold, reset: str,
              strict: bool) -> dict:
    """DALIFNeuron keywords of fixed decays: per layer where beta and the threshold are both
    one number, else per neuron, both broadcast to the neurons' ``shape``."""
    layer = isinstance(beta, float) and isinstance(threshold, float)
    if not layer:
        beta = torch.broadcast_to(torch.as_tensor(beta), shape).clone()
        threshold = torch.broadcast_to(torch.as_tensor(threshold), shape).clone()
    return {"granularity": "layer" if layer else "neuron", "learn_alpha": False,
            "alpha": alpha, "learn_beta": False, "beta": beta, "threshold": threshold,
            "reset": reset, "strict": strict}


def _snntorch_leaky(path: str, module, shape: tuple) -> dict:
    """DALIFNeuron keywords for snnTorch's ``Leaky`` over neurons of ``shape``."""
    if getattr(module, "inhibition", False):
        _fail(path, module, "inhibition (only the strongest neuron fires) has no hardware")
    if getattr(module, "state_quant", False):
        _fail(path, module, "state_quant quantizes the membrane its own way: pack quantizes "
              "it for the hardware instead; build the Leaky without it")
    factor = float(getattr(module, "graded_spikes_factor", 1.0))
    if factor != 1.0:
        _fail(path, module, f"graded_spikes_factor {factor:g}: the hardware's spikes are 1")
    mechanism = getattr(module, "reset_mechanism", "subtract")
    reset = {"zero": "hard", "subtract": "subtract", "none": "none"}.get(mechanism)
    if reset is None:
        _fail(path, module, f"reset_mechanism {mechanism!r} is not zero, subtract or none")
    if not getattr(module, "reset_delay", True) and reset == "subtract":
        _fail(path, module, "reset_mechanism 'subtract' with reset_delay=False fires on "
              "beta H + X - theta where a membrane stays above theta after its reset, which "
              "no SPEC reset computes; use reset_delay=True (snnTorch's default)")
    beta = _per_neuron(path, module, "beta", module.beta.clamp(0, 1), shape)
    threshold = _per_neuron(path, module, "threshold", module.threshold, shape)
    if not bool((torch.as_tensor(threshold) > 0).all()):
        _fail(path, module, f"threshold {float(torch.as_tensor(threshold).min()):g} is not "
              "positive")
    return _keywords(shape, alpha=1.0, beta=beta, threshold=threshold, reset=reset,
                     strict=True)


def _spikingjelly_node(path: str, module, shape: tuple) -> dict:
    """DALIFNeuron keywords for SpikingJelly's ``IFNode``, ``LIFNode`` and
    ``ParametricLIFNode`` over neurons of ``shape``: fire on ``V >= v_threshold``; an IF
    charges ``V = H + X`` (alpha = beta = 1); a LIF ``V = H + (X - H) / tau`` (alpha =
    1 / tau, beta = 1 - 1 / tau), or with ``decay_input=False`` ``V = H (1 - 1 / tau) + X``;
    the parametric LIF's 1 / tau is ``sigmoid(w)``. ``v_reset=0`` is the hard reset, ``None``
    the soft one (SPEC 2: theta off right after the spike)."""
    v_reset = module.v_reset
    if v_reset is None:
        reset = "soft"
    elif float(v_reset) == 0.0:
        reset = "hard"
    else:
        _fail(path, module, f"v_reset {float(v_reset):g}: a hard reset goes to 0 in the "
              "hardware (use v_reset=0.0, or None for the soft reset)")
    threshold = module.v_threshold
    threshold = float(threshold.reshape(())) if isinstance(threshold, torch.Tensor) else \
        float(threshold)
    if not threshold > 0:
        _fail(path, module, f"v_threshold {threshold:g} is not positive")
    name = type(module).__name__
    if name == "IFNode":
        alpha, beta = 1.0, 1.0
    else:
        inverse = float(torch.sigmoid(module.w.detach()).reshape(())) \
            if name == "ParametricLIFNode" else 1.0 / float(module.tau)
        if not 0.0 < inverse <= 1.0:
            _fail(path, module, f"tau {1 / inverse if inverse else float('inf'):g} is below 1 "
                  "(the membrane would grow by itself)")
        alpha = inverse if getattr(module, "decay_input", True) else 1.0
        beta = 1.0 - inverse
    return _keywords(shape, alpha=alpha, beta=beta, threshold=threshold, reset=reset,
                     strict=False)


def _sinabs_neuron(path: str, module, shape: tuple) -> dict:
    """DALIFNeuron keywords for sinabs' ``IAF``, ``LIF`` and their ``Squeeze`` forms over
    neurons of ``shape``: ``V = alpha_mem H + X`` (``(1 - alpha_mem) X`` with
    ``norm_input``; an IAF's alpha_mem is 1), fire on ``V >= spike_threshold`` with
    ``SingleSpike``, ``MembraneSubtract`` the soft reset and ``MembraneReset`` to 0 the hard
    one."""
    spike_fn = getattr(module, "spike_fn", None)
    name = getattr(spike_fn, "__name__", type(spike_fn).__name__)
    if name != "SingleSpike":
        _fail(path, module, f"spike_fn {name}: sinabs' default MultiSpike fires floor(V / "
              "theta) spikes a step (MaxSpike up to a maximum), the hardware's neurons at most "
              "one; build the layer with spike_fn=sinabs.activation.SingleSpike")
    if getattr(module, "tau_syn", None) is not None:
        _fail(path, module, "tau_syn: a synaptic current state has no hardware")
    if getattr(module, "min_v_mem", None) is not None:
        _fail(path, module, f"min_v_mem {float(module.min_v_mem):g}: the hardware's membrane "
              "is not clamped from below (it saturates at its width); build without min_v_mem")
    threshold = _per_neuron(path, module, "spike_threshold",
                            torch.as_tensor(module.spike_threshold), shape)
    if not bool((torch.as_tensor(threshold) > 0).all()):
        _fail(path, module, "spike_threshold is not positive")
    reset_fn = module.reset_fn
    kind = type(reset_fn).__name__
    subtract = getattr(reset_fn, "subtract_value", None)
    if kind == "MembraneSubtract" and (subtract is None or (
            isinstance(threshold, float) and float(subtract) == threshold)):
        reset = "soft"
    elif kind == "MembraneReset" and float(reset_fn.reset_value) == 0.0:
        reset = "hard"
    else:
        _fail(path, module, f"reset_fn {reset_fn!r}: the hardware subtracts the threshold or "
              "resets to 0")
    beta = module.alpha_mem_calculated.detach().to(torch.float32)
    if beta.numel() != 1 or not 0.0 <= float(beta) <= 1.0:
        _fail(path, module, "alpha_mem must be one value in [0, 1]")
    alpha = (1 - beta) if getattr(module, "norm_input", False) else torch.ones(())
    return _keywords(shape, alpha=float(alpha), beta=float(beta), threshold=threshold,
                     reset=reset, strict=False)


#: Neuron classes (module path and name) and how each becomes DALIFNeuron keywords.
NEURONS = {
    "snntorch._neurons.leaky.Leaky": _snntorch_leaky,
    **{f"spikingjelly.{api}.neuron.{node}": _spikingjelly_node
       for api in ("activation_based", "clock_driven")
       for node in ("IFNode", "LIFNode", "ParametricLIFNode")},
    **{f"sinabs.layers.{kind.lower()}.{kind}{squeeze}": _sinabs_neuron
       for kind in ("IAF", "LIF") for squeeze in ("", "Squeeze")},
}
#: sinabs' sum pooling (an LPPool2d of norm 1), by class name.
_SUM_POOL = "sinabs.layers.pool2d.SumPool2d"


def _pool_kind(module) -> str | None:
    """``max``, ``avg`` or ``sum`` for a pooling module (PyTorch's, sinabs' SumPool2d), else
    None."""
    if isinstance(module, nn.MaxPool2d):
        return "max"
    if isinstance(module, nn.AvgPool2d):
        return "avg"
    return "sum" if _class_name(module) == _SUM_POOL else None


#: Layers that do nothing at inference (by type, and SpikingJelly's by class name).
_PASS = (nn.Dropout, nn.Identity)
_PASS_NAMES = {f"spikingjelly.{api}.layer.{name}" for api in ("activation_based", "clock_driven")
               for name in ("Dropout", "Dropout2d")}


def _window(path, module) -> tuple[int, int]:
    """A pooling module's window, which must be its stride, without padding."""
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    window = pair(module.kernel_size)
    stride = pair(module.stride if module.stride is not None else module.kernel_size)
    if stride != window or pair(getattr(module, "padding", 0)) != (0, 0) or \
            getattr(module, "ceil_mode", False) or pair(getattr(module, "dilation", 1)) != (1, 1):
        _fail(path, module, f"pooling here has a stride equal to its window {list(window)}, no "
              "padding, dilation or ceil_mode (SPEC 6)")
    if isinstance(module, nn.AvgPool2d) and module.divisor_override is not None:
        _fail(path, module, "divisor_override: the hardware's average divides by the window")
    return window


def _fold_batchnorm(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d,
                    path: str) -> tuple:
    """A convolution's ``weight`` and ``bias`` (float64) with ``bn`` folded in (in eval
    mode: its running statistics)."""
    if bn.running_mean is None:
        _fail(path, bn, "without running statistics (track_running_stats=False) it has no "
              "inference form to fold")
    scale = 1.0 / torch.sqrt(bn.running_var.double() + bn.eps)
    shift = torch.zeros_like(scale)
    if bn.affine:
        scale, shift = scale * bn.weight.double(), bn.bias.double()
    bias = torch.zeros_like(scale) if bias is None else bias
    return weight * scale.reshape(-1, 1, 1, 1), (bias - bn.running_mean.double()) * scale + shift


def _fold_pool(weight: torch.Tensor, stride: tuple, window: tuple, average: bool) -> tuple:
    """A convolution (stride ``stride``) then an average (or sum) pool of ``window``: one
    convolution of kernel K + (P - 1) S at stride S P, its weights the window's shifted
    copies averaged (or added)."""
    K, C, KH, KW = weight.shape
    (SH, SW), (PH, PW) = stride, window
    out = torch.zeros(K, C, KH + (PH - 1) * SH, KW + (PW - 1) * SW, dtype=weight.dtype)
    for a in range(PH):
        for b in range(PW):
            out[:, :, a * SH:a * SH + KH, b * SW:b * SW + KW] += weight
    return (out / (PH * PW) if average else out), (SH * PH, SW * PW)


class _Synapse:
    """A Linear or Conv2d waiting for its neuron, with what folds into it on the way."""

    def __init__(self, path, module):
        self.path, self.module = path, module
        self.weight = module.weight.detach().double()
        self.bias = module.bias.detach().double() if module.bias is not None else None
        self.conv = isinstance(module, nn.Conv2d)
        if self.conv:
            self.stride = tuple(module.stride)
            self.padding = module.padding
            if isinstance(self.padding, str) or module.groups != 1 or \
                    tuple(module.dilation) != (1, 1) or module.padding_mode != "zeros":
                _fail(path, module, "a convolution here has groups 1, dilation 1 and zero "
                      "padding given as numbers")
            self.padding = tuple(self.padding)
        self.pooled = False
        self.current_pool = None

    def take(self, path, module) -> bool:
        """Fold ``module`` (between the synapse and its neuron) in, if it can be."""
        if isinstance(module, nn.BatchNorm2d) and self.conv and not self.pooled:
            if module.num_features != self.weight.shape[0]:
                _fail(path, module, f"{module.num_features} features after a convolution of "
                      f"{self.weight.shape[0]} channels")
            self.weight, self.bias = _fold_batchnorm(self.weight, self.bias, module, path)
            return True
        pool = _pool_kind(module) if self.conv else None
        if pool is not None and self.current_pool is not None:
            _fail(path, module, "a second pooling after a MaxPool2d of currents: the hardware "
                  "max-pools a convolution's currents once (give one MaxPool2d its whole "
                  "window)")
        if pool in ("avg", "sum"):
            window = _window(path, module)
            self.weight, self.stride = _fold_pool(self.weight, self.stride, window,
                                                  average=pool == "avg")
            if pool == "sum" and self.bias is not None:     # the window's biases added
                self.bias = self.bias * (window[0] * window[1])
            self.pooled = True
            return True
        if pool == "max":
            # The currents max-pooled before the neurons (SPEC 6 current_pool); a BatchNorm2d
            # after it would not commute with the max (a negative scale), so none may follow.
            self.current_pool = _window(path, module)
            self.pooled = True
            return True
        return False


def from_module(net: nn.Module, in_shape: Sequence[int]) -> DALIFGraph:
    """A dalif-hw model of the layers of ``net`` (an snnTorch or SpikingJelly network as its
    users write it), for inputs of ``in_shape`` (one sample: ``(features,)`` or ``(C, H,
    W)``). Its float spikes equal the network's own where nothing is folded.

    Raises
    ------
    ConfigError
        One line naming the module, its type and why, for anything the hardware cannot run.
    """
    in_shape = tuple(int(n) for n in in_shape)
    if not in_shape or min(in_shape) < 1 or len(in_shape) not in (1, 3):
        raise ConfigError(f"in_shape is (features,) or (C, H, W), not {list(in_shape)}")
    body, shape, pending, readout = [], in_shape, None, None
    for path, module in _leaves(net):
        if isinstance(module, _PASS) or _class_name(module) in _PASS_NAMES:
            continue
        convert = NEURONS.get(_class_name(module))
        if pending is not None:
            if convert is not None:
                layer = _layer(pending, path, module, convert, shape)
                body.append(layer)
                shape = out_shape(layer, [shape])
                pending = None
            elif not pending.take(path, module):
                _fail(path, module, f"{pending.path!r} (Linear) must feed a neuron, or end the "
                      "network as the readout" if not pending.conv else f"{pending.path!r} "
                      "(Conv2d) must feed a neuron (after any BatchNorm2d or AvgPool2d)")
            continue
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            _check_input(path, module, shape)
            pending = _Synapse(path, module)
        elif convert is not None:
            _fail(path, module, "a neuron needs a Linear or Conv2d in front of it")
        elif (kind := _pool_kind(module)) is not None:
            if len(shape) != 3 or not body:
                _fail(path, module, "pooling here takes the spikes of a conv layer")
            pool = SpikePool2d(kind, _window(path, module))
            try:
                shape = out_shape(pool, [shape])
            except (ValueError, ConfigError) as exc:
                _fail(path, module, str(exc))
            body.append(pool)
        elif isinstance(module, nn.Flatten):
            if (module.start_dim, module.end_dim) != (1, -1):
                _fail(path, module, f"only Flatten(start_dim=1, end_dim=-1) (everything but "
                      f"the batch) is supported, not {module.start_dim}..{module.end_dim}")
            if len(shape) > 1:
                body.append(Flatten())
                shape = out_shape(body[-1], [shape])
        else:
            _fail(path, module, f"no hardware for {_class_name(module)}")
    if pending is not None:
        if pending.conv or pending.pooled:
            _fail(pending.path, pending.module, "a convolution must feed a neuron")
        readout = nn.Linear(pending.weight.shape[1], pending.weight.shape[0],
                            bias=pending.bias is not None)
        with torch.no_grad():
            readout.weight.copy_(pending.weight)
            if pending.bias is not None:
                readout.bias.copy_(pending.bias)
    if not body:
        raise ConfigError(f"{type(net).__name__} has no Linear or Conv2d followed by a "
                          "neuron: nothing for the hardware")
    return DALIFGraph(in_shape, body, readout=readout).eval()


def _check_input(path, module, shape):
    if isinstance(module, nn.Linear) and shape != (module.in_features,):
        _fail(path, module, f"it takes {module.in_features} inputs but gets {list(shape)}"
              + (" (a Flatten is missing)" if len(shape) > 1 else ""))
    if isinstance(module, nn.Conv2d) and (len(shape) != 3 or shape[0] != module.in_channels):
        _fail(path, module, f"it takes {module.in_channels} channels but gets {list(shape)}")


def _layer(pending: _Synapse, path: str, neuron, convert, shape) -> nn.Module:
    """The dense or conv2d layer of ``pending`` and its ``neuron`` (a value the DA-LIF
    neuron cannot take, a NaN beta, refused naming the neuron)."""
    try:
        return _make_layer(pending, path, neuron, convert, shape)
    except ConfigError:
        raise
    except ValueError as exc:
        _fail(path, neuron, str(exc))


def _make_layer(pending: _Synapse, path: str, neuron, convert, shape) -> nn.Module:
    weight, bias = pending.weight, pending.bias
    if pending.conv:
        K, C, KH, KW = weight.shape
        try:
            layer_shape = ConvShape(shape, K, (KH, KW), pending.stride, pending.padding,
                                    pending.current_pool).out_shape
        except ConfigError as exc:
            _fail(pending.path, pending.module, f"for an input of {list(shape)}: {exc}")
        if min(layer_shape) < 1:
            _fail(pending.path, pending.module, f"no output for an input of {list(shape)}")
        layer = DALIFConv2d(C, K, (KH, KW), stride=pending.stride, padding=pending.padding,
                            input_size=shape[1:], bias=bias is not None,
                            current_pool=pending.current_pool,
                            **convert(path, neuron, layer_shape))
        synapse = layer.conv
    else:
        layer = DALIFLinear(weight.shape[1], weight.shape[0], bias=bias is not None,
                            **convert(path, neuron, (weight.shape[0],)))
        synapse = layer.linear
    with torch.no_grad():
        synapse.weight.copy_(weight)
        if bias is not None:
            synapse.bias.copy_(bias)
    return layer


def load_module(spec: str, weights: str | None = None) -> nn.Module:
    """The network ``spec`` names, ``FILE.py:NAME``: ``NAME`` in that file, a module or a
    function that returns one (called without arguments), in eval mode, with the state dict
    in ``weights`` loaded (``torch.load(weights_only=True)``: tensors only, no code) if given.

    The file is code: loading it runs it, as ``python FILE.py`` would.
    """
    import importlib.util
    from pathlib import Path

    path, sep, name = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not name.isidentifier():
        raise ConfigError(f"a module is given as FILE.py:NAME (a function that returns the "
                          f"network, or the network), not {spec!r}")
    check_input_file(path, "module file")
    loader = importlib.util.spec_from_file_location(f"dalif_hw_user_{Path(path).stem}", path)
    code = importlib.util.module_from_spec(loader)
    try:
        loader.loader.exec_module(code)
        found = getattr(code, name, None)
        if found is None:
            raise ConfigError(f"{path} has no {name!r}")
        net = found if isinstance(found, nn.Module) else found() if callable(found) else found
    except ConfigError:
        raise
    except Exception as exc:   # the user's code: its failure, in one line
        raise ConfigError(f"{spec}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if not isinstance(net, nn.Module):
        raise ConfigError(f"{spec} gives a {type(net).__name__}, not a torch.nn.Module")
    if weights is not None:
        check_input_file(weights, "weights file")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConfigError(f"weights {weights!r} cannot be loaded with weights_only=True: "
                              f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
        if isinstance(state, dict) and not all(isinstance(v, torch.Tensor)
                                               for v in state.values()):
            state = next((state[k] for k in ("state_dict", "model_state_dict", "model")
                          if isinstance(state.get(k), dict)), state)
        if not isinstance(state, dict):
            raise ConfigError(f"weights {weights!r} hold a {type(state).__name__}, not a "
                              "state dict")
        state = _without_neuron_state(net, state)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:    # its first line only says "Error(s) in loading"
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise ConfigError(f"weights {weights!r} do not fit {spec}: {lines[-1]}") from None
    return net.eval()


def _without_neuron_state(net: nn.Module, state: dict) -> dict:
    """``state`` with the neurons' own buffers (their state, such as sinabs' ``v_mem``, which a
    state dict saved after a run holds at that run's batch shape) replaced by the fresh
    network's: a neuron's state is no weight."""
    state = dict(state)
    for path, module in _leaves(net):
        if _class_name(module) in NEURONS:
            for name, buffer in module.named_buffers(recurse=False):
                if f"{path}.{name}" in state:
                    state[f"{path}.{name}"] = buffer
    return state


def input_shape_of(net: nn.Module) -> tuple[int, ...] | None:
    """The input shape a network's first layer says (a Linear's features), else None."""
    for _, module in _leaves(net):
        if isinstance(module, nn.Linear):
            return (module.in_features,)
        if not isinstance(module, (*_PASS, nn.Flatten)):
            return None
    return None
