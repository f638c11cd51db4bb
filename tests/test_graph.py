"""Networks as graphs (SPEC 7): the checks of a graph, network.yaml format 3, the twin of a
graph, and the fork and merge stages in ``amaranth.sim`` under random gaps and back-pressure.
Verilator runs of whole graph networks: sim/test_graph_networks.py."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from dalif_hw import twin
from dalif_hw.core.config import ConfigError
from dalif_hw.core.conv import PoolShape
from dalif_hw.core.params import IntParams, ReadoutParams
from dalif_hw.hw.graph import Fork, Merge
from dalif_hw.quant.packed import Add, Dense, MaxPool, Network, Readout, SumPool

T = 2
ENCODING = {"kind": "spikes", "T": T}


def dense(rng, name, m, n, inputs=(), beat_cap=None, threshold=None):
    params = IntParams(weight=rng.integers(-20, 21, (n, m)), alpha=rng.integers(128, 257, n),
                       beta=rng.integers(0, 257, n),
                       threshold=np.array(threshold if threshold is not None else 10),
                       bias=rng.integers(-5, 6, n), VB=12, beat_cap=beat_cap)
    return Dense(name, params.config(T, lanes=2), params, inputs=tuple(inputs))


def readout(rng, m, n=3, inputs=(), beat_cap=None):
    params = ReadoutParams(weight=rng.integers(-20, 21, (n, m)), VB=12, beat_cap=beat_cap)
    return Readout("readout", params.config(T, lanes=n), params, inputs=tuple(inputs))


def residual(rng) -> Network:
    """input 6 -> a -> b -> add(a, b) -> c(add, input) -> readout: a diamond, a fork of the
    input, a layer of two inputs (currents) and an add (spikes)."""
    return Network(T=T, encoding=ENCODING, layers=[
        dense(rng, "a", 6, 4, threshold=5), dense(rng, "b", 4, 4, threshold=5),
        Add("sum", (4,), inputs=("a", "b")),
        dense(rng, "c", 10, 5, inputs=("sum", "input"), beat_cap=14),
        readout(rng, 5)])


def test_a_chain_names_its_inputs_itself():
    rng = np.random.default_rng(0)
    network = Network(T=T, encoding=ENCODING, layers=[dense(rng, "a", 6, 4), readout(rng, 4)])
    assert [layer.inputs for layer in network.layers] == [("input",), ("a",)]
    assert network.is_chain and not residual(rng).is_chain


def test_graph_file_round_trip(tmp_path):
    """Format 3 keeps every layer's inputs; what is loaded describes itself as saved."""
    import yaml

    network = residual(np.random.default_rng(1))
    network.save(tmp_path)
    text = yaml.safe_load((tmp_path / "network.yaml").read_text())
    assert text["format"] == "dalif-hw network 3"
    assert {e["name"]: e["inputs"] for e in text["layers"]} == {
        "a": ["input"], "b": ["a"], "sum": ["a", "b"], "c": ["sum", "input"],
        "readout": ["c"]}
    back = Network.load(tmp_path)
    assert back.describe() == network.describe()
    assert [type(layer) for layer in back.layers] == [type(la) for la in network.layers]


def test_twin_of_a_graph_is_its_layers_composed():
    """Each layer of the graph against the twin of one layer on what it should get: the add
    is the sum of its inputs' spikes, the layer of two inputs one layer over them
    concatenated, the readout sums c's currents."""
    rng = np.random.default_rng(2)
    network = residual(rng)
    spikes = rng.random((7, T, 6)) < 0.5
    traces, logits = twin.run_network(network, spikes)
    a, b, c = (network.layer(n) for n in "abc")
    ta = twin.run(a.params, spikes)
    tb = twin.run(b.params, ta.spikes_out)
    added = ta.spikes_out.astype(int) + tb.spikes_out.astype(int)
    assert added.max() == 2, "the test needs a neuron that spikes in both branches"
    tc = twin.run(c.params, np.concatenate([added, spikes.astype(int)], axis=2))
    for got, want in zip(traces, (ta, tb, tc)):
        assert np.array_equal(got.membrane, want.membrane)
    assert np.array_equal(logits, twin.readout(network.layer("readout").params,
                                               tc.spikes_out))


def test_max_beats_follow_spec_7():
    rng = np.random.default_rng(3)
    network = residual(rng)
    assert network.max_beats() == {"input": 6, "a": 4, "b": 4, "sum": 8, "c": 5,
                                   "readout": 3}


@pytest.mark.parametrize("change,message", [
    (lambda L: [L[0], L[1], Add("sum", (4,), inputs=("a", "x")), *L[3:]], "'x', which is not"),
    (lambda L: [L[0], Add("sum", (4,), inputs=("a", "b")), L[1], *L[3:]], "not before it"),
    (lambda L: [L[0], L[1], Add("sum", (4,), inputs=("a",)), *L[3:]], "two or more inputs"),
    (lambda L: [L[0], L[1], Add("sum", (4,), inputs=("a", "a")), *L[3:]], "names an input "
     "twice"),
    (lambda L: [L[0], L[1], Add("sum", (5,), inputs=("a", "b")), *L[3:]], "takes [5]"),
    (lambda L: [*L[:3], dense(np.random.default_rng(0), "c", 10, 5, ("sum", "input"), 13),
                L[4]], "beat cap 13 is below the 14 beats"),
    (lambda L: [L[0], L[1], L[2], readout(np.random.default_rng(0), 4, inputs=("b",))],
     "feeds no layer"),
    (lambda L: [L[0], L[1], L[2]], "ends in a readout or a DA-LIF layer, not add (sum)"),
    (lambda L: [L[0], L[1], L[2], dense(np.random.default_rng(0), "input", 10, 5,
                                        ("sum", "a"))], "other than 'input'"),
    (lambda L: [L[1], *L[2:]], "first layer (b) takes the network's input"),
    (lambda L: [*L[:3], readout(np.random.default_rng(0), 4, inputs=("sum",))],
     "layer readout: its beat cap 4 is below the 8 beats"),
])
def test_graph_refusals_name_the_problem(change, message):
    layers = list(residual(np.random.default_rng(4)).layers)
    with pytest.raises(ConfigError) as exc:
        Network(T=T, encoding=ENCODING, layers=change(layers))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_readout_after_an_add_counts_every_beat(tmp_path):
    """A readout's beat cap is m(x) of its input as any layer's (SPEC 7): after an add it
    counts a neuron that spiked in both inputs twice, and the cap stays in its files."""
    rng = np.random.default_rng(6)
    layers = list(residual(rng).layers)[:3]
    network = Network(T=T, encoding=ENCODING, layers=[*layers, readout(rng, 4, beat_cap=8)])
    network.save(tmp_path)
    assert Network.load(tmp_path).layers[-1].config.beat_cap == 8
    spikes = np.random.default_rng(7).random((20, T, 6)) < 0.9
    traces, logits = twin.run_network(network, spikes)
    added = traces[0].spikes_out.astype(np.int64) + traces[1].spikes_out
    assert (added.sum(axis=2) > 4).any(), "no timestep with more beats than inputs"
    want = (added.sum(axis=1) @ network.layers[-1].params.weight.T)
    np.testing.assert_array_equal(logits, want)


def test_max_pooling_after_an_add_is_refused():
    rng = np.random.default_rng(5)
    layers = [dense(rng, "a", 8, 8), dense(rng, "b", 8, 8),
              Add("sum", (2, 2, 2), inputs=("a", "b"))]
    pool = PoolShape("maxpool", (2, 2, 2), (2, 2))
    with pytest.raises(ConfigError, match="max pooling after an add is refused"):
        Network(T=T, encoding=ENCODING, layers=layers + [MaxPool("p", pool),
                                                         dense(rng, "c", 2, 2)])
    network = Network(T=T, encoding=ENCODING, layers=layers + [
        SumPool("p", PoolShape("sumpool", (2, 2, 2), (2, 2))), dense(rng, "c", 2, 2,
                                                                      beat_cap=16)])
    assert network.max_beats()["p"] == 16   # two beats an index from the add, 8 indices


# -- the fork and the merge in amaranth.sim --------------------------------------------------

def run_streams(dut, ins: list, outs: list, sent: list, rng, cycles: int) -> list:
    """Drive ``sent[k]`` (lists of (index, eot)) into ``ins[k]`` with random gaps while
    ``outs`` take with random back-pressure; return what each output carried."""
    got = [[] for _ in outs]

    async def bench(ctx):
        queues = [list(s) for s in sent]
        for _ in range(cycles):
            for port, queue in zip(ins, queues):
                if queue and rng.random() < 0.7:
                    ctx.set(port.valid, 1)
                    ctx.set(port.payload, {"index": queue[0][0], "eot": queue[0][1]})
                else:
                    ctx.set(port.valid, 0)
            for port in outs:
                ctx.set(port.ready, int(rng.random() < 0.6))
            taking = [bool(ctx.get(p.valid)) and bool(ctx.get(p.ready)) for p in ins]
            for k, port in enumerate(outs):
                if ctx.get(port.valid) and ctx.get(port.ready):
                    payload = ctx.get(port.payload)
                    got[k].append((int(payload.index), int(payload.eot)))
            await ctx.tick()
            for queue, took in zip(queues, taking):
                if took:
                    queue.pop(0)
        assert not any(queues), f"inputs not taken: {[len(q) for q in queues]}"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


def timesteps(beats: list) -> list:
    """A stream's beats per timestep (as sorted lists)."""
    steps, current = [], []
    for index, eot in beats:
        if eot:
            steps.append(sorted(current))
            current = []
        else:
            current.append(index)
    assert not current, f"beats after the last eot: {current}"
    return steps


@pytest.mark.parametrize("seed", range(4))
def test_fork_gives_every_beat_to_each_consumer_once(seed):
    rng = np.random.default_rng(seed)
    consumers = 2 + seed % 2
    fork = Fork(20, consumers)
    sent = []
    for _ in range(4):
        sent += [(int(j), 0) for j in rng.integers(0, 20, rng.integers(0, 6))] + [(0, 1)]
    got = run_streams(fork, [fork.i], fork.outputs(), [sent], rng, 40 * len(sent))
    assert got == [sent] * consumers     # in order, none missed or repeated


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("offsets", ["add", "concat"])
def test_merge_keeps_timesteps_apart(seed, offsets):
    """Every beat of each input's timestep t in the merge's timestep t (offset), one eot
    per timestep, under random gaps and back-pressure; an input's timestep t + 1 waits for
    the others' eot of t."""
    rng = np.random.default_rng(10 + seed)
    counts = [int(c) for c in rng.integers(3, 9, 2 + seed % 2)]
    shift = [0] * len(counts) if offsets == "add" else \
        [int(v) for v in np.cumsum([0] + counts[:-1])]
    out_count = max(counts) if offsets == "add" else sum(counts)
    merge = Merge(counts, shift, out_count)
    steps = 3
    sent = [[] for _ in counts]
    want = [[] for _ in range(steps)]
    for t in range(steps):
        for k, count in enumerate(counts):
            beats = [int(j) for j in rng.integers(0, count, rng.integers(0, 5))]
            sent[k] += [(j, 0) for j in beats] + [(0, 1)]
            want[t] += [j + shift[k] for j in beats]
    (got,) = run_streams(merge, merge.inputs(), [merge.o], sent, rng,
                         30 * sum(len(s) for s in sent))
    assert timesteps(got) == [sorted(w) for w in want]


def test_merge_drops_an_index_beyond_its_input():
    rng = np.random.default_rng(0)
    merge = Merge([4, 4], [0, 4], 8)
    sent = [[(1, 0), (0, 1)], [(2, 0), (0, 1)]]
    (got,) = run_streams(merge, merge.inputs(), [merge.o], sent, rng, 60)
    assert timesteps(got) == [[1, 6]]
    # An out-of-range index (the port is wider than the input's 5 values) is dropped.
    merge = Merge([5, 4], [0, 5], 9)
    errors = []

    async def bench(ctx):
        ctx.set(merge.o.ready, 1)
        ctx.set(merge.i0.valid, 1)
        ctx.set(merge.i0.payload, {"index": 7, "eot": 0})
        await ctx.tick()
        ctx.set(merge.i0.valid, 0)
        await ctx.tick()
        errors.append(ctx.get(merge.err))
        errors.append(ctx.get(merge.o.valid))

    sim = Simulator(merge)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert errors == [1, 0]


# -- a residual model, packed ----------------------------------------------------------------

def test_resnet_model_packs_as_a_graph_and_is_its_twin():
    """The SEW residual digits model (``--model resnet``) with quantization-aware training
    (the float model computes what the integer twin does): packed as conv, conv, conv, add,
    conv, conv, add, pool, dense, readout with the shortcuts named; beat caps from SPEC 7;
    every hidden spike of the float model equal to the twin's, through both adds."""
    import torch

    from dalif_hw.core.encoding import encode
    from dalif_hw.model.train import TrainOptions, _spikes, fit_digits, load_digits_split
    from dalif_hw.quant.packing import pack_network

    options = TrainOptions(model="resnet", qat=True, WB=4, epochs=1)
    model, _ = fit_digits(options, progress=False)
    network = pack_network(model, T=options.T, encoding=options.encoding(), WB=4)
    assert [(layer.name, layer.kind, layer.inputs) for layer in network.layers] == [
        ("conv0", "conv2d", ("input",)), ("conv1", "conv2d", ("conv0",)),
        ("conv2", "conv2d", ("conv1",)), ("add0", "add", ("conv0", "conv2")),
        ("conv3", "conv2d", ("add0",)), ("conv4", "conv2d", ("conv3",)),
        ("add1", "add", ("add0", "conv4")), ("pool0", "sumpool", ("add1",)),
        ("hidden0", "dense", ("pool0",)), ("readout", "readout", ("hidden0",))]
    caps = {layer.name: layer.config.beat_cap for layer in network.weighted}
    n = network.layers[0].out_size  # a block's neurons: C x 8 x 8
    assert caps["conv3"] == 2 * n and caps["hidden0"] == 3 * n
    data = load_digits_split()
    x = data.test_x[:120]
    traces, logits = twin.run_network(network, encode(x, network.encoding))
    with torch.no_grad():
        spikes = _spikes(x, options.encoding())
        hidden = model.hidden_spikes(spikes)
        classes = model(spikes).argmax(1).numpy()
    assert (logits.argmax(1) == classes).mean() >= 0.99
    assert len(traces) == len(hidden) == 6
    for trace, h in zip(traces, hidden):
        same = (trace.spikes_out == h.numpy().transpose(1, 0, 2).astype(bool)).mean()
        assert same >= 0.999, same
    add0 = traces[0].spikes_out.astype(int) + traces[2].spikes_out
    assert add0.max() == 2, "the blocks' adds must carry coinciding spikes"
