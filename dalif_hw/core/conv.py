"""Convolution and pooling shapes (SPEC 6): flat indices, windows and the dense equivalent.

Indices flatten channel-major, as ``torch.flatten`` does: input ``j = (c H + y) W + x``,
neuron ``i = (k HO + yo) WO + xo``. A conv2d layer is a neuron array whose weight ``w_ij`` is
``w[k, c, ky, kx]`` with ``ky = y - yo SH + PH``, ``kx = x - xo SW + PW`` inside the kernel,
and 0 elsewhere. Pooling (window = stride, no padding, floor mode) maps an index to its
window's; spikes past the last whole window are discarded.

A convolution may pool its currents before its neurons (``current_pool``, SPEC 6): max over
windows (PKH, PKW) of its pre-pool positions (K, HO, WO); its neurons are then the pooled
positions (K, HO // PKH, WO // PKW). :attr:`ConvShape.out_shape` is the neurons' shape;
:attr:`ConvShape.conv` the convolution alone, whose outputs are the pre-pool positions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .config import ConfigError

__all__ = ["ConvShape", "PoolShape", "POOL_KINDS"]

#: Pooling stages on the event stream (SPEC 6), as the network file and the model name them.
POOL_KINDS = ("sumpool", "maxpool")


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2 or
            any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value)):
        raise ConfigError(f"{name} must be a list of two integers, not {value!r}")
    if min(value) < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {list(value)!r}")
    return int(value[0]), int(value[1])


def check_shape(name: str, value, ranks=(3,)) -> tuple:
    """``value`` as a tuple of positive integers, [C, H, W] (or, with ``ranks`` (1, 3), also
    [M]); ConfigError naming ``name`` and the value otherwise."""
    what = " or ".join({1: "[M]", 3: "[C, H, W]"}[r] for r in ranks)
    if (not isinstance(value, (list, tuple)) or len(value) not in ranks or
            any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value)):
        counts = " or ".join({1: "one", 3: "three"}[r] for r in ranks)
        raise ConfigError(f"{name} must be a list of {counts} integers {what}, not {value!r}")
    if min(value) < 1:
        raise ConfigError(f"{name} must be positive, not {list(value)!r}")
    return tuple(int(v) for v in value)


def _shape3(name: str, value) -> tuple[int, int, int]:
    return check_shape(name, value)


@dataclasses.dataclass(frozen=True)
class ConvShape:
    """The shape of a conv2d layer: input (C, H, W), K output channels, kernel (KH, KW),
    stride (SH, SW), zero padding (PH, PW) and, where its currents are max-pooled before the
    neurons, the window ``pool`` (PKH, PKW) (None: no pooling). Checked on construction
    (SPEC 6)."""

    in_shape: tuple
    channels: int
    kernel: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    pool: tuple | None = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen)
        set_("in_shape", _shape3("in_shape", self.in_shape))
        if isinstance(self.channels, bool) or not isinstance(self.channels, (int, np.integer)) \
                or self.channels < 1:
            raise ConfigError(f"the output channels K must be a positive integer, "
                              f"not {self.channels!r}")
        set_("channels", int(self.channels))
        set_("kernel", _pair("kernel", self.kernel, 1))
        set_("stride", _pair("stride", self.stride, 1))
        set_("padding", _pair("padding", self.padding, 0))
        (_, H, W), (KH, KW), (PH, PW) = self.in_shape, self.kernel, self.padding
        if PH >= KH or PW >= KW:
            raise ConfigError(f"padding {list(self.padding)} must be below the kernel "
                              f"{list(self.kernel)} in each dimension")
        if H + 2 * PH < KH or W + 2 * PW < KW:
            raise ConfigError(f"the kernel {list(self.kernel)} does not fit the padded input "
                              f"{H + 2 * PH} x {W + 2 * PW}")
        if self.pool is not None:
            set_("pool", _pair("current_pool window", self.pool, 1))
            (_, HO, WO), (PKH, PKW) = self.conv.out_shape, self.pool
            if PKH > HO or PKW > WO:
                raise ConfigError(f"the current_pool window {list(self.pool)} is larger than "
                                  f"the convolution's output {HO} x {WO}")

    @property
    def conv(self) -> "ConvShape":
        """The convolution alone (no pooling): its outputs are the pre-pool positions."""
        if self.pool is None:
            return self
        return ConvShape(self.in_shape, self.channels, self.kernel, self.stride, self.padding)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """The neurons' shape (K, HO, WO), or with ``pool`` (K, HO // PKH, WO // PKW)."""
        (_, H, W), (KH, KW), (SH, SW), (PH, PW) = (self.in_shape, self.kernel, self.stride,
                                                   self.padding)
        HO, WO = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
        if self.pool is not None:
            HO, WO = HO // self.pool[0], WO // self.pool[1]
        return (self.channels, HO, WO)

    def accumulator(self, lanes: int, acc_lanes: int) -> tuple["ConvShape", int, int]:
        """``(shape, lanes, acc_lanes)`` of the accumulator of a layer whose neurons are
        updated ``lanes`` P at a time with ``acc_lanes`` A = PK P: the convolution itself,
        and with ``pool`` its pre-pool columns, PKW P lanes and PKW A accumulators (a group
        of pre-pool columns is one group of pooled neurons' windows)."""
        PKW = 1 if self.pool is None else self.pool[1]
        return self.conv, lanes * PKW, acc_lanes * PKW

    @property
    def inputs(self) -> int:
        """M = C H W."""
        return int(np.prod(self.in_shape))

    @property
    def neurons(self) -> int:
        """N = K HO WO."""
        return int(np.prod(self.out_shape))

    @property
    def fan_out(self) -> int:
        """At most this many (pre-pool) positions see one input spike: K ceil(KH/SH)
        ceil(KW/SW)."""
        (KH, KW), (SH, SW) = self.kernel, self.stride
        return self.channels * -(-KH // SH) * -(-KW // SW)

    def dense(self, weight: np.ndarray) -> np.ndarray:
        """The [N, M] weights of the equivalent dense layer, from ``weight`` [K, C, KH, KW]
        (with ``pool``, of the convolution before it: N its pre-pool positions)."""
        (C, H, W), (K, HO, WO) = self.in_shape, self.conv.out_shape
        (KH, KW), (SH, SW), (PH, PW) = self.kernel, self.stride, self.padding
        dense = np.zeros((K * HO * WO, self.inputs), dtype=weight.dtype)
        k = np.arange(K)[:, None, None, None]
        c = np.arange(C)[None, :, None, None]
        for ky in range(KH):
            for kx in range(KW):
                # The output positions whose window puts (ky, kx) on an input pixel.
                yo, xo = np.arange(HO), np.arange(WO)
                y, x = yo * SH + ky - PH, xo * SW + kx - PW
                ys, xs = (y >= 0) & (y < H), (x >= 0) & (x < W)
                yo, y = yo[ys][None, None, :, None], y[ys][None, None, :, None]
                xo, x = xo[xs][None, None, None, :], x[xs][None, None, None, :]
                dense[(k * HO + yo) * WO + xo, (c * H + y) * W + x] = \
                    weight[:, :, ky, kx][:, :, None, None]
        return dense

    def pool_currents(self, current: np.ndarray) -> np.ndarray:
        """The neurons' currents [..., N] from the convolution's [..., K HO WO] (pre-pool
        positions): the max over each window, positions past the last whole one dropped."""
        if self.pool is None:
            return current
        (K, HO, WO), (PKH, PKW) = self.conv.out_shape, self.pool
        _, HP, WP = self.out_shape
        grid = current.reshape(current.shape[:-1] + (K, HO, WO))[..., :HP * PKH, :WP * PKW]
        grid = grid.reshape(grid.shape[:-2] + (HP, PKH, WP, PKW)).max(axis=(-3, -1))
        return grid.reshape(current.shape[:-1] + (K * HP * WP,))

    def meta(self) -> dict:
        meta = {"kind": "conv2d", "in_shape": list(self.in_shape),
                "stride": list(self.stride), "padding": list(self.padding)}
        if self.pool is not None:
            meta["current_pool"] = {"kind": "max", "window": list(self.pool)}
        return meta


@dataclasses.dataclass(frozen=True)
class PoolShape:
    """A pooling stage: input (C, H, W), window = stride (PKH, PKW), floor mode."""

    kind: str
    in_shape: tuple
    window: tuple

    def __post_init__(self):
        if self.kind not in POOL_KINDS:
            raise ConfigError(f"pooling kind must be one of {', '.join(POOL_KINDS)}, "
                              f"not {self.kind!r}")
        object.__setattr__(self, "in_shape", _shape3("in_shape", self.in_shape))
        object.__setattr__(self, "window", _pair("window", self.window, 1))
        (_, H, W), (PKH, PKW) = self.in_shape, self.window
        if PKH > H or PKW > W:
            raise ConfigError(f"the pooling window {list(self.window)} is larger than the "
                              f"input {H} x {W}")

    @property
    def out_shape(self) -> tuple[int, int, int]:
        (C, H, W), (PKH, PKW) = self.in_shape, self.window
        return (C, H // PKH, W // PKW)

    @property
    def inputs(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def outputs(self) -> int:
        return int(np.prod(self.out_shape))

    def index_map(self) -> np.ndarray:
        """For every input index, its pooled index, or -1 where it is discarded."""
        (C, H, W), (PKH, PKW) = self.in_shape, self.window
        _, HP, WP = self.out_shape
        c, y, x = np.meshgrid(np.arange(C), np.arange(H), np.arange(W), indexing="ij")
        inside = (y < HP * PKH) & (x < WP * PKW)
        pooled = (c * HP + y // PKH) * WP + x // PKW
        return np.where(inside, pooled, -1).reshape(-1)

    def counts(self, counts: np.ndarray) -> np.ndarray:
        """Beats per pooled index from beats per input index, [..., M] -> [..., M']: summed
        (sum pooling) or at most one (max pooling: each pooled index once a timestep)."""
        index = self.index_map()
        keep = index >= 0
        out = np.zeros(counts.shape[:-1] + (self.outputs,), np.int64)
        np.add.at(out, (..., index[keep]), counts[..., keep])
        return np.minimum(out, 1) if self.kind == "maxpool" else out
