"""NIR (the Neuromorphic Intermediate Representation) in and out: ``from_nir``, ``to_nir``.

A NIR ``LIF`` node, ``tau dv/dt = (v_leak - v) + r I``, fire when ``v > v_threshold``, then
``v = v_reset``, discretised by forward Euler with step ``dt`` (as snnTorch and SpikingJelly
write it, dt = 1e-4), is a DA-LIF neuron with hard reset (docs/nir.md has the whole table)::

    beta = 1 - dt / tau        alpha = r dt / tau        bias += v_leak / r

``IF`` (``dv/dt = r I``) is ``beta = 1``, ``alpha = r dt``. An alpha above 1 folds into the
incoming weights and bias (a dense layer's rows, a convolution's channels); an alpha within
float32 rounding of 1 is 1. The neurons fire on ``V > theta`` as NIR's do (``strict``).

A graph is a chain: Input, then synapse + neuron pairs (Affine or Linear, or Conv2d, then LIF
or IF), pooling (SumPool2d, AvgPool2d) and Flatten between them, then Output; it may end in
a LIF (the output is its spikes), an Affine (its current) or an Affine -> I (its integral).
Anything else is refused with one line naming the node and why.

The imported model keeps the graph it came from (``model.nir_source``): as long as its
parameters are those derived at import, :func:`to_nir` gives back the same nodes, edges and
arrays; after training it exports what the model now computes.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.config import ConfigError
from ..core.conv import ConvShape
from ..model import (
    DALIFMLP,
    DALIFConv2d,
    DALIFConvNet,
    DALIFLinear,
    DALIFSequential,
    Flatten,
    SEWBlock,
    SpikePool2d,
)

__all__ = ["DT", "from_nir", "to_nir", "read_graph", "save_model", "load_model_checkpoint",
           "load_checkpoint"]

#: The Euler step snnTorch and SpikingJelly write into their NIR graphs.
DT = 1e-4
#: Metadata key of a soft-reset LIF (NIR has no soft reset; our import honours it).
RESET_KEY = "dalif_hw_reset"
#: How close to 1 an alpha counts as 1 (float32 rounding of r dt / tau).
ONE_TOLERANCE = 1e-6

_SYNAPSES = ("Affine", "Linear", "Conv2d")
_NEURONS = ("LIF", "IF")
_WHY = {
    "LI": "a leaky integrator leaks, so its output is not the readout's sum over time",
    "CubaLI": "a leaky integrator with a synaptic current leaks, so it cannot be the readout",
    "CubaLIF": "its synaptic time constant (a second state per neuron) has no DA-LIF form",
    "Delay": "delays have no hardware here",
    "Scale": "a scale between layers has no hardware here (fold it into the weights)",
    "Threshold": "a bare threshold has no hardware here",
    "Conv1d": "1-d convolutions have no hardware here (use Conv2d)",
    "NIRGraph": "nested graphs (e.g. snnTorch's RLeaky, RSynaptic) are recurrent here",
}


def _fail(name: str, node, why: str):
    raise ConfigError(f"NIR node {name!r} ({type(node).__name__}): {why}")


def read_graph(graph_or_path):
    """A ``nir.NIRGraph`` from a graph or a ``.nir`` file (one clear line if unreadable)."""
    import nir

    if isinstance(graph_or_path, nir.NIRGraph):
        return graph_or_path
    path = Path(graph_or_path)
    if not path.is_file():
        raise ConfigError(f"NIR file {str(path)!r} does not exist")
    try:
        return nir.read(path)
    except Exception as exc:  # h5py and nir raise many kinds for a file that is not NIR
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise ConfigError(f"NIR file {str(path)!r} cannot be read by nir.read "
                          f"({type(exc).__name__}: {first})") from None


def graph_bytes(graph) -> bytes:
    """The ``.nir`` (HDF5) file of ``graph`` as bytes (to keep it inside a checkpoint)."""
    import nir

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.nir"
        nir.write(path, graph)
        return path.read_bytes()


def graph_from_bytes(blob: bytes):
    import nir

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.nir"
        path.write_bytes(blob)
        return nir.read(path)


# -- import --------------------------------------------------------------------------------------

def _chain(graph) -> list[str]:
    """The node names from Input to Output, checking that the graph is one chain."""
    import nir

    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    for name, node in nodes.items():
        if isinstance(node, nir.NIRGraph):
            _fail(name, node, _WHY["NIRGraph"])
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConfigError(f"a NIR graph for dalif-hw has one Input and one Output node, not "
                          f"{len(inputs)} and {len(outputs)}")
    after: dict[str, list[str]] = {n: [] for n in nodes}
    before: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise ConfigError(f"NIR edge ({a!r}, {b!r}) names a node that is not in the "
                                  "graph")
        after[a].append(b)
        before[b].append(a)
    _refuse_cycles(nodes, after, inputs[0])
    order, name, seen = [], inputs[0], set()
    while True:
        seen.add(name)
        order.append(name)
        if len(before[name]) > 1:
            _fail(name, nodes[name], f"it has {len(before[name])} inputs "
                  f"({', '.join(before[name])}): the hardware chains layers, no merging")
        if name == outputs[0]:
            break
        if len(after[name]) != 1:
            _fail(name, nodes[name], "its output goes nowhere" if not after[name] else
                  f"its output branches to {', '.join(after[name])}: the hardware chains "
                  "layers, no branches")
        name = after[name][0]
    if len(seen) != len(nodes):
        rest = sorted(set(nodes) - seen)
        _fail(rest[0], nodes[rest[0]], "it is not on the chain from Input to Output")
    return order


def _refuse_cycles(nodes: dict, after: dict, start: str) -> None:
    """Fail on the first edge that comes back to a node on its own path (recurrence)."""
    path, done = [], set()

    def visit(name):
        path.append(name)
        for nxt in after[name]:
            if nxt in path:
                _fail(nxt, nodes[nxt], f"a recurrent edge from {nxt if nxt == name else name!r} "
                      "comes back to it: the hardware chains layers forward only")
            if nxt not in done:
                visit(nxt)
        path.pop()
        done.add(name)

    visit(start)


def _shape_of(value) -> tuple[int, ...]:
    if isinstance(value, dict):
        value = next(iter(value.values()), None)
    return tuple(int(v) for v in np.asarray(value).reshape(-1)) if value is not None else ()


def _pair(value, name: str, what: str, node) -> tuple[int, int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(arr == np.round(arr)):
        _fail(name, node, f"{what} must be an integer or a pair, not {value!r}")
    return int(arr[0]), int(arr[1])


def _neuron_arrays(name: str, node, shape: tuple, dt: float) -> dict:
    """alpha, beta, threshold, bias offset (v_leak / r), reset of a LIF or IF node, each
    broadcast to the neuron ``shape``, in float64."""
    import nir

    def full(key):
        value = np.asarray(getattr(node, key), np.float64)
        try:
            return np.broadcast_to(value, shape).copy()
        except ValueError:
            _fail(name, node, f"{key} has shape {list(value.shape)}, the neurons "
                  f"{list(shape)}")

    r, threshold = full("r"), full("v_threshold")
    reset = node.v_reset if getattr(node, "v_reset", None) is not None else 0.0
    if np.any(np.asarray(reset, np.float64) != 0):
        _fail(name, node, f"v_reset {float(np.asarray(reset).reshape(-1)[0]):g} is not 0: "
              "DA-LIF resets to 0 (shift v_leak, v_threshold and v_reset together instead)")
    if np.any(threshold <= 0):
        _fail(name, node, f"v_threshold {threshold.min():g} is not positive")
    if np.any(r < 0):
        _fail(name, node, f"r {r.min():g} is negative")
    if isinstance(node, nir.IF):
        beta, alpha, offset = np.ones(shape), r * dt, np.zeros(shape)
    else:
        tau, leak = full("tau"), full("v_leak")
        if np.any(tau < dt):
            _fail(name, node, f"tau {tau.min():g} is below dt {dt:g}: the Euler step would "
                  "overshoot (beta = 1 - dt / tau < 0); give the dt the graph was made with "
                  "(--dt)")
        beta, alpha = 1.0 - dt / tau, r * dt / tau
        if np.any((leak != 0) & (r == 0)):
            _fail(name, node, "v_leak is not 0 where r is 0: no input current to fold it into")
        offset = np.divide(leak, r, out=np.zeros(shape), where=r != 0)
    alpha = np.where(np.abs(alpha - 1.0) <= ONE_TOLERANCE, 1.0, alpha)
    soft = (node.metadata or {}).get(RESET_KEY) in ("soft", b"soft")
    return {"alpha": alpha, "beta": beta, "threshold": threshold, "offset": offset,
            "reset": "soft" if soft else "hard"}


def _fixed_neuron_kwargs(arrays: dict, gain: np.ndarray) -> dict:
    return {"granularity": "neuron", "learn_alpha": False, "learn_beta": False,
            "alpha": torch.tensor(arrays["alpha"] / gain, dtype=torch.float32),
            "beta": torch.tensor(arrays["beta"], dtype=torch.float32),
            "threshold": torch.tensor(arrays["threshold"], dtype=torch.float32),
            "reset": arrays["reset"], "strict": True}


def _dense_layer(names, synapse, neuron, shape, dt) -> DALIFLinear:
    import nir

    weight = np.asarray(synapse.weight, np.float64)
    if weight.ndim != 2:
        _fail(names[0], synapse, f"weight must be 2-d [out, in], not {list(weight.shape)}")
    if shape != (weight.shape[1],):
        _fail(names[0], synapse, f"it takes {weight.shape[1]} inputs but gets "
              f"{list(shape)}" + (" (a Flatten is missing)" if len(shape) > 1 else ""))
    out = (weight.shape[0],)
    bias = np.asarray(synapse.bias, np.float64).reshape(out) if isinstance(
        synapse, nir.Affine) else np.zeros(out)
    arrays = _neuron_arrays(names[1], neuron, out, dt)
    gain = np.maximum(arrays["alpha"], 1.0)  # alpha above 1 folds into the row
    layer = DALIFLinear(weight.shape[1], weight.shape[0], bias=True,
                        **_fixed_neuron_kwargs(arrays, gain))
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor(weight * gain[:, None]))
        layer.linear.bias.copy_(torch.tensor((bias + arrays["offset"]) * gain))
    return layer


def _conv_layer(names, synapse, neuron, shape, dt) -> DALIFConv2d:
    name = names[0]
    weight = np.asarray(synapse.weight, np.float64)
    if weight.ndim != 4:
        _fail(name, synapse, f"weight must be 4-d [K, C, KH, KW], not {list(weight.shape)}")
    if len(shape) != 3 or shape[0] != weight.shape[1]:
        _fail(name, synapse, f"it takes [{weight.shape[1]}, H, W] but gets {list(shape)}")
    if int(np.asarray(synapse.groups)) != 1:
        _fail(name, synapse, f"groups {synapse.groups} is not 1: grouped convolutions have "
              "no hardware here")
    if _pair(synapse.dilation, name, "dilation", synapse) != (1, 1):
        _fail(name, synapse, f"dilation {synapse.dilation} is not 1")
    stride = _pair(synapse.stride, name, "stride", synapse)
    padding = synapse.padding
    if isinstance(padding, (str, bytes)):
        padding = padding.decode() if isinstance(padding, bytes) else padding
        if padding == "valid":
            padding = (0, 0)
        elif stride == (1, 1) and weight.shape[2] % 2 and weight.shape[3] % 2:
            padding = (weight.shape[2] // 2, weight.shape[3] // 2)
        else:
            _fail(name, synapse, "padding 'same' needs stride 1 and an odd kernel here")
    padding = _pair(padding, name, "padding", synapse)
    if synapse.input_shape is not None and \
            tuple(int(v) for v in np.asarray(synapse.input_shape)) != tuple(shape[1:]):
        _fail(name, synapse, f"input_shape {list(np.asarray(synapse.input_shape))} disagrees "
              f"with the input {list(shape)}")
    K = weight.shape[0]
    try:  # the hardware's shape rules (SPEC 6), with the node's name
        out = ConvShape(shape, K, weight.shape[2:], stride, padding).out_shape
    except ConfigError as exc:
        _fail(name, synapse, str(exc))
    bias = np.asarray(synapse.bias, np.float64).reshape(-1)
    bias = np.broadcast_to(bias, (K,)) if bias.size in (1, K) else _fail(
        name, synapse, f"bias has {bias.size} values for {K} channels")
    arrays = _neuron_arrays(names[1], neuron, out, dt)
    # A channel shares its kernel and its bias: alpha folds in by the channel's largest.
    gain = np.maximum(arrays["alpha"].reshape(K, -1).max(axis=1), 1.0)
    offset = arrays["offset"].reshape(K, -1)
    if np.any(offset != offset[:, :1]):
        _fail(names[1], neuron, "v_leak / r differs within a channel: a convolution's bias "
              "is one per channel")
    layer = DALIFConv2d(shape[0], K, tuple(weight.shape[2:]), stride=stride, padding=padding,
                        input_size=shape[1:], bias=True, **_fixed_neuron_kwargs(
                            arrays, np.broadcast_to(gain[:, None, None], out)))
    with torch.no_grad():
        layer.conv.weight.copy_(torch.tensor(weight * gain[:, None, None, None]))
        layer.conv.bias.copy_(torch.tensor((bias + offset[:, 0]) * gain))
    return layer


def _pool(name: str, node, shape) -> tuple[SpikePool2d, tuple]:
    """The pooling stage of a SumPool2d or AvgPool2d node, and its output shape."""
    import nir

    kernel = _pair(node.kernel_size, name, "kernel_size", node)
    stride = _pair(node.stride, name, "stride", node)
    if stride != kernel or _pair(node.padding, name, "padding", node) != (0, 0):
        _fail(name, node, f"stride {list(stride)} and padding {list(np.asarray(node.padding))} "
              f"must be the window {list(kernel)} and 0 (pooling windows do not overlap)")
    if len(shape) != 3:
        _fail(name, node, f"pooling needs a [C, H, W] input, not {list(shape)}")
    layer = SpikePool2d("sum" if isinstance(node, nir.SumPool2d) else "avg", kernel)
    try:
        return layer, layer.shape(shape).out_shape
    except ConfigError as exc:
        _fail(name, node, str(exc))


def from_nir(graph, dt: float = DT) -> DALIFSequential:
    """A NIR graph (or a ``.nir`` path) as a :class:`~dalif_hw.model.DALIFSequential`: its
    forward takes [T, batch, *input shape] and returns the last node's output per timestep.

    Raises
    ------
    ConfigError
        One line naming the node and why, for anything the hardware cannot run.
    """
    import nir

    if not dt > 0:
        raise ConfigError(f"dt must be positive, not {dt!r}")
    source = read_graph(graph)
    order = _chain(source)
    nodes = source.nodes
    shape = _shape_of(nodes[order[0]].input_type)
    if not shape:
        raise ConfigError(f"NIR node {order[0]!r} (Input) has no shape: the input shape "
                          "cannot be inferred")
    in_shape, body, readout, integrate = shape, [], None, None
    k, inner = 0, order[1:-1]
    while k < len(inner):
        name, node = inner[k], nodes[inner[k]]
        kind = type(node).__name__
        nxt = inner[k + 1] if k + 1 < len(inner) else None
        if kind in _SYNAPSES:
            after = nodes[nxt] if nxt else None
            if isinstance(after, (nir.LIF, nir.IF)):
                build = _conv_layer if kind == "Conv2d" else _dense_layer
                layer = build((name, nxt), node, after, shape, dt)
                body.append(layer)
                shape = layer.neuron.shape
                k += 2
                continue
            if kind == "Conv2d":
                _fail(name, node, "a convolution must feed LIF or IF neurons")
            rest = inner[k + 1:]
            if rest and not (len(rest) == 1 and isinstance(after, nir.I)):
                what = type(after).__name__
                _fail(nxt, after, _WHY.get(what, f"after {name!r} the hardware takes LIF or "
                      "IF neurons, or the end of the graph (a readout)"))
            weight = np.asarray(node.weight, np.float64)
            if weight.ndim != 2 or shape != (weight.shape[1],):
                _fail(name, node, f"the readout takes {list(weight.shape[1:])} inputs but "
                      f"gets {list(shape)}")
            readout = nn.Linear(weight.shape[1], weight.shape[0],
                                bias=isinstance(node, nir.Affine))
            with torch.no_grad():
                readout.weight.copy_(torch.tensor(weight))
                if readout.bias is not None:
                    readout.bias.copy_(torch.tensor(np.asarray(node.bias, np.float64)))
            if rest:
                r = np.broadcast_to(np.asarray(after.r, np.float64), (weight.shape[0],))
                integrate = torch.tensor(r * dt, dtype=torch.float32)
            break
        if kind in ("SumPool2d", "AvgPool2d"):
            if not body or isinstance(body[-1], (SpikePool2d, Flatten)):
                _fail(name, node, "pooling here takes the spikes of a LIF or IF layer")
            layer, shape = _pool(name, node, shape)
            body.append(layer)
        elif kind == "Flatten":
            start, end = int(node.start_dim), int(node.end_dim)
            if start not in (0, -len(shape)) or end not in (-1, len(shape) - 1):
                _fail(name, node, f"only a full flatten (start_dim 0, end_dim -1) is "
                      f"supported, not {start}..{end}")
            if len(shape) > 1:
                body.append(Flatten())
                shape = (int(np.prod(shape)),)
        elif kind in _NEURONS:
            _fail(name, node, "neurons need a synapse (Affine, Linear or Conv2d) in front")
        elif kind in ("I",):
            _fail(name, node, "an integrator is only the readout: Affine -> I -> Output")
        else:
            _fail(name, node, _WHY.get(kind, "no hardware for this node type"))
        k += 1
    if not any(isinstance(m, (DALIFLinear, DALIFConv2d)) for m in body):
        raise ConfigError("the NIR graph has no LIF or IF layer: nothing for the hardware")
    if readout is None and isinstance(body[-1], (SpikePool2d, Flatten)):
        raise ConfigError(f"the NIR graph ends in {type(body[-1]).__name__}: it must end in "
                          "LIF or IF neurons, an Affine or Linear, or an Affine -> I")
    model = DALIFSequential(in_shape, body, readout=readout, integrate=integrate)
    model.nir_source = {"graph": copy.deepcopy(source), "dt": float(dt),
                        "state": {k: v.clone() for k, v in model.state_dict().items()}}
    return model.eval()


# -- export --------------------------------------------------------------------------------------

def _unchanged(model) -> bool:
    source = getattr(model, "nir_source", None)
    if not source:
        return False
    state = model.state_dict()
    return state.keys() == source["state"].keys() and all(
        torch.equal(state[k], source["state"][k]) for k in state)


def _neuron_node(neuron, dt: float):
    import nir

    shape = neuron.shape
    alpha = neuron.per_neuron(neuron.alpha).detach().double().numpy()
    beta = neuron.per_neuron(neuron.beta).detach().double().numpy()
    threshold = neuron.per_neuron(neuron.threshold.detach().double()).numpy()
    metadata = {RESET_KEY: "soft"} if neuron.reset == "soft" else {}
    if np.all(beta == 1.0):
        return nir.IF(r=(alpha / dt).astype(np.float32),
                      v_threshold=threshold.astype(np.float32),
                      v_reset=np.zeros(shape, np.float32), metadata=metadata)
    if np.any(beta >= 1.0):
        raise ConfigError("a layer mixes beta = 1 and beta < 1: NIR's LIF needs a finite tau "
                          "for every neuron")
    tau = dt / (1.0 - beta)
    return nir.LIF(tau=tau.astype(np.float32), r=(alpha * tau / dt).astype(np.float32),
                   v_leak=np.zeros(shape, np.float32), v_threshold=threshold.astype(np.float32),
                   v_reset=np.zeros(shape, np.float32), metadata=metadata)


def _f32(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def to_nir(model, dt: float = DT):
    """A dalif-hw model (:class:`~dalif_hw.model.DALIFSequential`, ``DALIFMLP`` or
    ``DALIFConvNet``) as a ``nir.NIRGraph``. An imported, unchanged model gives back its source
    graph. A readout becomes an Affine whose output is the current per timestep (the MLP's and
    ConvNet's mean over time, and the hardware's sum, rank the classes alike).

    Raises
    ------
    ConfigError
        For what NIR cannot say: max pooling, a layer mixing beta = 1 with beta < 1.
    """
    import nir

    if not dt > 0:
        raise ConfigError(f"dt must be positive, not {dt!r}")
    if _unchanged(model) and model.nir_source["dt"] == dt:
        return copy.deepcopy(model.nir_source["graph"])
    if isinstance(model, DALIFMLP):
        body, shape = list(model.hidden), (model.sizes[0],)
    elif isinstance(model, (DALIFConvNet, DALIFSequential)):
        body, shape = list(model.body), model.in_shape
    else:
        raise ConfigError(f"to_nir takes a DALIFSequential, DALIFMLP or DALIFConvNet, not "
                          f"{type(model).__name__}")
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
    names = ["input"]

    def add(label, node):
        name = f"{len(names) - 1}_{label}"
        nodes[name] = node
        names.append(name)

    for module in body:
        if isinstance(module, SEWBlock):
            raise ConfigError("a residual block (SEWBlock) does not export to NIR yet: the "
                              "export writes chains")
        if isinstance(module, DALIFLinear):
            weight = _f32(module.linear.weight)
            bias = module.linear.bias
            add("affine", nir.Affine(weight=weight, bias=_f32(bias)) if bias is not None else
                nir.Linear(weight=weight))
            add("lif", _neuron_node(module.neuron, dt))
            shape = module.neuron.shape
        elif isinstance(module, DALIFConv2d):
            conv = module.conv
            bias = _f32(conv.bias) if conv.bias is not None else np.zeros(conv.out_channels,
                                                                          np.float32)
            add("conv", nir.Conv2d(input_shape=np.array(shape[1:]), weight=_f32(conv.weight),
                                   stride=np.array(conv.stride), padding=np.array(conv.padding),
                                   dilation=np.ones(2, np.int64), groups=1, bias=bias))
            add("lif", _neuron_node(module.neuron, dt))
            shape = module.neuron.shape
        elif isinstance(module, SpikePool2d):
            if module.kind == "max":
                raise ConfigError("max pooling has no NIR node (NIR has SumPool2d and "
                                  "AvgPool2d): this model cannot be exported")
            window = np.array(module.window)
            node = nir.SumPool2d if module.kind == "sum" else nir.AvgPool2d
            add(f"{module.kind}pool", node(kernel_size=window, stride=window,
                                           padding=np.zeros(2, np.int64)))
            shape = module.shape(shape).out_shape
        elif isinstance(module, Flatten):
            add("flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0,
                                       end_dim=-1))
            shape = (int(np.prod(shape)),)
    readout = model.readout
    if readout is not None:
        weight = _f32(readout.weight)
        add("readout", nir.Affine(weight=weight, bias=_f32(readout.bias)) if readout.bias
            is not None else nir.Linear(weight=weight))
        gain = getattr(model, "integrate", None)
        if gain is not None:
            add("integrator", nir.I(r=(_f32(gain) / dt).astype(np.float32)))
    nodes["output"] = nir.Output(output_type={"output": np.array(
        (readout.out_features,) if readout is not None else shape)})
    names.append("output")
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])))
    return graph



def save_model(path, model: DALIFSequential, T: int | None = None) -> None:
    """Write an imported model as a checkpoint (``python -m dalif_hw.nir import``): its source
    graph (the ``.nir`` bytes), dt, T if known, and its parameters."""
    from ..core.files import atomic_path
    from ..model.checkpoint import CHECKPOINT_FORMAT

    source = model.nir_source
    checkpoint = {"format": CHECKPOINT_FORMAT, "model": "nir",
                  "nir": torch.frombuffer(bytearray(graph_bytes(source["graph"])),
                                          dtype=torch.uint8),
                  "dt": source["dt"], "state_dict": model.state_dict(),
                  "encoding": {"kind": "spikes", "T": T} if T else None, "T": T}
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_model_checkpoint(checkpoint: dict) -> DALIFSequential:
    """The model of a checkpoint written by :func:`save_model` (its source graph rebuilt,
    then its parameters loaded)."""
    graph = graph_from_bytes(bytes(checkpoint["nir"].numpy().tobytes()))
    model = from_nir(graph, dt=float(checkpoint["dt"]))
    source = model.nir_source
    model.load_state_dict(checkpoint["state_dict"])
    model.nir_source = source
    return model



def load_checkpoint(path) -> tuple[nn.Module, dict]:
    """Load any checkpoint: a model trained here (:func:`dalif_hw.model.checkpoint.load_checkpoint`)
    or one imported from NIR (``python -m dalif_hw.nir import``, :func:`save_model`): the
    model in eval mode and the checkpoint dictionary (an imported model may have no ``T``
    and ``encoding``: None)."""
    from ..model.checkpoint import build_checkpoint, read_checkpoint

    checkpoint = read_checkpoint(path)
    if checkpoint.get("model") != "nir":
        return build_checkpoint(checkpoint, path), checkpoint
    try:
        return load_model_checkpoint(checkpoint).eval(), checkpoint
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = (str(exc).splitlines() or [""])[0][:160]
        raise ConfigError(f"checkpoint {str(path)!r} does not describe a DA-LIF network "
                          f"({type(exc).__name__}: {first})") from None
