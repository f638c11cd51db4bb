"""NIR as other tools write it (issue 24, item 4): the time step each writer means, IF
neurons, snnTorch's beta = 1, a leading batch dimension, and networks that could never fire
at the time step taken, each refused in one line that names the cause and a fix."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from dalif_hw import nir as nir_command
from dalif_hw.cli import run
from dalif_hw.core.config import ConfigError
from dalif_hw.harness.peers import snntorch_export, snntorch_run
from dalif_hw.interchange import from_nir, to_nir
from dalif_hw.interchange.nir_graph import time_step


def spikes(shape, seed, p=0.4):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def if_reference(currents, r, theta):
    """A discrete IF neuron (sinabs' IAF with one spike a step, Norse's IAF): v += r I,
    fire where v > theta, then v = 0."""
    v = np.zeros(currents.shape[1:])
    out = []
    for current in currents:
        v = v + r * current
        fired = v > theta
        out.append(fired)
        v = np.where(fired, 0.0, v)
    return np.stack(out)


def if_graph(weight, theta, in_shape, batch=False):
    """Input -> Affine -> IF (r = 1) -> Output, as sinabs and Norse write an IAF layer."""
    n = weight.shape[0]
    shape = (1, *in_shape) if batch else tuple(in_shape)
    return nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array(shape)}),
        nir.Affine(weight=weight, bias=np.zeros(n)),
        nir.IF(r=np.ones(n), v_threshold=np.full(n, theta), v_reset=np.zeros(n)),
        nir.Output(output_type={"output": np.array([n])}), type_check=not batch)


def test_if_with_r_one_is_a_discrete_step_and_fires():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(7, 10))
    graph = if_graph(weight, 1.5, (10,))
    assert float(time_step(graph)) == 1.0
    model = from_nir(graph)
    assert model.nir_source["dt"] == 1.0 and "sinabs" in model.nir_source["dt_reason"]
    x = spikes((9, 16, 10), 1)
    want = if_reference(x.double().numpy() @ weight.T, 1.0, 1.5)
    assert 0.05 < want.mean() < 0.9
    with torch.no_grad():
        got = model(x).numpy().astype(bool)
    assert (got != want).mean() < 1e-3      # float32 against float64 at the threshold


def test_a_network_that_cannot_fire_at_the_given_dt_is_refused():
    weight = np.random.default_rng(0).normal(size=(7, 10))
    with pytest.raises(ConfigError, match=r"NIR node 'if' \(IF\): no neuron can fire within "
                       r"1000 timesteps at dt = 0.0001 \(given\): the highest membrane "
                       r"within reach is .*; give the time step the file was written with \(--dt"):
        from_nir(if_graph(weight, 1.5, (10,)), dt=1e-4)


def test_the_nir_command_says_which_dt_it_took(tmp_path, capsys):
    weight = np.random.default_rng(0).normal(size=(7, 10))
    nir.write(tmp_path / "if.nir", if_graph(weight, 1.5, (10,)))
    assert run(nir_command.main, ["import", str(tmp_path / "if.nir"), "--out",
                                  str(tmp_path / "m.pt")]) == 0
    assert "dt = 1: its IF nodes have r = 1: discrete steps, as sinabs and Norse write them" \
        in capsys.readouterr().out


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_a_leading_batch_dimension_of_one_is_accepted(conv):
    rng = np.random.default_rng(3)
    if conv:
        weight = rng.normal(size=(3, 2, 3, 3))
        nodes = [nir.Input(input_type={"input": np.array([1, 2, 5, 5])}),
                 nir.Conv2d(input_shape=None, weight=weight, stride=1, padding=1, dilation=1,
                            groups=1, bias=np.zeros(3)),
                 nir.IF(r=np.ones((3, 5, 5)), v_threshold=np.ones((3, 5, 5)),
                        v_reset=np.zeros((3, 5, 5))),
                 nir.Flatten(input_type={"input": np.array([1, 3, 5, 5])}, start_dim=1),
                 nir.Affine(weight=rng.normal(size=(4, 75)), bias=np.zeros(4)),
                 nir.Output(output_type={"output": np.array([1, 4])})]
        graph = nir.NIRGraph.from_list(*nodes, type_check=False)
    else:
        graph = if_graph(rng.normal(size=(7, 10)), 1.5, (10,), batch=True)
    model = from_nir(graph)
    assert model.in_shape == ((2, 5, 5) if conv else (10,))
    shape = model.in_shape
    with torch.no_grad():
        unbatched = from_nir(graph)(spikes((4, 3, *shape), 2))
        assert unbatched.shape[:2] == (4, 3)


def test_snntorch_leaky_with_beta_one_imports_as_if():
    torch.manual_seed(0)
    n_in, n = 10, 6
    linear = nn.Linear(n_in, n)
    with torch.no_grad():
        linear.weight.mul_(2.0)
    net = nn.Sequential(linear, snn.Leaky(beta=torch.ones(n), threshold=torch.full((n,), 0.8),
                                          reset_mechanism="zero", init_hidden=True,
                                          output=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)    # snnTorch's dt / (1 - 1)
        graph = snntorch_export(net, (n_in,))
    lif = next(node for node in graph.nodes.values() if isinstance(node, nir.LIF))
    assert np.isinf(lif.tau).all() and np.isinf(lif.r).all()
    model = from_nir(graph)
    neuron = model.body[0].neuron
    assert torch.equal(neuron.beta, torch.ones(n)) and torch.equal(neuron.alpha, torch.ones(n))
    x = spikes((10, 32, n_in), 4)
    want = snntorch_run(net, x)
    assert 0.05 < float(want.mean()) < 0.9
    with torch.no_grad():
        got = model(x)
    assert torch.equal(got.bool(), want.bool())


@pytest.mark.parametrize("key, value, message", [
    ("tau", np.nan, "tau nan is not a finite number"),
    ("v_threshold", np.inf, "v_threshold inf is not a finite number"),
    ("r", np.nan, "r nan is not a finite number"),
    ("tau", -1.0, "tau -1 is not positive"),
])
def test_non_numbers_in_a_neuron_are_refused(key, value, message):
    params = dict(tau=np.full(4, 1e-3), r=np.full(4, 10.0), v_leak=np.zeros(4),
                  v_threshold=np.ones(4), v_reset=np.zeros(4))
    params[key] = np.full(4, value)
    graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([3])}),
                                   nir.Affine(weight=np.ones((4, 3)), bias=np.zeros(4)),
                                   nir.LIF(**params),
                                   nir.Output(output_type={"output": np.array([4])}))
    with pytest.raises(ConfigError, match=f"NIR node 'lif' \\(LIF\\): {message}"):
        from_nir(graph, dt=1e-4)


def test_the_export_writes_its_dt_and_the_import_reads_it():
    weight = np.random.default_rng(0).normal(size=(7, 10))
    model = from_nir(if_graph(weight, 1.5, (10,)))
    with torch.no_grad():
        model.body[0].linear.weight.mul_(1.5)        # changed: exported afresh
    graph = to_nir(model)
    assert graph.metadata == {"dt": 1.0}
    again = from_nir(graph)
    assert again.nir_source["dt_reason"] == "the graph's metadata"
    x = spikes((6, 8, 10), 5)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
