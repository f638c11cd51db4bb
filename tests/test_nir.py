"""NIR in and out, against the real frameworks: snnTorch exports and simulates, SpikingJelly's
exports and spikes are fixtures (tests/fixtures/nir/make_spikingjelly.py); the RTL side is in
sim/test_nir_network.py."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from dalif_hw import nir as nir_command
from dalif_hw import pack as pack_command
from dalif_hw.cli import run
from dalif_hw.core.config import ConfigError
from dalif_hw.harness.peers import (
    snntorch_conv,
    snntorch_dense,
    snntorch_export,
    snntorch_export_graph,
    snntorch_residual,
    snntorch_run,
)
from dalif_hw.interchange import from_nir, to_nir
from dalif_hw.model import DALIFMLP, INPUT, DALIFConvNet, DALIFGraph, DALIFLinear, SpikeAdd
from dalif_hw.quant.packed import Network
from dalif_hw.quant.packing import pack_network, quantize
from dalif_hw.twin import run_network

FIXTURES = Path(__file__).parent / "fixtures" / "nir"


def random_spikes(shape, seed, p=0.3):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def assert_same_spikes(got, want, what):
    got, want = np.asarray(got, bool), np.asarray(want, bool)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    bad = np.argwhere(got != want)
    assert not len(bad), (f"{what}: {len(bad)} spikes differ, first at timestep {bad[0][0]}, "
                          f"sample {bad[0][1]}, neuron {tuple(bad[0][2:])}")


@pytest.mark.parametrize("build", [snntorch_dense, snntorch_conv], ids=["dense", "conv"])
@pytest.mark.parametrize("seed", [0, 1])
def test_snntorch_export_imports_to_identical_spikes(build, seed):
    net, in_shape = build(seed=seed)
    graph = snntorch_export(net, in_shape)
    model = from_nir(graph)
    x = random_spikes((12, 32, *in_shape), seed)
    want = snntorch_run(net, x)
    assert 0.02 < float(want.mean()) < 0.9, "a test network that (almost) never spikes"
    with torch.no_grad():
        got = model(x)
    assert_same_spikes(got, want, f"{build.__name__} seed {seed}")
    # The hidden layers too: every one of them carries spikes, so each is really tested.
    with torch.no_grad():
        assert all(float(h.mean()) > 0.02 for h in model.hidden_spikes(x))


def test_snntorch_readout_imports_to_the_same_current():
    net, in_shape = snntorch_dense((16, 24, 5), seed=2, readout=True)
    model = from_nir(snntorch_export(net, in_shape))
    assert model.readout is not None and model.integrate is None
    x = random_spikes((6, 16, 16), 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), snntorch_run(net, x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["dense", "conv"])
def test_spikingjelly_fixtures_import_to_its_spikes(name):
    graph = nir.read(FIXTURES / f"spikingjelly_{name}.nir")
    data = np.load(FIXTURES / f"spikingjelly_{name}.npz")
    assert 0 < data["outputs"].mean() < 1
    with torch.no_grad():
        got = from_nir(graph)(torch.tensor(data["inputs"], dtype=torch.float32))
    assert_same_spikes(got, data["outputs"], f"spikingjelly_{name}")


def _chain_of(graph):
    """(type, arrays) of the nodes in edge order from the Input."""
    after = dict(graph.edges)
    name = next(n for n, node in graph.nodes.items() if isinstance(node, nir.Input))
    chain = []
    while name is not None:
        node = graph.nodes[name]
        arrays = {k: np.asarray(v, np.float64) for k, v in vars(node).items()
                  if isinstance(v, (np.ndarray, np.number, int, float, tuple))
                  and k not in ("input_type", "output_type")}
        chain.append((type(node).__name__, arrays))
        name = after.get(name)
    return chain


def assert_same_graph(got, want, rtol=0.0, same_names=True):
    """The same chain of node types and arrays (within ``rtol``); with ``same_names`` the
    same node names and edges too."""
    if same_names:
        assert sorted(map(tuple, got.edges)) == sorted(map(tuple, want.edges))
    a, b = _chain_of(got), _chain_of(want)
    assert [t for t, _ in a] == [t for t, _ in b]
    for (kind, x), (_, y) in zip(a, b):
        assert x.keys() == y.keys(), kind
        for key in x:
            np.testing.assert_allclose(x[key], y[key], rtol=rtol, atol=0, err_msg=f"{kind}.{key}")


@pytest.mark.parametrize("build", [snntorch_dense, snntorch_conv], ids=["dense", "conv"])
def test_round_trip_keeps_nodes_edges_and_arrays(build, tmp_path):
    net, in_shape = build()
    graph = snntorch_export(net, in_shape)
    nir.write(tmp_path / "m.nir", graph)
    source = nir.read(tmp_path / "m.nir")
    model = from_nir(source)
    assert_same_graph(to_nir(model), source)
    # Through the commands: import to a checkpoint, export it again.
    assert run(nir_command.main, ["import", str(tmp_path / "m.nir"), "--out",
                                  str(tmp_path / "m.pt")]) == 0
    assert run(nir_command.main, ["export", str(tmp_path / "m.pt"), "--out",
                                  str(tmp_path / "back.nir")]) == 0
    assert_same_graph(nir.read(tmp_path / "back.nir"), source)
    # What the model computes, written from its parameters (as after training), is the same
    # graph within float32 rounding.
    del model.nir_source
    assert_same_graph(to_nir(model), source, rtol=1e-5, same_names=False)


def test_a_trained_model_exports_and_imports_to_the_same_spikes():
    torch.manual_seed(3)
    model = DALIFMLP([12, 16, 4], threshold=0.4)
    with torch.no_grad():
        for layer in model.hidden:
            layer.linear.weight.mul_(3)
    graph = to_nir(model)
    assert [type(graph.nodes[n]).__name__ for n, _ in graph.edges] == \
        ["Input", "Affine", "LIF", "Affine"]
    back = from_nir(graph)
    x = random_spikes((6, 20, 12), 4)
    with torch.no_grad():
        want = model.hidden_spikes(x)[0]
        got = back.hidden_spikes(x)[0]
    assert float(want.mean()) > 0.05
    assert_same_spikes(got, want, "hidden layer")
    with torch.no_grad():  # the readout: the current per timestep, averaged by the MLP
        np.testing.assert_allclose(back(x).mean(0), model(x), rtol=1e-5, atol=1e-6)


# -- graphs with branches (SPEC 7) -------------------------------------------------------------

@pytest.mark.parametrize("add", ["spike", "current"])
@pytest.mark.parametrize("seed", [0, 1])
def test_snntorch_residual_blocks_import_to_identical_spikes(add, seed):
    """A residual block as snnTorch users write it (a forward that adds), exported with
    nirtorch's torch.fx tracer: SEW's spike add after the neurons becomes an add of the two
    streams, ResNet's current add (3 x 3 conv plus a 1 x 1 shortcut from the input) one
    convolution over both; the float spikes are snnTorch's own, and exported back (from the
    parameters, as after training) the graph gives them again."""
    net, in_shape = snntorch_residual(add, seed=seed)
    source = snntorch_export_graph(net, in_shape)
    model = from_nir(source)
    if add == "spike":
        assert isinstance(model.body[2], SpikeAdd) and model.inputs[2] == (0, 1)
    else:
        assert model.inputs[1] == (0, INPUT)
        assert model.body[1].conv.kernel_size == (3, 3) and model.body[1].conv.in_channels == 5
    x = random_spikes((10, 24, *in_shape), seed)
    want = snntorch_run(net, x)
    assert 0.02 < float(want.mean()) < 0.9, "a test network that (almost) never spikes"
    with torch.no_grad():
        assert_same_spikes(model(x), want, f"snnTorch {add} add, seed {seed}")
        assert all(float(h.mean()) > 0.02 for h in model.hidden_spikes(x))
    assert sorted(map(tuple, to_nir(model).edges)) == sorted(map(tuple, source.edges))
    del model.nir_source
    graph = to_nir(model)
    merged = [n for n, node in graph.nodes.items() if sum(b == n for _, b in graph.edges) > 1]
    assert len(merged) == 1, graph.edges  # the add's consumer, or the neurons of two convs
    with torch.no_grad():
        assert_same_spikes(from_nir(graph)(x), want, f"{add} add exported and read back")


def test_a_residual_convnet_exports_and_imports_to_the_same_spikes():
    torch.manual_seed(5)
    model = DALIFConvNet((1, 6, 6), [{"kind": "conv2d", "channels": 4, "kernel": 3,
                                      "padding": 1}, {"kind": "residual", "channels": 4}],
                         classes=3, threshold=0.2)
    with torch.no_grad():  # kernels that make every layer spike
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.mul_(3)
    graph = to_nir(model)
    back = from_nir(graph)
    assert [type(m).__name__ for m in back.body] == \
        ["DALIFConv2d", "DALIFConv2d", "DALIFConv2d", "SpikeAdd", "Flatten"]
    x = random_spikes((6, 16, 36), 6)
    with torch.no_grad():
        want, got = model.hidden_spikes(x), back.hidden_spikes(x.reshape(6, 16, 1, 6, 6))
        assert all(float(h.mean()) > 0.02 for h in want)
        for k, (a, b) in enumerate(zip(got, want)):
            assert_same_spikes(a, b, f"spiking layer {k}")
        np.testing.assert_allclose(back(x.reshape(6, 16, 1, 6, 6)).mean(0), model(x),
                                   rtol=1e-5, atol=1e-5)


def _conv_node(stride=1, kernel=3, padding=1, channels=1):
    return nir.Conv2d(input_shape=np.array([6, 6]), weight=np.ones((2, channels, kernel,
                                                                    kernel)),
                      stride=np.array([stride, stride]), padding=np.array([padding, padding]),
                      dilation=np.ones(2), groups=1, bias=np.zeros(2))


@pytest.mark.parametrize("nodes, edges, message", [
    ({"b": _conv_node(stride=2, padding=0)}, [("in", "b"), ("b", "lif")],
     "'b' (Conv2d): it and 'a' feed 'lif' with different strides"),
    ({"b": nir.Affine(weight=np.ones((72, 36)), bias=np.zeros(72))}, [("in", "b"),
                                                                       ("b", "lif")],
     "'lif' (LIF): it is fed by convolutions and affines at once"),
    ({"flat": nir.Flatten(input_type={"input": np.array([1, 6, 6])}, start_dim=0)},
     [("in", "flat"), ("flat", "a")],
     "'a' (Conv2d): an add takes two or more inputs of one shape, not [[1, 6, 6], [36]]"),
])
def test_merges_the_hardware_cannot_take_are_refused(nodes, edges, message):
    lif = nir.LIF(tau=np.ones((2, 6, 6)), r=np.ones((2, 6, 6)), v_leak=np.zeros((2, 6, 6)),
                  v_threshold=np.ones((2, 6, 6)), v_reset=np.zeros((2, 6, 6)))
    graph = {"in": nir.Input(input_type={"input": np.array([1, 6, 6])}), "a": _conv_node(),
             "lif": lif, "out": nir.Output(output_type={"output": np.array([2, 6, 6])})}
    graph.update(nodes)
    all_edges = [("in", "a"), ("a", "lif"), ("lif", "out")] + edges
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        from_nir(nir.NIRGraph(nodes=graph, edges=all_edges, type_check=False))


def test_a_stream_added_to_itself_is_refused():
    # A flatten of a flat stream is that stream: the output would add the spikes twice.
    nodes = {"in": nir.Input(input_type={"input": np.array([4])}),
             "fc": nir.Affine(weight=np.ones((5, 4)), bias=np.zeros(5)),
             "lif": nir.LIF(tau=np.ones(5), r=np.ones(5), v_leak=np.zeros(5),
                            v_threshold=np.ones(5), v_reset=np.zeros(5)),
             "flat": nir.Flatten(input_type={"input": np.array([5])}, start_dim=0),
             "out": nir.Output(output_type={"output": np.array([5])})}
    edges = [("in", "fc"), ("fc", "lif"), ("lif", "flat"), ("flat", "out"), ("lif", "out")]
    with pytest.raises(ConfigError, match=r"'out' \(Output\): it adds a stream to itself"):
        from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


@pytest.mark.parametrize("reset", ["soft", "subtract", "none"])
def test_a_reset_other_than_hard_is_kept_in_metadata_and_honoured(reset):
    layer = DALIFLinear(6, 5, reset=reset, threshold=0.3, learn_alpha=False, alpha=1.0)
    model = DALIFGraph((6,), [layer])
    graph = to_nir(model)
    lif = next(node for node in graph.nodes.values() if isinstance(node, nir.LIF))
    assert lif.metadata == {"dalif_hw_reset": reset}
    back = from_nir(graph)
    assert back.body[0].neuron.reset == reset
    x = random_spikes((8, 10, 6), 5, p=0.6)
    with torch.no_grad():
        assert_same_spikes(back(x), model(x), f"{reset} reset")


def test_an_unknown_reset_in_metadata_is_refused():
    layer = DALIFLinear(6, 5, threshold=0.3, learn_alpha=False, alpha=1.0)
    graph = to_nir(DALIFGraph((6,), [layer]))
    lif = next(node for node in graph.nodes.values() if isinstance(node, nir.LIF))
    lif.metadata = {"dalif_hw_reset": "zero"}
    with pytest.raises(ConfigError, match="metadata dalif_hw_reset 'zero' is not one of hard, "
                       "soft, subtract, none"):
        from_nir(graph)


def euler_lif(current, tau, r, v_leak, theta, dt):
    """NIR's LIF by forward Euler, read off its definition (float64): the reference."""
    v = np.zeros(current.shape[1:])
    out = []
    for i_t in current:
        v = v + dt / tau * (v_leak - v + r * i_t)
        fired = v > theta
        out.append(fired)
        v = np.where(fired, 0.0, v)
    return np.array(out)


def test_leak_voltage_and_alpha_above_one_fold_into_weights_and_bias():
    rng = np.random.default_rng(0)
    M, N, dt = 8, 6, 1e-3
    w, b = rng.normal(size=(N, M)), rng.normal(size=N) * 0.1
    tau = rng.uniform(2e-3, 1e-2, N)
    r = rng.uniform(0.5, 12.0, N)  # alpha = r dt / tau from 0.05 to 6: some above 1
    v_leak = rng.normal(size=N) * 0.3
    theta = rng.uniform(0.5, 1.0, N)
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([M])}), nir.Affine(weight=w, bias=b),
        nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=theta, v_reset=np.zeros(N)),
        nir.Output(output_type={"output": np.array([N])}))
    model = from_nir(graph, dt=dt)
    assert float(model.body[0].neuron.alpha.max()) <= 1.0 < (r * dt / tau).max()
    x = random_spikes((20, 16, M), 1, p=0.5)
    want = euler_lif(x.double().numpy() @ w.T + b, tau, r, v_leak, theta, dt)
    assert 0.05 < want.mean() < 0.9
    with torch.no_grad():
        got = model(x)
    # float32 against float64: equal but for membranes within rounding of the threshold.
    assert (got.numpy().astype(bool) != want).mean() < 1e-3


def test_readout_endings_affine_and_integrator():
    rng = np.random.default_rng(2)
    w1, w2 = rng.normal(size=(10, 6)) * 2, rng.normal(size=(3, 10))
    lif = nir.LIF(tau=np.full(10, 5e-4), r=np.full(10, 5.0), v_leak=np.zeros(10),
                  v_threshold=np.full(10, 0.5), v_reset=np.zeros(10))
    head = [nir.Input(input_type={"input": np.array([6])}),
            nir.Affine(weight=w1, bias=np.zeros(10)), lif,
            nir.Affine(weight=w2, bias=np.array([0.1, -0.2, 0.0]))]
    tail = nir.Output(output_type={"output": np.array([3])})
    x = random_spikes((5, 7, 6), 3, p=0.5)
    current = from_nir(nir.NIRGraph.from_list(*head, tail))
    integral = from_nir(nir.NIRGraph.from_list(*head, nir.I(r=np.full(3, 2e3)), tail))
    with torch.no_grad():
        hidden = current.body[0](x)
        want = hidden @ torch.tensor(w2.T, dtype=torch.float32) + torch.tensor([0.1, -0.2, 0.0])
        np.testing.assert_allclose(current(x), want, rtol=1e-6, atol=1e-6)
        # I: dv/dt = r I, so v[t] = sum over t' <= t of r dt I[t'] (r dt = 0.2 here).
        np.testing.assert_allclose(integral(x), 0.2 * torch.cumsum(want, 0), rtol=1e-5,
                                   atol=1e-6)
    # Packed, both become the readout that sums over the sample.
    for model in (current, integral):
        network = pack_network(model, T=5, encoding={"kind": "spikes", "T": 5})
        assert network.has_readout and [layer.kind for layer in network.layers] == \
            ["dense", "readout"]


@pytest.mark.parametrize("edit, message", [
    (lambda n: n.insert(3, nir.LI(tau=np.ones(5), r=np.ones(5), v_leak=np.zeros(5))),
     "'li' (LI): a leaky integrator leaks"),
    (lambda n: n.__setitem__(2, nir.CubaLIF(
        tau_syn=np.ones(5), tau_mem=np.ones(5), r=np.ones(5), v_leak=np.zeros(5),
        v_threshold=np.ones(5))), "(CubaLIF): its synaptic time constant"),
    (lambda n: n.insert(2, nir.Delay(delay=np.ones(5))), "(Delay): delays have no hardware"),
    (lambda n: n.__setitem__(2, nir.LIF(tau=np.ones(5), r=np.ones(5), v_leak=np.zeros(5),
                                        v_threshold=np.ones(5), v_reset=np.full(5, 0.1))),
     "v_reset 0.1 is not 0"),
    (lambda n: n.__setitem__(2, nir.LIF(tau=np.full(5, 1e-5), r=np.ones(5), v_leak=np.zeros(5),
                                        v_threshold=np.ones(5), v_reset=np.zeros(5))),
     "tau 1e-05 is below dt = 0.001 (its LIF nodes have r = 1, as Norse writes them: "
     "Norse's default): the Euler step would overshoot"),
    (lambda n: n.insert(2, nir.Affine(weight=np.ones((5, 5)), bias=np.zeros(5))),
     "'affine_1' (Affine): after 'affine' the hardware takes LIF or IF neurons"),
])
def test_unsupported_graphs_are_refused_naming_the_node(edit, message):
    nodes = [nir.Input(input_type={"input": np.array([4])}),
             nir.Affine(weight=np.ones((5, 4)), bias=np.zeros(5)),
             nir.LIF(tau=np.ones(5), r=np.ones(5), v_leak=np.zeros(5), v_threshold=np.ones(5),
                     v_reset=np.zeros(5)),
             nir.Output(output_type={"output": np.array([5])})]
    edit(nodes)
    graph = nir.NIRGraph.from_list(*nodes, type_check=False)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_nir(graph)


def test_recurrent_and_branching_graphs_are_refused():
    lif = dict(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
               v_reset=np.zeros(3))
    nodes = {"in": nir.Input(input_type={"input": np.array([3])}),
             "fc": nir.Affine(weight=np.eye(3), bias=np.zeros(3)), "lif": nir.LIF(**lif),
             "rec": nir.Linear(weight=np.eye(3)), "out": nir.Output(output_type={
                 "output": np.array([3])})}
    recurrent = nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "rec"),
                                                 ("rec", "lif"), ("lif", "out")],
                             type_check=False)
    with pytest.raises(ConfigError, match="'lif' .*a recurrent edge from 'rec' comes back"):
        from_nir(recurrent)
    dangling = nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "rec"),
                                                ("lif", "out")], type_check=False)
    with pytest.raises(ConfigError, match="'rec' .*goes nowhere"):
        from_nir(dangling)
    # A current that feeds a neuron layer and the output at once has no hardware.
    nodes.pop("rec")
    branch = nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("fc", "out"),
                                              ("lif", "out")], type_check=False)
    with pytest.raises(ConfigError, match="'fc' .*its current feeds 2 nodes \\(lif, out\\)"):
        from_nir(branch)
    # snnTorch's RLeaky: its recurrent weights come back to its neurons.
    import snntorch as snn

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), snn.RLeaky(
        beta=torch.full((3,), 0.9), linear_features=3, init_hidden=True, output=True))
    with pytest.raises(ConfigError, match="'1.lif' .*a recurrent edge from '1.w_rec'"):
        from_nir(snntorch_export(net, (4,)))


def test_strict_threshold_packs_to_floor_plus_one():
    # theta / s = 2.0 exactly: NIR's v > 2 is the integers' v >= 3; DA-LIF's v >= 2 stays 2.
    args = dict(weight=np.array([[1.0]]), alpha=[1.0], beta=[0.5], threshold=[0.5],
                scale=0.25)
    assert quantize(**args, strict=True)[0].threshold.tolist() == [3]
    assert quantize(**args)[0].threshold.tolist() == [2]
    assert quantize(**{**args, "threshold": [0.6]}, strict=True)[0].threshold.tolist() == [3]


@pytest.mark.parametrize("build, export", [
    (snntorch_dense, snntorch_export), (snntorch_conv, snntorch_export),
    (lambda: snntorch_residual("spike"), snntorch_export_graph),
    (lambda: snntorch_residual("current"), snntorch_export_graph)],
    ids=["dense", "conv", "spike-add", "current-add"])
def test_pack_takes_a_nir_file_and_the_twin_tracks_the_float_model(build, export, tmp_path,
                                                                   capsys):
    net, in_shape = build()
    nir.write(tmp_path / "m.nir", export(net, in_shape))
    assert run(pack_command.main, [str(tmp_path / "m.nir"), "--out", str(tmp_path / "p")]) == 1
    assert "carries no T: give the timesteps per sample with --T" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert run(pack_command.main, [str(tmp_path / "m.nir"), "--T", "8", "--out",
                                   str(tmp_path / "p")]) == 0
    network = Network.load(tmp_path / "p")
    assert not network.has_readout and network.encoding == {"kind": "spikes", "T": 8}
    x = random_spikes((8, 64, *in_shape), 9)
    with torch.no_grad():
        want = from_nir(tmp_path / "m.nir")(x).flatten(2).numpy().astype(bool)
    traces, logits = run_network(network, x.flatten(2).bool().numpy().transpose(1, 0, 2))
    assert logits is None
    got = traces[-1].spikes_out.transpose(1, 0, 2)
    # 8-bit weights: the integer twin follows the float model closely, not exactly.
    agreement = float((got == want).mean())
    assert agreement > 0.95, f"integer twin agrees with the float model on {agreement:.3f}"


def test_import_command_refuses_and_writes_nothing(tmp_path, capsys):
    nodes = [nir.Input(input_type={"input": np.array([4])}),
             nir.Affine(weight=np.ones((5, 4)), bias=np.zeros(5)),
             nir.LI(tau=np.ones(5), r=np.ones(5), v_leak=np.zeros(5)),
             nir.Output(output_type={"output": np.array([5])})]
    nir.write(tmp_path / "li.nir", nir.NIRGraph.from_list(*nodes))
    out = tmp_path / "sub" / "m.pt"
    assert run(nir_command.main, ["import", str(tmp_path / "li.nir"), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(LI): a leaky integrator leaks" in err[0]
    assert not out.exists() and not out.parent.exists()
    (tmp_path / "junk.nir").write_text("not hdf5")
    assert run(nir_command.main, ["import", str(tmp_path / "junk.nir"), "--out", str(out)]) == 1
    assert "cannot be read by nir.read" in capsys.readouterr().err
