"""SPEC 2's reset modes against the frameworks' own neurons: snnTorch's ``Leaky`` with each
``reset_mechanism`` is a DA-LIF neuron with alpha fixed at 1, its beta, its threshold,
``strict`` firing (V > theta) and one SPEC reset, spike for spike.

``reset_delay=False`` with ``subtract`` is SPEC's ``soft`` only while a membrane stays at or
below theta after its reset: snnTorch then fires on ``beta H + X - theta [H > theta]``
(its "avoid double reset" correction), which no SPEC mode computes. Such a neuron is
refused on import (dalif_hw.interchange.modules); the last test shows the difference."""

import pytest
import snntorch as snn
import torch

from dalif_hw.model import DALIFNeuron

#: snnTorch's (reset_mechanism, reset_delay) -> SPEC 2's reset.
MODES = [("zero", True, "hard"), ("subtract", True, "subtract"), ("none", True, "none"),
         ("subtract", False, "soft"), ("zero", False, "hard")]


def snntorch_and_ours(mechanism, delay, reset, granularity, seed, top=0.8):
    """Spikes of snnTorch's Leaky and of the DA-LIF neuron on the same random currents in
    [-0.1, top)."""
    gen = torch.Generator().manual_seed(seed)
    n, T, batch = 12, 16, 64
    if granularity == "layer":
        beta, threshold = 0.8, 0.6          # snnTorch's tutorial way: scalars
    else:
        beta = torch.rand(n, generator=gen) * 0.6 + 0.3
        threshold = torch.rand(n, generator=gen) * 0.8 + 0.4
    leaky = snn.Leaky(beta=beta, threshold=threshold, reset_mechanism=mechanism,
                      reset_delay=delay)
    neuron = DALIFNeuron(n, granularity=granularity, learn_alpha=False, alpha=1.0,
                         learn_beta=False, beta=beta, threshold=threshold, reset=reset,
                         strict=True)
    currents = torch.rand(T, batch, n, generator=gen) * (top + 0.1) - 0.1
    with torch.no_grad():
        return leaky_spikes(leaky, currents), neuron(currents)


def leaky_spikes(leaky, currents):
    mem = leaky.init_leaky()
    out = []
    with torch.no_grad():
        for x_t in currents:
            spk, mem = leaky(x_t, mem)
            out.append(spk)
    return torch.stack(out)


@pytest.mark.parametrize("mechanism, delay, reset", MODES,
                         ids=[f"{m}-delay{int(d)}" for m, d, _ in MODES])
@pytest.mark.parametrize("granularity", ["layer", "neuron"])
def test_snntorch_leaky_is_a_spec_reset(mechanism, delay, reset, granularity):
    # Without the reset delay, currents below (2 - beta) theta keep H <= theta after a reset.
    top = 0.8 if delay else 0.4
    theirs, ours = snntorch_and_ours(mechanism, delay, reset, granularity,
                                     sum(map(ord, mechanism + reset)), top)
    assert 0.02 < theirs.mean() < 0.95
    mismatch = (ours != theirs).nonzero()
    assert not len(mismatch), (f"{mechanism} (reset_delay={delay}) as {reset}: first "
                               f"differs at timestep, sample, neuron {mismatch[0].tolist()} "
                               f"of {len(mismatch)}")


def test_subtract_without_delay_is_not_soft_above_the_threshold():
    theirs, ours = snntorch_and_ours("subtract", False, "soft", "layer", 5, top=0.8)
    assert (ours != theirs).any()


def test_the_modes_differ_on_these_currents():
    """The comparison above can fail: the SPEC modes give different spikes here."""
    gen = torch.Generator().manual_seed(0)
    currents = torch.rand(16, 64, 12, generator=gen) * 0.9 - 0.1
    spikes = {}
    with torch.no_grad():
        for reset in ("hard", "soft", "subtract", "none"):
            neuron = DALIFNeuron(12, learn_alpha=False, alpha=1.0, learn_beta=False, beta=0.8,
                                 threshold=0.6, reset=reset, strict=True)
            spikes[reset] = neuron(currents)
    modes = list(spikes)
    for i, a in enumerate(modes):
        for b in modes[i + 1:]:
            assert not torch.equal(spikes[a], spikes[b]), f"{a} and {b} agree"
