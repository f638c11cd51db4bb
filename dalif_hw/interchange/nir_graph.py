"""NIR (the Neuromorphic Intermediate Representation) in and out: ``from_nir``, ``to_nir``.

A NIR ``LIF`` node, ``tau dv/dt = (v_leak - v) + r I``, fire when ``v > v_threshold``, then
``v = v_reset``, discretised by forward Euler with step ``dt`` (as snnTorch and SpikingJelly
write it, dt = 1e-4), is a DA-LIF neuron with hard reset (docs/nir.md has the whole table)::

    beta = 1 - dt / tau        alpha = r dt / tau        bias += v_leak / r

``IF`` (``dv/dt = r I``) is ``beta = 1``, ``alpha = r dt``. An alpha above 1 folds into the
incoming weights and bias (a dense layer's rows, a convolution's channels); an alpha within
float32 rounding of 1 is 1. The neurons fire on ``V > theta`` as NIR's do (``strict``).

A graph runs forward from one Input to one Output (SPEC 7): synapse + neuron pairs (Affine
or Linear, or Conv2d, then LIF or IF), pooling (SumPool2d, AvgPool2d) and Flatten; it may end
in a LIF (the output is its spikes), an Affine (its current) or an Affine -> I (its
integral). It may branch and merge, as NIR says a node sums its inputs: a node fed by several
spike streams (a SEW block's ADD) takes their sum, an ``add`` stage; a LIF or IF node fed by
several synapses (ResNet's shortcut before the neurons) is one layer over their inputs
concatenated, their kernels placed in one frame (they must share stride, input H x W and
output shape). Anything else is refused with one line naming the node and why.

The imported model keeps the graph it came from (``model.nir_source``): as long as its
parameters are those derived at import, :func:`to_nir` gives back the same nodes, edges and
arrays; after training it exports what the model now computes.
"""

from __future__ import annotations

import copy
import functools
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.config import RESETS, ConfigError, check_input_file
from ..core.conv import ConvShape
from ..model import (
    INPUT,
    DALIFConv2d,
    DALIFGraph,
    DALIFLinear,
    Flatten,
    SpikeAdd,
    SpikePool2d,
    graph_of,
)
from ..model.graph import out_shape as graph_out_shape

__all__ = ["DT", "TimeStep", "time_step", "from_nir", "to_nir", "read_graph", "save_model",
           "load_model_checkpoint", "load_checkpoint"]

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
    check_input_file(path, "NIR file")
    _check_declared_size(path)
    try:
        # nir.read infers shapes as it builds the nodes; what it divides by (a stride of 0)
        # is the file's: the failure below says so in one line, without numpy's warning.
        with np.errstate(all="ignore"):
            return nir.read(path)
    except Exception as exc:  # h5py and nir raise many kinds for a file that is not NIR
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise ConfigError(f"NIR file {str(path)!r} cannot be read by nir.read "
                          f"({type(exc).__name__}: {first})") from None


#: The most bytes the arrays of a .nir file may declare, together (1 GiB).
MAX_GRAPH_BYTES = 1 << 30


def _check_declared_size(path: Path) -> None:
    """Refuse a .nir file whose datasets declare more than :data:`MAX_GRAPH_BYTES`, from
    their headers, before nir.read allocates them (an HDF5 dataset may declare a size it
    never wrote)."""
    import h5py

    total = []

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            total.append((int(np.prod(item.shape, dtype=object)) * item.dtype.itemsize, name))

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except Exception:   # not HDF5: nir.read says so
        return
    size = sum(n for n, _ in total)
    if size > MAX_GRAPH_BYTES:
        biggest = max(total)[1]
        raise ConfigError(f"NIR file {str(path)!r} declares {size / 2**30:.3g} GiB of arrays "
                          f"({biggest!r} the largest): more than the "
                          f"{MAX_GRAPH_BYTES / 2**30:g} GiB a graph may hold")


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

def _graph(graph) -> tuple[dict, dict, dict, str, str]:
    """The nodes, each node's predecessors and successors (NIR's order), the Input and the
    Output, checking that the graph is a DAG from its one Input to its one Output."""
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
        if b not in after[a]:
            after[a].append(b)
            before[b].append(a)
    _refuse_cycles(nodes, after, inputs[0])
    reached = _reach(inputs[0], after)
    leads = _reach(outputs[0], before)
    for name in nodes:
        if name not in reached:
            _fail(name, nodes[name], "no path from the Input reaches it")
        if name not in leads:
            _fail(name, nodes[name], "its output goes nowhere (no path to the Output)")
    return nodes, before, after, inputs[0], outputs[0]


def _reach(start: str, step: dict) -> set:
    seen, todo = {start}, [start]
    while todo:
        for nxt in step[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _order(nodes: dict, before: dict, after: dict) -> list[str]:
    """The nodes in an order where each comes after its predecessors (the file's order where
    it allows)."""
    waiting = {n: len(before[n]) for n in nodes}
    ready = [n for n in nodes if not waiting[n]]
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for nxt in after[name]:
            waiting[nxt] -= 1
            if not waiting[nxt]:
                ready.append(nxt)
    return order


def _refuse_cycles(nodes: dict, after: dict, start: str) -> None:
    """Fail on the first edge that comes back to a node on its own path (recurrence); depth
    first without recursion (a long chain is no stack overflow)."""
    on_path, done = set(), set()
    stack = [(start, iter(after[start]))]
    on_path.add(start)
    while stack:
        name, successors = stack[-1]
        nxt = next(successors, None)
        if nxt is None:
            stack.pop()
            on_path.discard(name)
            done.add(name)
        elif nxt in on_path:
            _fail(nxt, nodes[nxt], f"a recurrent edge from {nxt if nxt == name else name!r} "
                  "comes back to it: the hardware runs layers forward only")
        elif nxt not in done:
            on_path.add(nxt)
            stack.append((nxt, iter(after[nxt])))


class TimeStep(float):
    """A time step that says where it came from (``reason``), for the messages."""

    def __new__(cls, value: float, reason: str):
        step = super().__new__(cls, value)
        step.reason = reason
        return step

    def __str__(self) -> str:
        return f"dt = {float(self):g} ({self.reason})"


def time_step(graph, dt: float | None = None) -> TimeStep:
    """The Euler step of a graph's time constants and why: ``dt`` if given, else what the
    file or its writer says (NIR stores no time step; each framework has its convention).

    - the graph's metadata ``dt`` (dalif-hw writes it);
    - LIF nodes with ``r = tau / dt`` for one dt throughout: snnTorch's and SpikingJelly's
      convention (their input enters unscaled; they write dt = 1e-4);
    - IF nodes with ``r = 1`` and no LIF: discrete steps, dt = 1 (sinabs, Norse, NIR's own
      examples);
    - LIF nodes with ``r = 1``: Norse's LIFBox (``tau = 1 / tau_mem_inv``), at Norse's
      default dt = 1e-3;
    - else the default, 1e-4.
    """
    import nir

    if dt is not None:
        if not (dt > 0 and np.isfinite(dt)):
            raise ConfigError(f"dt must be a positive number, not {dt!r}")
        return TimeStep(dt, "given")
    graph = read_graph(graph)
    given = (graph.metadata or {}).get("dt")
    if given is not None:
        value = float(np.asarray(given).reshape(-1)[0])
        if not (value > 0 and np.isfinite(value)):
            raise ConfigError(f"the NIR graph's metadata dt {value!r} is not a positive number")
        return TimeStep(value, "the graph's metadata")
    lifs = [n for n in graph.nodes.values() if isinstance(n, nir.LIF)]
    ifs = [n for n in graph.nodes.values() if isinstance(n, nir.IF)]
    ratios = []
    for node in lifs:
        tau = np.asarray(node.tau, np.float64).reshape(-1)
        r = np.broadcast_to(np.asarray(node.r, np.float64).reshape(-1), tau.shape)
        finite = np.isfinite(tau) & np.isfinite(r) & (r > 0)
        ratios.extend((tau[finite] / r[finite]).tolist())
    ones = all(np.all(np.asarray(n.r, np.float64) == 1) for n in lifs + ifs)
    if lifs and ratios and np.allclose(ratios, ratios[0], rtol=1e-5) and \
            not (ones and not np.isclose(ratios[0], DT, rtol=1e-5)):
        return TimeStep(ratios[0], "its LIF nodes have r = tau / dt throughout, snnTorch's and "
                        "SpikingJelly's way")
    if ifs and not lifs and ones:
        return TimeStep(1.0, "its IF nodes have r = 1: discrete steps, as sinabs and Norse "
                        "write them")
    if lifs and ones:
        return TimeStep(1e-3, "its LIF nodes have r = 1, as Norse writes them: Norse's default")
    return TimeStep(DT, "the default: the file does not say")


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


def _neuron_arrays(name: str, node, shape: tuple, dt: "TimeStep | float") -> dict:
    """alpha, beta, threshold, bias offset (v_leak / r), reset of a LIF or IF node, each
    broadcast to the neuron ``shape``, in float64."""
    import nir

    def full(key, endless=False):
        value = np.asarray(getattr(node, key), np.float64)
        try:
            value = np.broadcast_to(value, shape).copy()
        except ValueError:
            _fail(name, node, f"{key} has shape {list(value.shape)}, the neurons "
                  f"{list(shape)}")
        bad = np.isnan(value) | (np.isinf(value) if not endless else np.isneginf(value))
        if bad.any():
            _fail(name, node, f"{key} {value[bad][0]:g} is not a finite number")
        return value

    threshold = full("v_threshold")
    r = full("r", endless=isinstance(node, nir.LIF))
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
        tau, leak = full("tau", endless=True), full("v_leak")
        if np.any(tau <= 0):
            _fail(name, node, f"tau {tau.min():g} is not positive")
        if np.any(np.isinf(r) & ~np.isinf(tau)):
            _fail(name, node, "r is infinite where tau is finite")
        if np.any(tau < dt):
            _fail(name, node, f"tau {tau.min():g} is below {dt}: the Euler step would "
                  "overshoot (beta = 1 - dt / tau < 0); give the time step the file was "
                  "written with, which is below every tau (--dt)")
        # snnTorch writes a Leaky of beta = 1 as tau = r = inf (r = tau / dt): an IF neuron
        # whose input enters unscaled. A finite r with an infinite tau lets nothing in.
        endless = np.isinf(tau)
        beta = np.where(endless, 1.0, 1.0 - dt / np.where(endless, 1.0, tau))
        alpha = np.where(endless, np.isinf(r).astype(np.float64),
                         np.where(endless, 0.0, r) * dt / np.where(endless, 1.0, tau))
        if np.any((leak != 0) & ((r == 0) | np.isinf(r))):
            _fail(name, node, "v_leak is not 0 where r is 0 or infinite: no input current to "
                  "fold it into")
        offset = np.divide(leak, r, out=np.zeros(shape), where=(r != 0) & ~np.isinf(r))
    alpha = np.where(np.abs(alpha - 1.0) <= ONE_TOLERANCE, 1.0, alpha)
    return {"alpha": alpha, "beta": beta, "threshold": threshold, "offset": offset,
            "reset": _reset_of(name, node)}


def _reset_of(name: str, node) -> str:
    """The reset mode a neuron node's metadata names (ours, :data:`RESET_KEY`), else NIR's
    own: to v_reset, that is ``hard``."""
    reset = (node.metadata or {}).get(RESET_KEY, "hard")
    reset = reset.decode() if isinstance(reset, bytes) else str(reset)
    if reset not in RESETS:
        _fail(name, node, f"metadata {RESET_KEY} {reset!r} is not one of {', '.join(RESETS)}")
    return reset


def _fixed_neuron_kwargs(arrays: dict, gain: np.ndarray) -> dict:
    return {"granularity": "neuron", "learn_alpha": False, "learn_beta": False,
            "alpha": torch.tensor(arrays["alpha"] / gain, dtype=torch.float32),
            "beta": torch.tensor(arrays["beta"], dtype=torch.float32),
            "threshold": torch.tensor(arrays["threshold"], dtype=torch.float32),
            "reset": arrays["reset"], "strict": True}


def _finite(name: str, node, key: str, values: np.ndarray) -> np.ndarray:
    """``values``, refused naming the first that is NaN or infinite."""
    bad = ~np.isfinite(values)
    if bad.any():
        where = [int(i) for i in np.argwhere(bad)[0]]
        _fail(name, node, f"{key} {values[bad][0]:g} at {where} is not a finite number")
    return values


def _dense_synapse(name: str, synapse, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The weight [out, in] and bias [out] of an Affine or Linear node fed ``shape``."""
    import nir

    weight = _finite(name, synapse, "weight", np.asarray(synapse.weight, np.float64))
    if weight.ndim != 2:
        _fail(name, synapse, f"weight must be 2-d [out, in], not {list(weight.shape)}")
    if shape != (weight.shape[1],):
        _fail(name, synapse, f"it takes {weight.shape[1]} inputs but gets "
              f"{list(shape)}" + (" (a Flatten is missing)" if len(shape) > 1 else ""))
    bias = _finite(name, synapse, "bias", np.asarray(synapse.bias, np.float64).reshape(-1)) \
        if isinstance(synapse, nir.Affine) else np.zeros(1)
    if bias.size not in (1, weight.shape[0]):
        _fail(name, synapse, f"bias has {bias.size} values for {weight.shape[0]} outputs")
    return weight, np.broadcast_to(bias, weight.shape[:1])


def _by_stream(blocks: list, streams: list) -> tuple[list, list]:
    """The weight blocks of synapses that read one stream summed (W1 x + W2 x), in the order
    the streams first appear; and those streams."""
    unique = list(dict.fromkeys(streams))
    return [sum(b for b, s in zip(blocks, streams) if s == u) for u in unique], unique


def _dense_layer(neuron_name, neuron, parts, dt) -> tuple[DALIFLinear, list]:
    """One dense layer of the synapses ``parts`` [(name, node, input shape, stream)] into one
    LIF or IF node: their weights side by side over their streams concatenated, their biases
    summed; and those streams."""
    synapses = [_dense_synapse(*part[:3]) for part in parts]
    outs = {w.shape[0] for w, _ in synapses}
    if len(outs) != 1:
        _fail(neuron_name, neuron, f"its synapses have {sorted(outs)} outputs: they must agree")
    blocks, streams = _by_stream([w for w, _ in synapses], [part[3] for part in parts])
    weight = np.concatenate(blocks, axis=1)
    bias = np.sum([b for _, b in synapses], axis=0)
    out = (weight.shape[0],)
    arrays = _neuron_arrays(neuron_name, neuron, out, dt)
    gain = np.maximum(arrays["alpha"], 1.0)  # alpha above 1 folds into the row
    layer = DALIFLinear(weight.shape[1], weight.shape[0], bias=True,
                        **_fixed_neuron_kwargs(arrays, gain))
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor(weight * gain[:, None]))
        layer.linear.bias.copy_(torch.tensor((bias + arrays["offset"]) * gain))
    return layer, streams


def _conv_synapse(name: str, synapse, shape: tuple) -> tuple:
    """(weight [K, C, KH, KW], stride, padding, bias [K]) of a Conv2d node fed ``shape``."""
    weight = _finite(name, synapse, "weight", np.asarray(synapse.weight, np.float64))
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
        ConvShape(shape, K, weight.shape[2:], stride, padding)
    except ConfigError as exc:
        _fail(name, synapse, str(exc))
    bias = _finite(name, synapse, "bias", np.asarray(synapse.bias, np.float64).reshape(-1))
    if bias.size not in (1, K):
        _fail(name, synapse, f"bias has {bias.size} values for {K} channels")
    return weight, stride, padding, np.broadcast_to(bias, (K,))


def _conv_layer(neuron_name, neuron, parts, dt) -> tuple[DALIFConv2d, list]:
    """One convolution of the Conv2d synapses ``parts`` [(name, node, input shape, stream)]
    into one LIF or IF node, over their streams concatenated along the channels (and those
    streams): each kernel placed in
    the frame that holds them all (a 1 x 1 shortcut is the centre of a 3 x 3 with padding
    1), their biases summed. Synapses of other strides, output sizes or input H x W cannot be
    concatenated and are refused."""
    synapses = [_conv_synapse(*part[:3]) for part in parts]
    (name0, _, shape0, _), (weight0, stride0, _, _) = parts[0], synapses[0]
    out0 = ConvShape(shape0, weight0.shape[0], weight0.shape[2:], stride0, synapses[0][2])
    for (name, node, shape, _), (weight, stride, padding, _) in zip(parts[1:], synapses[1:]):
        out = ConvShape(shape, weight.shape[0], weight.shape[2:], stride, padding)
        why = ("strides" if stride != stride0 else "input H x W" if shape[1:] != shape0[1:]
               else "outputs" if out.out_shape != out0.out_shape else None)
        if why:
            _fail(name, node, f"it and {name0!r} feed {neuron_name!r} with different {why} "
                  f"({list(stride)} / {list(stride0)}, {list(out.out_shape)} / "
                  f"{list(out0.out_shape)}): convolutions into one neuron layer must share "
                  "stride, input H x W and output shape to be one convolution")
    padding = tuple(max(p[a] for _, _, p, _ in synapses) for a in (0, 1))
    reach = tuple(max(w.shape[2 + a] - 1 - p[a] for w, _, p, _ in synapses) for a in (0, 1))
    kernel = (padding[0] + reach[0] + 1, padding[1] + reach[1] + 1)
    K = weight0.shape[0]
    blocks = []
    for weight, _, pad, _ in synapses:
        block = np.zeros((K, weight.shape[1], *kernel))
        top, left = padding[0] - pad[0], padding[1] - pad[1]
        block[:, :, top:top + weight.shape[2], left:left + weight.shape[3]] = weight
        blocks.append(block)
    blocks, streams = _by_stream(blocks, [part[3] for part in parts])
    weight = np.concatenate(blocks, axis=1)
    bias = np.sum([b for *_, b in synapses], axis=0)
    shape = (weight.shape[1], *shape0[1:])
    out = ConvShape(shape, K, kernel, stride0, padding).out_shape
    arrays = _neuron_arrays(neuron_name, neuron, out, dt)
    # A channel shares its kernel and its bias: alpha folds in by the channel's largest.
    gain = np.maximum(arrays["alpha"].reshape(K, -1).max(axis=1), 1.0)
    offset = arrays["offset"].reshape(K, -1)
    if np.any(offset != offset[:, :1]):
        _fail(neuron_name, neuron, "v_leak / r differs within a channel: a convolution's bias "
              "is one per channel")
    layer = DALIFConv2d(shape[0], K, kernel, stride=stride0, padding=padding,
                        input_size=shape[1:], bias=True, **_fixed_neuron_kwargs(
                            arrays, np.broadcast_to(gain[:, None, None], out)))
    with torch.no_grad():
        layer.conv.weight.copy_(torch.tensor(weight * gain[:, None, None, None]))
        layer.conv.bias.copy_(torch.tensor((bias + offset[:, 0]) * gain))
    return layer, streams


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


class _Body:
    """The modules of the imported graph as they are made: per NIR node that carries spikes,
    its body index (``INPUT``: the graph's input) and shape."""

    def __init__(self, in_shape):
        self.modules, self.inputs, self.shapes, self.names = [], [], [], []
        self.stream = {}  # NIR node name -> body index
        self.in_shape = in_shape
        self.adds = {}    # the streams an add sums -> its index

    def shape(self, index: int) -> tuple:
        return self.in_shape if index == INPUT else self.shapes[index]

    def add(self, name, node, module, inputs) -> int:
        try:
            self.shapes.append(graph_out_shape(module, [self.shape(i) for i in inputs]))
        except (ValueError, ConfigError) as exc:
            _fail(name, node, str(exc))
        self.modules.append(module)
        self.inputs.append(tuple(inputs))
        self.names.append(name)
        return len(self.modules) - 1

    def join(self, name, node, preds, nodes) -> int:
        """The stream into ``name``: its one predecessor's, or the spikes of its several
        predecessors added (NIR sums a node's inputs; SPEC 7's add)."""
        for pred in preds:
            if pred not in self.stream:
                what = type(nodes[pred]).__name__
                _fail(name, node, f"it takes {pred!r} ({what}), which carries no spikes: "
                      + ("a convolution or an affine must feed LIF or IF neurons"
                         if what in _SYNAPSES else "no hardware for this input"))
        streams = [self.stream[p] for p in preds]
        if len(streams) == 1:
            return streams[0]
        if len(set(streams)) != len(streams):
            _fail(name, node, f"it adds a stream to itself ({', '.join(preds)}): no hardware "
                  "doubles spikes")
        key = tuple(sorted(streams))
        if key not in self.adds:
            self.adds[key] = self.add(name, node, SpikeAdd(), streams)
        return self.adds[key]


def from_nir(graph, dt: float | None = None, T: int | None = None) -> DALIFGraph:
    """A NIR graph (or a ``.nir`` path) as a :class:`~dalif_hw.model.DALIFGraph`: its forward
    takes [T, batch, *input shape] and returns the last node's output per timestep.

    ``dt`` is the Euler step of the time constants; by default what the file or its writer
    says (:func:`time_step`). The model's ``nir_source`` keeps it and why (``dt_reason``). A
    layer none of whose neurons can fire within ``T`` timesteps (default :data:`HORIZON`) at
    that dt is refused, naming the dt.

    The graph may branch and merge (SPEC 7): a node fed by several spike streams adds them
    (a spike add), a LIF or IF node fed by several synapses sums their currents (one layer
    over their inputs concatenated).

    Raises
    ------
    ConfigError
        One line naming the node and why, for anything the hardware cannot run.
    """
    import nir

    source = read_graph(graph)
    dt = time_step(source, dt)
    nodes, before, after, first, last = _graph(source)
    shape = _shape_of(nodes[first].input_type)
    if not shape:
        raise ConfigError(f"NIR node {first!r} (Input) has no shape: the input shape "
                          "cannot be inferred")
    # A leading batch dimension of 1 (Norse, Rockpool: [1, N] or [1, C, H, W]) is dropped;
    # Flatten dimensions then count from after it.
    batched = len(shape) in (2, 4) and shape[0] == 1
    shape = shape[1:] if batched else shape
    body = _Body(shape)
    body.stream[first] = INPUT
    readout, integrate, readout_stream = None, None, None
    for name in _order(nodes, before, after):
        node, kind, preds = nodes[name], type(nodes[name]).__name__, before[name]
        if name == first:
            continue
        if kind in _SYNAPSES:
            succ = after[name]
            ends = [n for n in succ if isinstance(nodes[n], (nir.LIF, nir.IF, nir.I,
                                                             nir.Output))]
            if len(succ) != 1:
                _fail(name, node, f"its current feeds {len(succ)} nodes "
                      f"({', '.join(succ)}): a synapse here belongs to one neuron layer")
            if not ends:
                what = type(nodes[succ[0]]).__name__
                _fail(succ[0], nodes[succ[0]], "a convolution must feed LIF or IF neurons"
                      if kind == "Conv2d" else _WHY.get(what, f"after {name!r} the hardware "
                      "takes LIF or IF neurons, or the end of the graph (a readout)"))
            if kind == "Conv2d" and not isinstance(nodes[succ[0]], (nir.LIF, nir.IF)):
                _fail(name, node, "a convolution must feed LIF or IF neurons")
            continue  # made with the node it feeds
        if kind in _NEURONS:
            synapses = [p for p in preds if type(nodes[p]).__name__ in _SYNAPSES]
            if len(synapses) != len(preds):
                _fail(name, node, "neurons need a synapse (Affine, Linear or Conv2d) in front"
                      + (f", not {', '.join(sorted(set(preds) - set(synapses)))}"
                         if synapses else ""))
            convs = {type(nodes[p]).__name__ == "Conv2d" for p in synapses}
            if len(convs) > 1:
                _fail(name, node, "it is fed by convolutions and affines at once: one neuron "
                      "layer here has synapses of one kind")
            parts = []
            for p in synapses:
                stream = body.join(p, nodes[p], before[p], nodes)
                parts.append((p, nodes[p], body.shape(stream), stream))
            build = _conv_layer if convs == {True} else _dense_layer
            layer, streams = build(name, node, parts, dt)
            body.stream[name] = body.add(name, node, layer, streams)
        elif kind in ("SumPool2d", "AvgPool2d"):
            stream = body.join(name, node, preds, nodes)
            if stream == INPUT or isinstance(body.modules[stream], (SpikePool2d, Flatten)):
                _fail(name, node, "pooling here takes the spikes of a LIF or IF layer or an "
                      "add")
            layer, _ = _pool(name, node, body.shape(stream))
            body.stream[name] = body.add(name, node, layer, [stream])
        elif kind == "Flatten":
            stream = body.join(name, node, preds, nodes)
            rank = len(body.shape(stream))
            start, end = int(node.start_dim), int(node.end_dim)
            if batched:
                start, end = max(start - 1, 0) if start >= 0 else start, \
                    end - 1 if end >= 0 else end
            if start not in (0, -rank) or end not in (-1, rank - 1):
                _fail(name, node, f"only a full flatten (start_dim 0, end_dim -1) is "
                      f"supported, not {start}..{end}")
            body.stream[name] = stream if rank == 1 else \
                body.add(name, node, Flatten(), [stream])
        elif kind in ("I", "Output"):
            synapses = [p for p in preds if type(nodes[p]).__name__ in _SYNAPSES]
            if kind == "I" and (len(synapses) != 1 or len(preds) != 1 or after[name] != [last]):
                _fail(name, node, "an integrator is only the readout: Affine -> I -> Output")
            if synapses and len(preds) != 1:
                _fail(name, node, f"it takes {', '.join(preds)}: the readout here is one "
                      "Affine or Linear")
            if synapses:
                readout_name = synapses[0]
                readout_stream = body.join(readout_name, nodes[readout_name],
                                           before[readout_name], nodes)
                readout = _readout(readout_name, nodes[readout_name],
                                   body.shape(readout_stream))
                if kind == "I":
                    r = np.broadcast_to(np.asarray(node.r, np.float64),
                                        (readout.out_features,))
                    integrate = torch.tensor(r * dt, dtype=torch.float32)
            elif kind == "Output" and not (len(preds) == 1 and isinstance(nodes[preds[0]],
                                                                           nir.I)):
                readout_stream = body.join(name, node, preds, nodes)
        else:
            _fail(name, node, _WHY.get(kind, "no hardware for this node type"))
    if not any(isinstance(m, (DALIFLinear, DALIFConv2d)) for m in body.modules):
        raise ConfigError("the NIR graph has no LIF or IF layer: nothing for the hardware")
    if readout is None and isinstance(body.modules[-1], (SpikePool2d, Flatten)):
        raise ConfigError(f"the NIR graph ends in {type(body.modules[-1]).__name__}: it must "
                          "end in LIF or IF neurons, an Affine or Linear, or an Affine -> I")
    if readout_stream != len(body.modules) - 1:  # by the order, the output's stream is last
        raise ConfigError("the NIR graph's output is not its last layer")
    for name, layer in zip(body.names, body.modules):
        if isinstance(layer, (DALIFLinear, DALIFConv2d)):
            _refuse_silent(name, nodes[name], layer, dt, T)
    model = DALIFGraph(body.in_shape, body.modules, body.inputs, readout=readout,
                       integrate=integrate)
    model.nir_source = {"graph": copy.deepcopy(source), "dt": float(dt), "dt_reason": dt.reason,
                        "state": {k: v.clone() for k, v in model.state_dict().items()}}
    return model.eval()


#: The timesteps within which some neuron of every layer must be able to fire, where the
#: import does not know T.
HORIZON = 1000


@torch.no_grad()
def _refuse_silent(name: str, node, layer, dt: TimeStep, T: int | None) -> None:
    """Refuse a layer none of whose neurons can fire within T timesteps (default
    :data:`HORIZON`): with every input spiking at every timestep, the most current a neuron
    gets is its bias and positive weights, and its membrane after T steps at most alpha times
    that times 1 + beta + ... + beta**(T-1)."""
    synapse = layer.linear if isinstance(layer, DALIFLinear) else layer.conv
    weight = synapse.weight.double()
    most = weight.clamp(min=0).reshape(weight.shape[0], -1).sum(1)
    if synapse.bias is not None:
        most = most + synapse.bias.double()
    neuron = layer.neuron
    if isinstance(layer, DALIFConv2d):
        most = most.reshape((-1,) + (1,) * (len(neuron.shape) - 1))
    alpha = neuron.per_neuron(neuron.alpha).double()
    beta = neuron.per_neuron(neuron.beta).double()
    theta = neuron.per_neuron(neuron.threshold).double()
    T = HORIZON if T is None else T
    drive = alpha * torch.broadcast_to(most, alpha.shape)
    steps = torch.where(beta < 1, (1 - beta ** T) / (1 - beta).clamp(min=1e-300),
                        torch.full_like(beta, float(T)))
    reach = drive * steps
    if bool((reach <= theta).all()):
        best = int(torch.argmax(reach - theta))
        _fail(name, node, f"no neuron can fire within {T} timesteps at {dt}: the highest "
              f"membrane within reach is {float(reach.flatten()[best]):.3g}, its threshold "
              f"{float(theta.flatten()[best]):.3g}; give the time step the file was written "
              "with (--dt; sinabs and Norse write IF neurons with r = 1 for dt = 1)")


def _readout(name: str, node, shape: tuple) -> nn.Linear:
    """The readout of an Affine or Linear node at the end of the graph."""
    import nir

    weight, bias = _dense_synapse(name, node, shape)
    readout = nn.Linear(weight.shape[1], weight.shape[0], bias=isinstance(node, nir.Affine))
    with torch.no_grad():
        readout.weight.copy_(torch.tensor(weight))
        if readout.bias is not None:
            readout.bias.copy_(torch.tensor(bias))
    return readout


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
    # NIR's neurons reset to v_reset (hard); any other mode rides in the metadata.
    metadata = {RESET_KEY: neuron.reset} if neuron.reset != "hard" else {}
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


class _Export:
    """The NIR graph as it is written: its nodes and edges, and per body index (and the
    input) the NIR nodes whose outputs, summed, are that module's stream."""

    def __init__(self, view, dt: float, nodes: dict):
        self.view, self.dt, self.nodes, self.edges = view, dt, nodes, []
        self.producers = {INPUT: ["input"]}

    def node(self, label: str, made, feeds: list) -> str:
        name = f"{len(self.nodes) - 1}_{label}"
        self.nodes[name] = made
        self.edges.extend((src, name) for src in feeds)
        return name


@functools.singledispatch
def export_module(module, k: int, given: tuple, out: _Export) -> list:
    """Write body module ``k`` (taking ``given``) into ``out``; return the NIR nodes that
    carry its stream. Registered per module type, beside the import."""
    raise ConfigError(f"{type(module).__name__} has no NIR form here")


@export_module.register
def _(module: SpikeAdd, k, given, out):  # no node: NIR sums a node's inputs
    producers = [name for i in given for name in out.producers[i]]
    if len(set(producers)) != len(producers):
        raise ConfigError(f"body[{k}] adds a stream to itself: NIR cannot say so")
    return producers


@export_module.register(DALIFLinear)
@export_module.register(DALIFConv2d)
def _(module, k, given, out):
    if getattr(module, "current_pool", None) is not None:
        raise ConfigError("max pooling of currents (current_pool) has no NIR node (NIR has "
                          "SumPool2d and AvgPool2d): this model cannot be exported")
    synapses = [out.node(label, made, out.producers[i]) for i, (label, made) in zip(
        given, _split(module, [out.view.shape_of(i) for i in given]))]
    return [out.node("lif", _neuron_node(module.neuron, out.dt), synapses)]


@export_module.register
def _(module: SpikePool2d, k, given, out):
    import nir

    if module.kind == "max":
        raise ConfigError("max pooling has no NIR node (NIR has SumPool2d and AvgPool2d): "
                          "this model cannot be exported")
    window = np.array(module.window)
    kind = nir.SumPool2d if module.kind == "sum" else nir.AvgPool2d
    return [out.node(f"{module.kind}pool", kind(kernel_size=window, stride=window,
                                                padding=np.zeros(2, np.int64)),
                     out.producers[given[0]])]


@export_module.register
def _(module: Flatten, k, given, out):
    import nir

    return [out.node("flatten", nir.Flatten(input_type={"input": np.array(
        out.view.shape_of(given[0]))}, start_dim=0, end_dim=-1), out.producers[given[0]])]


def to_nir(model, dt: float | None = None):
    """A dalif-hw model (:class:`~dalif_hw.model.DALIFGraph`, ``DALIFMLP`` or
    ``DALIFConvNet``, residual blocks included) as a ``nir.NIRGraph``. An imported, unchanged
    model gives back its source graph. A readout becomes an Affine whose output is the
    current per timestep (the MLP's and ConvNet's mean over time, and the hardware's sum, rank
    the classes alike). A spike add becomes edges (NIR sums a node's inputs); a layer of
    several inputs one synapse node per input, all into its LIF or IF node. ``dt`` (an
    imported model's own by default, else 1e-4) goes into the graph's metadata.

    Raises
    ------
    ConfigError
        For what NIR cannot say: max pooling, a layer mixing beta = 1 with beta < 1.
    """
    import nir

    if dt is None:   # an imported model's own, else the default
        dt = (getattr(model, "nir_source", None) or {}).get("dt", DT)
    dt = time_step(None, dt)
    if _unchanged(model) and model.nir_source["dt"] == dt:
        return copy.deepcopy(model.nir_source["graph"])
    try:
        view = graph_of(model)
    except (AttributeError, TypeError):
        raise ConfigError(f"to_nir takes a DALIFGraph, DALIFMLP or DALIFConvNet, not "
                          f"{type(model).__name__}") from None
    for key, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ConfigError(f"the model's {key} holds NaN or infinite values: nothing to "
                              "export")
    out = _Export(view, dt, {"input": nir.Input(input_type={"input": np.array(view.in_shape)})})
    for k, (module, given) in enumerate(zip(view.body, view.inputs)):
        out.producers[k] = export_module(module, k, given, out)
    nodes, edges, node, producers = out.nodes, out.edges, out.node, out.producers
    last = producers[len(view.body) - 1 if view.body else INPUT]
    readout = view.readout
    if readout is not None:
        weight = _f32(readout.weight)
        last = [node("readout", nir.Affine(weight=weight, bias=_f32(readout.bias))
                     if readout.bias is not None else nir.Linear(weight=weight), last)]
        if view.integrate is not None:
            last = [node("integrator", nir.I(r=(_f32(view.integrate) / dt).astype(
                np.float32)), last)]
    shape = (readout.out_features,) if readout is not None else view.shapes[-1]
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.extend((src, "output") for src in last)
    # NIR has no time step: the metadata says which the time constants were written with.
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": float(dt)})


def _split(module, shapes: list) -> list:
    """A dense or conv2d layer's synapse as one NIR node per input (its weight's columns or
    input channels; the bias on the first): [(label, node)]."""
    import nir

    if isinstance(module, DALIFLinear):
        weight, bias = _f32(module.linear.weight), module.linear.bias
        sizes = [int(np.prod(s)) for s in shapes]
        parts = np.split(weight, np.cumsum(sizes)[:-1], axis=1)
        bias = _f32(bias) if bias is not None else None
        return [("affine", nir.Affine(weight=w, bias=bias if n == 0 else
                                      np.zeros(w.shape[0], np.float32))
                 if bias is not None else nir.Linear(weight=w)) for n, w in enumerate(parts)]
    conv = module.conv
    bias = _f32(conv.bias) if conv.bias is not None else np.zeros(conv.out_channels,
                                                                  np.float32)
    parts = np.split(_f32(conv.weight), np.cumsum([s[0] for s in shapes])[:-1], axis=1)
    return [("conv", nir.Conv2d(input_shape=np.array(shapes[n][1:]), weight=w,
                                stride=np.array(conv.stride), padding=np.array(conv.padding),
                                dilation=np.ones(2, np.int64), groups=1,
                                bias=bias if n == 0 else np.zeros_like(bias)))
            for n, w in enumerate(parts)]



def save_model(path, model: DALIFGraph, T: int | None = None) -> None:
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


def load_model_checkpoint(checkpoint: dict) -> DALIFGraph:
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
