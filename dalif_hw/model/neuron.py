"""The DA-LIF neuron in PyTorch (multi-step).

    V[t] = beta * H[t-1] + alpha * X[t]
    S[t] = V[t] >= theta              (strict: V[t] > theta, as NIR's LIF fires)
    H[t] = V[t] * (1 - S[t])          (hard reset)   or   V[t] - theta * S[t]   (soft reset)

and two resets of other frameworks (SPEC 2): ``subtract`` (snnTorch's default),
``V[t] = beta * V[t-1] + alpha * X[t] - theta * S[t-1]``, and ``none``, both with H = V.

``alpha`` (spatial decay, on the input current) and ``beta`` (temporal decay, on the membrane)
are each either learned, as the sigmoid of a raw parameter, or fixed at a value in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..core.config import RESETS
from .surrogate import SURROGATES, spike

__all__ = ["GRANULARITIES", "DALIFNeuron"]

#: One decay per neuron (default), per channel (the first neuron dimension), or per layer.
GRANULARITIES = ("neuron", "channel", "layer")


def _decay_shape(shape: tuple[int, ...], granularity: str) -> tuple[int, ...]:
    if granularity == "layer":
        return ()
    if not shape:
        raise ValueError(f"Granularity {granularity!r} needs the neuron shape, "
                         f"e.g. shape=(256,) or shape=(C, H, W)")
    return shape if granularity == "neuron" else shape[:1]


class DALIFNeuron(nn.Module):
    """Multi-step DA-LIF neurons.

    Parameters
    ----------
    shape : int or sequence of int, optional
        Shape of the neurons of one sample (``(256,)``, or ``(C, H, W)`` after a convolution).
        Needed for per-neuron decays; per-channel decays need at least ``(C,)``.
    granularity : str
        ``"neuron"`` (default; what the hardware stores), ``"channel"`` or ``"layer"``.
    alpha, beta : float
        Initial (if learned) or fixed values of the spatial and temporal decay. A learned
        decay is ``sigmoid(raw)`` and starts strictly inside (0, 1); a fixed one may be any
        value in [0, 1], or a tensor of the granularity's shape. Default 0.5 each (raw
        parameter 0).
    learn_alpha, learn_beta : bool
        Whether the decay is learned (default) or fixed.
    threshold : float or tensor
        Firing threshold theta (> 0): one per layer, or a tensor of the decays' shape (one per
        neuron, or per channel with that granularity).
    strict : bool
        Fire on ``V > theta`` (NIR's and snnTorch's rule) instead of ``V >= theta``. The
        float models differ only where a membrane sits exactly at the threshold; packing
        then uses ``theta_int = floor(theta / s) + 1`` so that the integer ``>=`` is the same.
    reset : str
        ``"hard"`` (to 0), ``"soft"`` (subtract theta after a spike), ``"subtract"``
        (snnTorch's default: subtract theta at the next timestep, after the decay) or
        ``"none"``.
    surrogate : str
        ``"arctan"`` (default), ``"sigmoid"`` or ``"rectangular"``.
    surrogate_width : float
        Scale of the surrogate derivative (peak ``1 / width``); see
        :mod:`dalif_hw.model.surrogate`.
    detach_reset : bool
        Stop the gradient through the reset (as SpikingJelly's ``detach_reset``).

    Raises
    ------
    ValueError
        If a decay is out of range, or an option is unknown.
    """

    def __init__(self, shape: int | Sequence[int] | None = None, *, granularity: str = "neuron",
                 alpha: float = 0.5, beta: float = 0.5, learn_alpha: bool = True,
                 learn_beta: bool = True, threshold=1.0, reset: str = "hard",
                 surrogate: str = "arctan", surrogate_width: float = 1.0,
                 detach_reset: bool = False, strict: bool = False):
        super().__init__()
        if granularity not in GRANULARITIES:
            raise ValueError(f"Granularity must be one of {', '.join(GRANULARITIES)}, "
                             f"not {granularity!r}")
        if reset not in RESETS:
            raise ValueError(f"Reset must be one of {', '.join(RESETS)}, not {reset!r}")
        if surrogate not in SURROGATES:
            raise ValueError(f"Surrogate must be one of {', '.join(SURROGATES)}, "
                             f"not {surrogate!r}")
        if not surrogate_width > 0:
            raise ValueError(f"Surrogate width must be positive, not {surrogate_width!r}")
        if isinstance(shape, int):
            shape = (shape,)
        self.shape = tuple(shape) if shape is not None else ()
        if any(not isinstance(n, int) or n < 1 for n in self.shape):
            raise ValueError(f"Neuron shape must be positive integers, not {shape!r}")
        self.granularity = granularity
        self.reset = reset
        self.surrogate = surrogate
        self.surrogate_width = float(surrogate_width)
        self.detach_reset = detach_reset
        self.strict = bool(strict)
        decay_shape = _decay_shape(self.shape, granularity)
        threshold = torch.as_tensor(threshold, dtype=torch.float32).clone()
        if threshold.dim() and tuple(threshold.shape) != decay_shape:
            raise ValueError(f"Threshold must be a number or have the decays' shape "
                             f"{list(decay_shape)}, not {list(threshold.shape)}")
        if not bool((threshold > 0).all()):
            raise ValueError(f"Threshold must be positive, not {threshold.min().item()!r}")
        self.register_buffer("threshold", threshold)
        self._init_decay("alpha", alpha, learn_alpha, decay_shape)
        self._init_decay("beta", beta, learn_beta, decay_shape)

    def _init_decay(self, name: str, value: float, learn: bool, shape: tuple[int, ...]):
        if learn:
            if not 0 < value < 1:
                raise ValueError(f"A learned {name} is a sigmoid and must start strictly "
                                 f"between 0 and 1, not {value!r}")
            raw = math.log(value / (1 - value))
            self.register_parameter(f"raw_{name}", nn.Parameter(torch.full(shape, raw)))
        else:
            value = torch.as_tensor(value, dtype=torch.float32)
            if value.dim() and tuple(value.shape) != shape:
                raise ValueError(f"A fixed {name} must be a number or have shape {list(shape)}, "
                                 f"not {list(value.shape)}")
            if not bool(((value >= 0) & (value <= 1)).all()):
                bad = value[(value < 0) | (value > 1) | value.isnan()].flatten()[0].item()
                raise ValueError(f"A fixed {name} must lie in [0, 1], not {bad!r}")
            self.register_buffer(f"fixed_{name}", torch.broadcast_to(value, shape).clone())

    def _decay(self, name: str) -> torch.Tensor:
        raw = getattr(self, f"raw_{name}", None)
        return torch.sigmoid(raw) if raw is not None else getattr(self, f"fixed_{name}")

    @property
    def alpha(self) -> torch.Tensor:
        """The spatial decay (shape per granularity)."""
        return self._decay("alpha")

    @property
    def beta(self) -> torch.Tensor:
        """The temporal decay (shape per granularity)."""
        return self._decay("beta")

    def _expand(self, decay: torch.Tensor, ndim: int) -> torch.Tensor:
        """Shape a per-granularity decay to broadcast against ``ndim`` neuron dimensions."""
        if self.granularity == "channel":
            return decay.reshape(decay.shape + (1,) * (ndim - 1))
        return decay

    def per_neuron(self, value: torch.Tensor) -> torch.Tensor:
        """Broadcast a decay (or any per-granularity value) to one value per neuron."""
        return torch.broadcast_to(self._expand(value, len(self.shape)), self.shape).clone()

    def forward(self, x: torch.Tensor, return_membrane: bool = False, qat=None, unit=None):
        """Run all timesteps.

        Parameters
        ----------
        x : tensor [T, batch, *shape]
            The input current X of every timestep (with ``qat``: integer-valued, in units
            of the layer scale ``unit``).
        return_membrane : bool
            Also return the membrane V of every timestep (before reset).
        qat : QAT, optional
            Compute as the hardware does (:mod:`dalif_hw.model.qat`): decays on the
            2**-DB grid, threshold rounded to the layer's units, SPEC 2's rnd and sat.

        Returns
        -------
        spikes : tensor [T, batch, *shape] (0.0 or 1.0), or ``(spikes, membrane)``.
        """
        fits = {"neuron": tuple(x.shape[2:]) == self.shape,
                "channel": x.dim() > 2 and x.shape[2] == self.shape[0],
                "layer": True}[self.granularity]
        if x.dim() < 2 or not fits:
            raise ValueError(f"Input must have shape [T, batch, {', '.join(map(str, self.shape))}"
                             f"{', ...' if self.granularity != 'neuron' else ''}], "
                             f"not {list(x.shape)}")
        alpha = self._expand(self.alpha, x.dim() - 2)
        beta = self._expand(self.beta, x.dim() - 2)
        threshold = self._expand(self.threshold, x.dim() - 2)
        if qat is not None:
            return self._forward_integer(x, alpha, beta, threshold, qat, unit, return_membrane)
        h = torch.zeros_like(x[0])
        taken = torch.zeros_like(x[0])    # theta S[t-1] for the subtract reset
        spikes, membranes = [], []
        for x_t in x:
            v = beta * h + alpha * x_t - taken
            s = spike(v - threshold, self.surrogate, self.surrogate_width, self.strict)
            s_reset = s.detach() if self.detach_reset else s
            h = self._after(v, s_reset, threshold)
            if self.reset == "subtract":
                taken = threshold * s_reset
            spikes.append(s)
            membranes.append(v)
        spikes = torch.stack(spikes)
        return (spikes, torch.stack(membranes)) if return_membrane else spikes

    def _forward_integer(self, x, alpha, beta, threshold, qat, unit, return_membrane):
        from .qat import rnd_sat, round_ste

        one = float(1 << qat.DB)
        alpha_q = round_ste(alpha.double() * one).clamp(0, one)
        beta_q = round_ste(beta.double() * one).clamp(0, one)
        theta = threshold.double() / unit
        theta = torch.floor(theta) + 1 if self.strict else torch.round(theta)
        lo, hi = -(1 << (qat.VB - 1)), (1 << (qat.VB - 1)) - 1
        theta = theta.clamp(lo, hi)
        h = torch.zeros_like(x[0], dtype=torch.float64)
        taken = torch.zeros_like(h)
        spikes, membranes = [], []
        for x_t in x.double():
            v = rnd_sat(beta_q * h, alpha_q * x_t, qat, minus=taken)
            # The surrogate sees the membrane in the float model's units.
            s = spike((v - theta) * unit, self.surrogate, self.surrogate_width)
            s_reset = s.detach() if self.detach_reset else s
            h = self._after(v, s_reset, theta)
            if self.reset == "soft":
                h = h + (h.clamp(lo, hi) - h).detach()
            elif self.reset == "subtract":
                taken = theta * s_reset
            spikes.append(s)
            membranes.append(v)
        spikes = torch.stack(spikes).float()
        return (spikes, torch.stack(membranes)) if return_membrane else spikes

    def _after(self, v: torch.Tensor, s: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        """H[t] from V[t] and S[t]: the reset (``subtract`` takes theta off at the next
        timestep instead, so H = V, as for ``none``)."""
        if self.reset == "hard":
            return v * (1.0 - s)
        if self.reset == "soft":
            return v - threshold * s
        return v

    def extra_repr(self) -> str:
        return (f"shape={self.shape}, granularity={self.granularity!r}, reset={self.reset!r}, "
                + (f"threshold={self.threshold.item():g}, " if not self.threshold.dim() else
                   f"threshold={list(self.threshold.shape)}, ")
                + ("strict=True, " if self.strict else "") + f"surrogate={self.surrogate!r}, "
                f"surrogate_width={self.surrogate_width:g}")
