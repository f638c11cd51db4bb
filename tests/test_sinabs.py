"""A sinabs IAF CNN as sinabs' tutorials build one (issue 24): ``SingleSpike`` neurons to
float spikes equal to sinabs' own and to RTL equal to the integer twin; sinabs' default
``MultiSpike`` neurons refused, naming why.

sinabs is not a test dependency (it pins nir <= 1.0.4): tests/fixtures/sinabs/
write_fixtures.py ran it (3.1.3) and recorded the modules, the state dict, random input
spikes and sinabs' spikes per neuron layer; tests/replay.py rebuilds the module from that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from replay import assert_same_spikes, recorded, replay, unpacked
from walkthrough import rtl_equals_twin

from dalif_hw.core.config import ConfigError
from dalif_hw.interchange.modules import from_module
from dalif_hw.quant.packing import pack_network


def model_and_input():
    record = recorded("sinabs/iaf_cnn.pt")
    model = from_module(replay(record), record["in_shape"])
    x = record["input"].transpose(0, 1)          # sinabs' [batch, time] to [time, batch]
    return record, model, x


def test_an_iaf_cnn_to_sinabs_own_spikes():
    """IAF with SingleSpike (V >= theta), MembraneSubtract (the soft reset) and a last layer
    with MembraneReset (hard), sum pooling of spikes and, folded into the convolution, of
    currents, Squeeze layers: spike for spike."""
    record, model, x = model_and_input()
    assert [type(m).__name__ for m in model.body] == [
        "DALIFConv2d", "DALIFConv2d", "SpikePool2d", "DALIFConv2d", "Flatten", "DALIFLinear",
        "DALIFLinear"]
    assert model.body[3].conv.stride == (2, 2) and model.body[3].conv.kernel_size == (4, 4)
    neurons = [m.neuron for m in model.body if hasattr(m, "neuron")]
    assert [n.reset for n in neurons] == ["soft"] * 4 + ["hard"]
    assert all(float(n.alpha) == float(n.beta) == 1.0 and not n.strict for n in neurons)
    with torch.no_grad():
        ours = model.hidden_spikes(x)
    theirs = [unpacked(s).transpose(0, 1).flatten(2) for s in record["spikes"]]
    assert_same_spikes(ours, theirs)


def test_lif_neurons_to_sinabs_own_spikes():
    """LIF with norm_input (alpha = 1 - alpha_mem) and the soft reset, and without it, a
    threshold of 0.8 and the hard reset, input [batch, time, features]."""
    record = recorded("sinabs/lif_mlp.pt")
    model = from_module(replay(record), record["in_shape"])
    first, second = (m.neuron for m in model.body)
    assert (first.reset, second.reset) == ("soft", "hard")
    assert float(first.alpha) == pytest.approx(1 - np.exp(-1 / 4.0)) and float(second.alpha) == 1
    with torch.no_grad():
        x = record["input"].transpose(0, 1)
        ours = model.hidden_spikes(x)
    theirs = [unpacked(s).transpose(0, 1) for s in record["spikes"]]
    assert_same_spikes(ours, theirs)


def test_sinabs_default_multispike_is_refused_naming_why():
    record = recorded("sinabs/iaf_cnn_multispike.pt")
    with pytest.raises(ConfigError, match=r"module '1' \(IAFSqueeze\): spike_fn MultiSpike: "
                       r"sinabs' default MultiSpike fires floor\(V / theta\) spikes a step"):
        from_module(replay(record), record["in_shape"])


def test_a_clamped_membrane_is_refused():
    record = recorded("sinabs/iaf_cnn.pt")
    net = replay(record)
    getattr(net, "3").min_v_mem = -1.0
    with pytest.raises(ConfigError, match=r"module '3' \(IAFSqueeze\): min_v_mem -1: the "
                       r"hardware's membrane is not clamped from below"):
        from_module(net, record["in_shape"])


def test_the_iaf_cnn_to_rtl_equal_to_its_twin(tmp_path):
    """Packed (16-bit weights; input spikes as they are), generated and run on Verilator: the
    RTL's spikes equal the twin's; the twin's against the float model's measured."""
    record, model, x = model_and_input()
    T = record["T"]
    network = pack_network(model, T=T, encoding={"kind": "spikes", "T": T}, WB=16, VB=32,
                           lanes=[4, 4, 2, 8, 2])
    # Measured on all 6 samples, per layer: 16 bits 1.0, 0.9996, 0.9993, 0.998, 0.998; 12
    # bits 0.9998, 0.9994, 0.9993, 0.979, 0.971; 8 bits 0.999, 0.989, 0.992, 0.923, 0.871
    # (IF neurons keep every rounding in the membrane).
    rtl_equals_twin(tmp_path, model, network,
                    record["input"][:3].flatten(2).numpy() > 0, 0.99)     # [S, T, M]


def test_weights_saved_after_a_run_load(tmp_path):
    """sinabs keeps each layer's membrane (``v_mem``, a buffer) in the state dict at the
    shape of the last run's batch: ``pack FILE.py:NAME --weights`` loads the weights and
    keeps the fresh network's state (it was 'size mismatch for 1.v_mem')."""
    from dalif_hw.interchange.modules import load_module

    (tmp_path / "net.py").write_text(f"""
import sys
import torch
sys.path.insert(0, {str(Path(__file__).parent)!r})
from replay import recorded, replay


def build():
    net = replay(recorded("sinabs/iaf_cnn.pt"))
    for module in net.modules():
        if type(module).__name__ == "IAFSqueeze":
            module.register_buffer("v_mem", torch.zeros(0))    # as sinabs' before a run
    return net
""")
    record = recorded("sinabs/iaf_cnn.pt")
    state = dict(record["state_dict"])
    for path in ("1", "3", "7", "10", "12"):
        state[f"{path}.v_mem"] = torch.ones(6, 3)               # a run's batch
    torch.save(state, tmp_path / "state.pt")
    net = load_module(str(tmp_path / "net.py") + ":build", str(tmp_path / "state.pt"))
    assert tuple(getattr(net, "1").v_mem.shape) == (0,)
    assert torch.equal(getattr(net, "0").weight, record["state_dict"]["0.weight"])
    from_module(net, record["in_shape"])
