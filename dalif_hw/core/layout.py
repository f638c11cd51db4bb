"""How the parameters of a neuron array are laid out in its memories.

Neuron ``i`` sits in group ``g = i // P``, lane ``p = i % P``. Every memory word holds the P
lanes of one group, lane p in bits ``[p * width, (p + 1) * width)``, two's complement for
signed values; lanes past the last neuron hold 0.

- ``weights``: A lanes a word (the accumulation lanes, ``acc_lanes``, P unless set), depth
  ``ceil(N / A) * M``: the word at ``g * M + j`` holds the weights from input j to neurons
  ``g * A .. g * A + A - 1`` (so one input spike walks ceil(N / A) consecutive-by-M words).
- ``alpha``, ``beta`` (DB + 1 bits a lane), ``threshold`` and ``bias`` (VB bits a lane; only
  when per neuron and present): depth G, the word at g holds group g.

This module is the one place that knows it: the generator initialises its memories with it,
the packer writes block-RAM init files with it, and test benches address the configuration
port with it.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

from .config import ArrayConfig, signed_range
from .conv import ConvShape
from .params import ConvParams, IntParams, ReadoutParams

__all__ = ["MemorySpec", "Select", "memories", "conv_groups", "conv_pass_groups",
           "conv_channel_groups",
           "pack_words", "hex_lines", "default_params", "memory_bits", "config_writes"]


@dataclasses.dataclass(frozen=True)
class MemorySpec:
    """One memory of a neuron array, with its initial contents.

    Attributes
    ----------
    name : str
    select : int
        Its code on the configuration port's ``sel`` input.
    lane_width : int
        Bits of one lane.
    signed : bool
    depth : int
    lanes : int
    words : list of int
        Initial contents, one unsigned integer a word.
    layout : str
        How neurons, lanes and inputs map to address and bits (for the manifest).
    address : str
        What addresses a word: ``"group"`` (P neurons a word; weights: a group and an
        input), ``"channel"`` (a convolution's per-channel value, one lane) or ``"kernel"``
        (a convolution's weights: word (k // PK C + c) KH + ky, lane (k % PK) KW + kx, PK
        the output channels a spike reaches at once).
    """

    name: str
    select: int
    lane_width: int
    signed: bool
    depth: int
    lanes: int
    words: list
    layout: str
    address: str = "group"

    @property
    def width(self) -> int:
        return self.lane_width * self.lanes


def pack_words(values: np.ndarray, lanes: int, lane_width: int) -> list[int]:
    """Pack ``values`` [rows, N] into ``rows * G`` words of ``lanes`` lanes, row-major.

    Row r, neuron i goes to word ``(i // lanes) * rows + r`` (so with ``rows = M`` the weights
    from input j to group g land at ``g * M + j``), lane ``i % lanes``.
    """
    values = np.asarray(values, np.int64)
    rows, n = values.shape
    groups = -(-n // lanes)
    padded = np.zeros((rows, groups * lanes), np.int64)
    padded[:, :n] = values
    mask = (1 << lane_width) - 1
    lane_values = (padded & mask).astype(object).reshape(rows, groups, lanes)
    words = np.zeros((groups, rows), dtype=object)
    for p in range(lanes):
        words += lane_values[:, :, p].T << (p * lane_width)
    return [int(w) for w in words.reshape(-1)]


def default_params(config: ArrayConfig) -> IntParams:
    """The parameters of an array generated without ``--params``.

    Weights and biases 0, ``alpha = beta = 2**(DB-1)`` (one half), thresholds ``2**(WB-1)``.
    """
    n = config.neurons
    threshold = np.full(n if config.per_neuron_threshold else (), 1 << (config.WB - 1))
    threshold = np.minimum(threshold, signed_range(config.VB)[1])
    half = 1 << (config.DB - 1)
    return IntParams(weight=np.zeros((n, config.inputs), np.int64), alpha=np.full(n, half),
                     beta=np.full(n, half), threshold=threshold,
                     bias=np.zeros(n, np.int64) if config.bias else None,
                     WB=config.WB, DB=config.DB, VB=config.VB, reset=config.reset,
                     beat_cap=None if config.beat_cap == config.inputs else config.beat_cap)


class Select(enum.IntEnum):
    """Configuration-port codes of the memories (and of the per-layer threshold register).
    The hardware's ``sel`` port takes its width from here (``Select.width()``)."""

    weights = 0
    alpha = 1
    beta = 2
    threshold = 3
    bias = 4

    @classmethod
    def width(cls) -> int:
        return max(cls).bit_length()


def _words(rows: np.ndarray, width: int) -> list[int]:
    """One word per row of ``rows`` [words, lanes], lane l at bits [l width, (l + 1) width),
    two's complement."""
    mask = (1 << width) - 1
    return [sum((int(v) & mask) << (lane * width) for lane, v in enumerate(row)) for row in rows]


def conv_groups(shape: ConvShape, lanes: int) -> tuple[int, int]:
    """``(G, XB)`` of a convolution whose P lanes run over neighbouring output columns of
    one channel and row: XB = ceil(WO / P) blocks a row, G = K HO XB groups; group
    ``(k HO + yo) XB + xb`` holds neurons (k, yo, xb P + p), lane p (none past WO)."""
    K, HO, WO = shape.out_shape
    XB = -(-WO // lanes)
    return K * HO * XB, XB


def conv_pass_groups(shape: ConvShape, lanes: int, acc_lanes: int) -> int:
    """The operations (cycles) of a conv2d layer's update pass: its accumulator's groups,
    which for a layer that pools its currents are its pre-pool groups
    (:meth:`ConvShape.accumulator <dalif_hw.core.conv.ConvShape.accumulator>`)."""
    return conv_groups(*shape.accumulator(lanes, acc_lanes)[:2])[0]


def conv_channel_groups(shape: ConvShape, lanes: int, acc_lanes: int) -> tuple[int, int]:
    """``(KG, PK)`` of a convolution with ``acc_lanes`` A = PK P: an input spike reaches PK
    output channels at once (the kernel word of channel group kg = k // PK holds channels
    kg PK .. kg PK + PK - 1), so its walk visits KG = ceil(K / PK) channel groups."""
    PK = acc_lanes // lanes
    return -(-shape.channels // PK), PK


def _conv_memories(config: ArrayConfig, params: ConvParams) -> list[MemorySpec]:
    """A convolution's memories: the kernel, one word per (channel group, c, ky) with the
    group's kernel rows (:func:`conv_channel_groups`); per
    channel values one word per k; per neuron values one word per group (:func:`conv_groups`)."""
    shape, P = params.shape, config.lanes
    (C, _, _), (K, HO, WO), (KH, KW) = shape.in_shape, shape.out_shape, shape.kernel
    G, XB = conv_groups(shape, P)
    KG, PK = conv_channel_groups(shape, P, config.acc_lanes)
    # Row (kg C + c) KH + ky, column kk KW + kx: channel k = kg PK + kk (zero past K).
    kernel = np.zeros((KG * PK, C, KH, KW), np.int64)
    kernel[:K] = params.weight
    kernel = kernel.reshape(KG, PK, C, KH, KW).transpose(0, 2, 3, 1, 4)
    specs = [MemorySpec("weights", int(Select.weights), config.WB, True, KG * C * KH, PK * KW,
                        _words(kernel.reshape(KG * C * KH, PK * KW), config.WB),
                        f"word (k//{PK}*{C} + c)*{KH} + ky holds w[k, c, ky, kx] in lane "
                        f"(k%{PK})*{KW} + kx at bits [lane * {config.WB}, (lane + 1) * "
                        f"{config.WB}), signed", address="kernel")]
    # Per neuron: [N] in flat order -> [K, HO, XB * P] (zero past WO) -> words of P lanes.
    columns = np.zeros((K, HO, XB * P), np.int64)

    def per_neuron(values):
        grid = columns.copy()
        grid[:, :, :WO] = np.asarray(values).reshape(K, HO, WO)
        return grid.reshape(G, P)

    names = ["alpha", "beta"] + (["threshold"] if params.threshold.ndim else []) + \
        (["bias"] if params.bias is not None else [])
    for name in names:
        width = config.decay_width if name in ("alpha", "beta") else config.VB
        signed = name not in ("alpha", "beta")
        values = getattr(params, name)
        if params.granularity(name) == "channel":
            specs.append(MemorySpec(
                name, int(Select[name]), width, signed, K, 1, _words(values[:, None], width),
                f"word k holds channel k's value at bits [0, {width})"
                + (", signed" if signed else ", unsigned"), address="channel"))
        else:
            specs.append(MemorySpec(
                name, int(Select[name]), width, signed, G, P, _words(per_neuron(values), width),
                f"word (k*{HO} + yo)*{XB} + xb holds neurons (k, yo, xb*{P} + p) in lane p "
                f"at bits [p * {width}, (p + 1) * {width})"
                + (", signed" if signed else ", unsigned")))
    return specs


def memories(config: ArrayConfig, params: IntParams | ConvParams | ReadoutParams
             ) -> list[MemorySpec]:
    """The memories of an array (or, for :class:`ReadoutParams`, a readout; for
    :class:`ConvParams`, a convolution) with ``config`` holding ``params``, in a fixed
    order."""
    if isinstance(params, ConvParams):
        return _conv_memories(config, params)
    P, G, M = config.lanes, config.groups, config.inputs
    A, GA = config.acc_lanes, config.acc_groups
    per_group = (f"word g holds neurons g*{P} .. g*{P}+{P - 1}, neuron i in lane i % {P} "
                 f"at bits [(i % {P}) * {{w}}, (i % {P} + 1) * {{w}})")
    specs = [MemorySpec("weights", int(Select.weights), config.WB, True, GA * M, A,
                        pack_words(params.weight.T, A, config.WB),
                        f"word g*{M} + j holds the weights from input j to neurons g*{A} .. "
                        f"g*{A}+{A - 1}, neuron i in lane i % {A} at bits "
                        f"[(i % {A}) * {config.WB}, (i % {A} + 1) * {config.WB}), signed")]
    decays = () if isinstance(params, ReadoutParams) else ("alpha", "beta")
    for name in decays:
        specs.append(MemorySpec(name, int(Select[name]), config.decay_width, False, G, P,
                                pack_words(getattr(params, name)[None], P, config.decay_width),
                                per_group.format(w=config.decay_width) + ", unsigned"))
    if config.per_neuron_threshold and decays:
        specs.append(MemorySpec("threshold", int(Select.threshold), config.VB, True, G, P,
                                pack_words(params.thresholds()[None], P, config.VB),
                                per_group.format(w=config.VB) + ", signed"))
    if config.bias:
        specs.append(MemorySpec("bias", int(Select.bias), config.VB, True, G, P,
                                pack_words(params.biases()[None], P, config.VB),
                                per_group.format(w=config.VB) + ", signed"))
    return specs


def memory_bits(config: ArrayConfig, shape: ConvShape | None = None) -> int:
    """Bits the memories of an array of ``config`` hold at most (weights, decays,
    thresholds, biases), from the configuration alone; with ``shape``, a convolution's
    (its kernel, not the dense equivalent's N x M weights)."""
    per_neuron = 2 * config.decay_width + 2 * config.VB
    if shape is None:
        weights = config.acc_groups * config.acc_lanes * config.inputs * config.WB
        return weights + config.groups * config.lanes * per_neuron
    G, _ = conv_groups(shape, config.lanes)
    KG, PK = conv_channel_groups(shape, config.lanes, config.acc_lanes)
    C = shape.in_shape[0]
    return (KG * PK * C * shape.kernel[0] * shape.kernel[1] * config.WB
            + G * config.lanes * per_neuron)


def hex_lines(spec: MemorySpec) -> str:
    """The ``$readmemh`` text of a memory: one word a line, in hex, zero-padded."""
    digits = -(-spec.width // 4)
    return "".join(f"{word:0{digits}x}\n" for word in spec.words)


# -- run-time configuration writes, from a manifest ------------------------------------------

def config_writes(manifest: dict, params) -> list[tuple[int, int, int, int]]:
    """The ``(sel, addr, lane, data)`` writes that load ``params`` through the config port.

    Uses only the manifest's memory descriptions: a neuron's word is
    ``(neuron // lanes) * rows_per_group + input``, its lane ``neuron % lanes``; values are
    written as two's complement in ``lane_width`` bits.
    """
    conv = manifest["params"].get("kind") == "conv2d"
    writes = _conv_writes(manifest, params) if conv else _dense_writes(manifest, params)
    register = manifest["config"].get("threshold_register")
    if register is not None:
        writes.append((register["select"], register["addr"], register["lane"],
                       int(params.threshold) & ((1 << register["width"]) - 1)))
    return writes


def _dense_writes(manifest: dict, params) -> list[tuple[int, int, int, int]]:
    """:func:`config_writes` of a dense array's (or readout's) memories."""
    writes = []
    for mem in manifest["memories"]:
        # weights [N, M]; the per-neuron memories (alpha, beta, threshold, bias) [N, 1]
        values = params.weight if mem["name"] == "weights" else \
            np.asarray(getattr(params, mem["name"])).reshape(-1, 1)
        mask = (1 << mem["lane_width"]) - 1
        lanes, rows = mem["lanes"], mem["rows_per_group"]
        for neuron in range(values.shape[0]):
            for row in range(values.shape[1]):
                writes.append((mem["select"], (neuron // lanes) * rows + row, neuron % lanes,
                               int(values[neuron, row]) & mask))
    return writes


def _conv_writes(manifest: dict, params) -> list[tuple[int, int, int, int]]:
    """:func:`config_writes` of a conv2d layer's memories (``params``: ConvParams), from the
    manifest's shapes, lanes and each memory's ``address``: ``kernel`` (word (k // PK C + c)
    KH + ky, lane (k % PK) KW + kx, PK = acc_lanes / lanes), ``channel`` (word k) or
    ``group`` (neuron (k, yo, xo): word (k HO + yo) XB + xo // P, lane xo % P, XB = ceil(WO /
    P))."""
    p = manifest["params"]
    (C, _, _), (_, HO, WO), (KH, KW) = p["in_shape"], p["out_shape"], p["kernel"]
    P = p["lanes"]
    XB, PK = -(-WO // P), p["acc_lanes"] // P
    writes = []
    for mem in manifest["memories"]:
        mask = (1 << mem["lane_width"]) - 1
        if mem["address"] == "kernel":
            for (k, c, ky, kx), w in np.ndenumerate(params.weight):
                writes.append((mem["select"], (k // PK * C + c) * KH + ky, k % PK * KW + kx,
                               int(w) & mask))
            continue
        values = np.asarray(getattr(params, mem["name"])).reshape(-1)
        for i, v in enumerate(values):
            if mem["address"] == "channel":
                writes.append((mem["select"], i, 0, int(v) & mask))
            else:
                k, rest = divmod(i, HO * WO)
                yo, xo = divmod(rest, WO)
                writes.append((mem["select"], (k * HO + yo) * XB + xo // P, xo % P,
                               int(v) & mask))
    return writes
