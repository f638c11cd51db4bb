"""Models straight from the PyTorch module (issue 24, item 3): snnTorch networks as their
users write them, read without their exporters, to identical float spikes; what folds
(BatchNorm, an average pool before the neurons) agrees to float rounding; what cannot be
expressed is refused naming the module."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import snntorch.utils
import torch
from torch import nn

from dalif_hw import pack as pack_command
from dalif_hw.cli import run
from dalif_hw.core.config import ConfigError
from dalif_hw.harness.peers import snntorch_run, snntorch_tutorial_csnn, snntorch_tutorial_mlp
from dalif_hw.interchange.modules import from_module
from dalif_hw.quant.packed import Network


def analog(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def binary(shape, seed, p=0.4):
    return (analog(shape, seed) < p).float()


def agreement(got, want) -> float:
    return float((got.bool() == want.bool()).float().mean())


def test_the_snntorch_tutorial_mlp_as_written_to_identical_spikes():
    net, in_shape = snntorch_tutorial_mlp(inputs=100, hidden=200, num_steps=25)
    with torch.no_grad():
        for layer in (net.fc1, net.fc2):          # trained-like: layers that spike
            layer.weight.mul_(3.0)
    model = from_module(net, in_shape)
    x = analog((64, 100), 0)
    with torch.no_grad():
        want, _ = net(x)                           # its own forward: 25 steps of x
        got = model(x.expand(25, *x.shape))
    assert 0.05 < float(want.mean()) < 0.95
    assert torch.equal(got, want)
    neuron = model.body[0].neuron
    assert neuron.reset == "subtract" and neuron.strict and neuron.granularity == "layer"


def test_per_channel_and_per_neuron_values_and_pooling_after_the_neurons():
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        snn.Leaky(beta=torch.rand(4, 1, 1, generator=g) * 0.5 + 0.4, threshold=0.5,
                  reset_mechanism="zero", init_hidden=True),
        nn.MaxPool2d(2), nn.Conv2d(4, 6, 3),
        snn.Leaky(beta=0.7, threshold=torch.rand(6, 2, 2, generator=g) + 0.5,
                  reset_mechanism="none", init_hidden=True),
        nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(6, 5),
        snn.Leaky(beta=0.9, init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[3].weight.mul_(3.0)
        net[8].weight.mul_(3.0)
    model = from_module(net, (2, 8, 8))
    assert [type(m).__name__ for m in model.body] == [
        "DALIFConv2d", "SpikePool2d", "DALIFConv2d", "SpikePool2d", "Flatten", "DALIFLinear"]
    x = binary((12, 16, 2, 8, 8), 2)
    want = snntorch_run(net.eval(), x)
    with torch.no_grad():
        got = model(x)
        hidden = model.hidden_spikes(x)
    assert all(0.02 < float(h.mean()) < 0.95 for h in hidden)
    assert torch.equal(got, want)


@pytest.mark.parametrize("fold", ["batchnorm", "avgpool"])
def test_what_folds_into_the_convolution_agrees_to_rounding(fold):
    torch.manual_seed(2)
    conv = nn.Conv2d(1, 4, 3, padding=1)
    between = nn.BatchNorm2d(4) if fold == "batchnorm" else nn.AvgPool2d(2)
    if fold == "batchnorm":
        with torch.no_grad():
            between.running_mean.uniform_(-0.3, 0.3)
            between.running_var.uniform_(0.5, 2.0)
            between.weight.uniform_(0.5, 1.5)
            between.bias.uniform_(-0.2, 0.2)
    side = 8 if fold == "batchnorm" else 4
    net = nn.Sequential(conv, between, snn.Leaky(beta=0.8, init_hidden=True), nn.Flatten(),
                        nn.Linear(4 * side * side, 5),
                        snn.Leaky(beta=0.8, init_hidden=True, output=True))
    with torch.no_grad():
        conv.weight.mul_(3.0)
        net[4].weight.mul_(3.0)
    net.eval()
    model = from_module(net, (1, 8, 8))
    x = binary((10, 64, 1, 8, 8), 3)
    want = snntorch_run(net, x)
    with torch.no_grad():
        got = model(x)
        first = model.hidden_spikes(x)[0]
    # The folded layer's own spikes, against snnTorch's first Leaky on the same input.
    lif = net[2]
    with torch.no_grad():
        snn.utils.reset(net)
        theirs = torch.stack([lif(between(conv(x_t))) for x_t in x]).flatten(2)
    assert 0.02 < float(theirs.mean()) < 0.95
    assert agreement(first, theirs) >= 0.999, "folding changed more than float rounding"
    assert agreement(got, want) >= 0.999


def test_the_tutorial_csnn_as_written_to_identical_spikes():
    """snnTorch's tutorial CSNN (Conv2d, MaxPool2d, Leaky twice, then Linear, Leaky): its
    currents max-pooled before the neurons (SPEC 6 current_pool), spike for spike on the
    tutorial's analog input and on random spikes."""
    net, in_shape = snntorch_tutorial_csnn()
    with torch.no_grad():                     # trained-like: every layer spikes
        net[0].weight.mul_(4.0)
        net[3].weight.mul_(6.0)
        net[7].weight.mul_(6.0)
    net.eval()
    model = from_module(net, in_shape)
    assert [type(m).__name__ for m in model.body] == [
        "DALIFConv2d", "DALIFConv2d", "Flatten", "DALIFLinear"]
    assert [m.current_pool for m in model.body[:2]] == [(2, 2), (2, 2)]
    for x in (analog((1, 6, 1, 28, 28), 4).expand(10, 6, 1, 28, 28), binary((8, 6, 1, 28, 28), 5)):
        want = snntorch_run(net, x)
        with torch.no_grad():
            got = model(x)
            hidden = model.hidden_spikes(x)
        assert all(0.01 < float(h.mean()) < 0.95 for h in hidden), \
            [float(h.mean()) for h in hidden]
        assert torch.equal(got, want)


def test_what_cannot_follow_a_max_pool_of_currents_is_refused():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.BatchNorm2d(2),
                        snn.Leaky(beta=0.5, init_hidden=True))
    with pytest.raises(ConfigError, match=r"module '2' \(BatchNorm2d\): '0' \(Conv2d\) must "
                       r"feed a neuron"):
        from_module(net, (1, 8, 8))
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.AvgPool2d(2),
                        snn.Leaky(beta=0.5, init_hidden=True))
    with pytest.raises(ConfigError, match=r"module '2' \(AvgPool2d\): a second pooling after "
                       r"a MaxPool2d of currents"):
        from_module(net, (1, 8, 8))
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(8),
                        snn.Leaky(beta=0.5, init_hidden=True))
    with pytest.raises(ConfigError, match=r"module '0' \(Conv2d\): for an input of \[1, 8, 8\]: "
                       r"the current_pool window \[8, 8\] is larger than the convolution's "
                       r"output 6 x 6"):
        from_module(net, (1, 8, 8))


@pytest.mark.parametrize("net, message", [
    (lambda: nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.5, reset_delay=False)),
     r"module '1' \(Leaky\): reset_mechanism 'subtract' with reset_delay=False"),
    (lambda: nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.5, graded_spikes_factor=2.0)),
     r"module '1' \(Leaky\): graded_spikes_factor 2"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU()),
     r"module '1' \(ReLU\): '0' \(Linear\) must feed a neuron, or end the network"),
    (lambda: nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.5), nn.Sigmoid()),
     r"module '2' \(Sigmoid\): no hardware for torch.nn.modules.activation.Sigmoid"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)),
     r"module '1' \(Linear\): '0' \(Linear\) must feed a neuron"),
    (lambda: nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.5), nn.Linear(3, 2),
                           nn.Linear(2, 2)),
     r"module '3' \(Linear\): '2' \(Linear\) must feed a neuron"),
    (lambda: nn.Sequential(nn.Linear(5, 3), snn.Leaky(beta=0.5)),
     r"module '0' \(Linear\): it takes 5 inputs but gets \[4\]"),
    (lambda: nn.Sequential(snn.Leaky(beta=0.5)),
     r"module '0' \(Leaky\): a neuron needs a Linear or Conv2d in front of it"),
    (lambda: nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=torch.rand(2))),
     r"module '1' \(Leaky\): beta of shape \[2\] does not broadcast to the layer's neurons "
     r"\[3\]"),
    (lambda: nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.5, threshold=-1.0)),
     r"module '1' \(Leaky\): threshold -1 is not positive"),
])
def test_what_cannot_be_expressed_is_refused_naming_the_module(net, message):
    with pytest.raises(ConfigError, match=message):
        from_module(net(), (4,))


MODULE_FILE = '''
from dalif_hw.harness.peers import snntorch_tutorial_mlp


def build_net():
    return snntorch_tutorial_mlp(inputs=20, hidden=30, outputs=4, num_steps=5)[0]


def broken():
    raise RuntimeError("no such dataset")
'''


def test_pack_takes_a_module_file_and_its_weights(tmp_path, capsys):
    (tmp_path / "net.py").write_text(MODULE_FILE)
    net, _ = snntorch_tutorial_mlp(inputs=20, hidden=30, outputs=4, num_steps=5, seed=3)
    torch.save(net.state_dict(), tmp_path / "state.pt")
    out = tmp_path / "packed"
    assert run(pack_command.main, [f"{tmp_path / 'net.py'}:build_net", "--weights",
                                   str(tmp_path / "state.pt"), "--T", "5", "--out",
                                   str(out)]) == 0
    network = Network.load(out)
    assert [layer.kind for layer in network.layers] == ["dense", "dense"]
    assert network.layers[0].params.reset == "subtract"
    # The packed weights are those of the state file, not of build_net's own seed.
    scale = network.layers[0].scale
    np.testing.assert_allclose(network.layers[0].params.weight * scale,
                               net.fc1.weight.detach().numpy(), atol=scale / 2 + 1e-9)


@pytest.mark.parametrize("spec, extra, message", [
    ("net.py", [], "is a module|is not a checkpoint|does not exist|cannot"),
    ("net.py:nothing", [], "net.py has no 'nothing'"),
    ("net.py:broken", [], "net.py:broken: RuntimeError: no such dataset"),
    ("missing.py:build_net", [], "module file '.*missing.py' does not exist"),
    ("net.py:build_net", ["--weights", "WRONG"], "do not fit .*net.py:build_net: "),
    ("net.py:build_net", ["--weights", "EVIL"], "cannot be loaded with weights_only=True"),
    ("net.py:build_net", ["--input-shape", "1,x"], "--input-shape must be comma-separated"),
    ("net.py:build_net", ["--analog", "0"], "--analog and --max-value: levels must be an "
     "integer from 1 to 255, not 0"),
    ("net.py:build_net", ["--analog", "7", "--max-value", "nan"], "max_value must be a "
     "positive number, not nan"),
])
def test_pack_refuses_a_bad_module_in_one_line(tmp_path, capsys, spec, extra, message):
    (tmp_path / "net.py").write_text(MODULE_FILE)
    torch.save(nn.Linear(3, 3).state_dict(), tmp_path / "WRONG")
    torch.save({"fn": print}, tmp_path / "EVIL")       # not tensors: refused unloaded
    extra = [str(tmp_path / e) if e in ("WRONG", "EVIL") else e for e in extra]
    argv = [str(tmp_path / spec), *extra, "--T", "5", "--out", str(tmp_path / "out")]
    assert run(pack_command.main, argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    import re
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_analog_input_is_counts_and_its_step_folds_into_the_first_layer():
    from dalif_hw.core.encoding import encode
    from dalif_hw.quant.packing import pack_network
    from dalif_hw.twin import run_network

    encoding = {"kind": "analog", "T": 3, "levels": 4, "max_value": 2.0}
    counts = encode(np.array([[0.0, 0.26, 1.0, 2.0]]), encoding)
    assert counts.tolist() == [[[0, 1, 2, 4]] * 3]
    with pytest.raises(ConfigError, match=r"analog input 2.5 at \[0, 1\] is outside "
                       r"\[0, max_value = 2\]"):
        encode(np.array([[0.0, 2.5]]), encoding)
    # On the grid of max_value / levels the hardware's current is the float layer's, in
    # units of its scale: weights whose largest is 127, so that none rounds at WB = 8.
    layer = nn.Sequential(nn.Linear(4, 3, bias=False), snn.Leaky(beta=0.5))
    weight = torch.tensor([[1.0, -2.0, 50.0, 127.0], [2.0, 1.0, 1.0, -1.0],
                           [0.0, 3.0, -127.0, 1.0]])
    with torch.no_grad():
        layer[0].weight.copy_(weight)
    network = pack_network(from_module(layer, (4,)), T=3, encoding=encoding)
    dense = network.layers[0]
    assert dense.config.beat_cap == 16          # 4 inputs, up to 4 beats each
    traces, _ = run_network(network, counts)
    x = torch.tensor([[0.0, 0.5, 1.0, 2.0]])   # the counts' values: on the grid
    with torch.no_grad():
        want = layer[0](x) / dense.scale       # = weight @ counts
    assert want.tolist() == [[606.0, -1.0, -247.0]]
    assert traces[0].current[0].tolist() == [[606, -1, -247]] * 3


def test_pack_reports_what_quantization_costs_and_picks_widths(tmp_path, capsys):
    (tmp_path / "net.py").write_text(MODULE_FILE)
    net, _ = snntorch_tutorial_mlp(inputs=20, hidden=30, outputs=4, num_steps=5, seed=3)
    with torch.no_grad():
        net.fc1.weight.mul_(4.0)
        net.fc2.weight.mul_(4.0)
    torch.save(net.state_dict(), tmp_path / "state.pt")
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "cal.npz", counts=np.repeat(rng.integers(0, 16, (32, 1, 20)), 5, 1))
    common = [f"{tmp_path / 'net.py'}:build_net", "--weights", str(tmp_path / "state.pt"),
              "--T", "5", "--analog", "15", "--calibration", str(tmp_path / "cal.npz")]
    reached = {}
    for wb in ("3", "auto"):
        out = tmp_path / f"packed{wb}"
        assert run(pack_command.main, [*common, "--weight-width", wb, "--agreement", "0.995",
                                       "--out", str(out)]) == 0
        text = capsys.readouterr().out
        assert f"on {tmp_path / 'cal.npz'}:" in text
        lines = [line.split(":") for line in text.splitlines() if "of spikes as" in line]
        assert [name.strip() for name, _ in lines] == ["hidden0", "hidden1"]
        reached[wb] = [float(rest.split()[0]) for _, rest in lines]
        reached[wb + " widths"] = [layer.params.WB for layer in Network.load(out).layers]
    # At 3 bits the layers drift; auto widens each until it keeps 99.5% of its spikes.
    assert min(reached["3"]) < 0.995 <= min(reached["auto"])
    assert reached["3 widths"] == [3, 3] and all(3 < wb <= 16 for wb in reached["auto widths"])
