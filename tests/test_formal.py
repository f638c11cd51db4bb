"""Formal proofs of the stream protocol (``pytest -m formal``; also in the default run).

Small generated arrays (N = 4, M = 6 so that out-of-range indices exist; P = 1 and 4; both
resets) and a two-layer network (an array and a readout), every input free: the event
stream, ``ready``, the configuration port and the reset. Yosys's ``sat`` proves the
properties of :data:`dalif_hw.harness.formal.INDUCTIVE` by induction (every reachable state) and
checks :data:`dalif_hw.harness.formal.BOUNDED` from reset over at least two whole samples.
"""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from dalif_hw.core.config import ArrayConfig
from dalif_hw.core.params import IntParams, ReadoutParams
from dalif_hw.harness.formal import (
    BOUNDED,
    BROKEN_DIAMONDS,
    INDUCTIVE,
    Diamond,
    Harness,
    array_latency,
    combinational_paths,
    prove,
)
from dalif_hw.hw.network import NetworkTop
from dalif_hw.hw.neuron_array import NeuronArray
from dalif_hw.hw.readout import Readout
from dalif_hw.hw.streams import event_signature
from dalif_hw.quant import packed
from dalif_hw.quant.packed import Dense, Network

pytestmark = pytest.mark.formal

#: Small widths keep the solver fast; the protocol does not depend on them.
WIDTHS = dict(WB=2, DB=1, VB=4)


def two_samples(design, T: int = 1) -> int:
    """Cycles, counted as the bounded check counts them (a reset first), until two whole
    samples offered back to back (eot beats, T per sample) have come out of ``design``
    with every output ready: the second sample's output eot (array) or class beat."""
    sim = Simulator(design)
    sim.add_clock(1e-6)
    network = isinstance(design, NetworkTop)
    outputs = ["logits", "class"] if network else ["o"]
    done = {}

    async def bench(ctx):
        ctx.set(design.i.payload.eot, 1)
        ctx.set(design.i.valid, 1)
        for name in outputs:
            ctx.set(getattr(design, name).ready, 1)
        cycle, offered, finished = 1, 0, 0
        while finished < 2 and cycle < 500:
            cycle += 1
            out = getattr(design, outputs[-1])
            taken = ctx.get(design.i.valid) and ctx.get(design.i.ready)
            ended = ctx.get(out.valid) and (network or ctx.get(out.payload.eot))
            await ctx.tick()
            offered += taken
            if offered == 2 * T:
                ctx.set(design.i.valid, 0)
            finished += ended
        done["cycle"] = cycle

    sim.add_testbench(bench)
    sim.run()
    return done["cycle"]


def live_depth(array: NeuronArray) -> int:
    """A bounded depth for an array's liveness: two whole samples (:func:`two_samples`), and
    at least until the bound of a timestep taken at once after reset has run out (the
    reset, the eot taken, ``base`` quiet cycles and the one that breaks it), so that an
    array that never ends a timestep fails within it."""
    return max(two_samples(array), array_latency(array)[0] + 4)


def array(lanes: int, reset: str, T: int = 2, shifts: int = 1) -> NeuronArray:
    return NeuronArray(ArrayConfig(4, 6, T, reset=reset, lanes=lanes, **WIDTHS),
                       multipliers="logic", shifts=shifts)


def network(T: int = 2) -> NetworkTop:
    return NetworkTop(two_layers(T), multipliers="logic")


def two_layers(T: int) -> Network:
    """An array of 4 neurons over 6 inputs (2 lanes) and a readout of 3 classes."""
    rng = np.random.default_rng(0)
    hidden = IntParams(weight=rng.integers(-2, 2, (4, 6)), alpha=np.full(4, 1),
                       beta=np.full(4, 1), threshold=np.full(4, 1), bias=np.zeros(4, int),
                       **WIDTHS)
    readout = ReadoutParams(weight=rng.integers(-2, 2, (3, 4)), bias=np.zeros(3, int),
                            WB=2, VB=4)
    net = Network(T=T, encoding={"kind": "thermometer", "T": T, "max_value": 16.0}, layers=[
        Dense("hidden", hidden.config(T, lanes=2), hidden, 1.0),
        packed.Readout("readout", readout.config(T, lanes=3), readout, 1.0)])
    return net


def assert_proven(result):
    assert result.status == "proven", result.log[-3000:]


CONFIGS = [(1, "hard"), (1, "soft"), (4, "hard"), (4, "soft")]


@pytest.mark.parametrize("lanes, reset", CONFIGS)
def test_array_protocol_holds_in_every_reachable_state(lanes, reset, tmp_path):
    assert_proven(prove(Harness(array(lanes, reset), INDUCTIVE), tmp_path, induction=16))


def test_array_with_counts_holds_in_every_reachable_state(tmp_path):
    """An array behind a counting pool (beats of 1, 2 or 4 spikes, SPEC's beat cap counting
    each 2 ** shift times, all or none: the error flag's model counts them so)."""
    assert_proven(prove(Harness(array(4, "hard", shifts=3), INDUCTIVE), tmp_path,
                        induction=16))


@pytest.mark.parametrize("lanes, reset", [(1, "soft"), (4, "hard")])
def test_array_events_and_liveness_over_two_samples(lanes, reset, tmp_path):
    """Bounded: T = 1, so that two whole samples fit in few cycles (23 to 27 here)."""
    depth = live_depth(array(lanes, reset, T=1))
    assert depth <= 30  # the solver's time grows fast with the depth
    result = prove(Harness(array(lanes, reset, T=1), BOUNDED), tmp_path, bounded=depth)
    assert result.status == "bounded", result.log[-3000:]


def test_readout_error_flag_in_every_reachable_state(tmp_path):
    """The readout on its own, its input free (any number of beats, any index). Its hold and
    FIFO properties do not close by induction (the buffered FIFO's unreachable states), so
    they are checked bounded, within the network."""
    layer = two_layers(2).layers[-1]
    readout = Readout(layer.config, layer.params)
    assert_proven(prove(Harness(readout, ("drops",)), tmp_path, induction=4))


def test_network_over_two_samples(tmp_path):
    """Every property, bounded, through an array and a readout (T = 1: two whole samples
    end by cycle 35)."""
    depth = two_samples(network(T=1))
    assert depth <= 36
    result = prove(Harness(network(T=1), INDUCTIVE + BOUNDED), tmp_path, bounded=depth)
    assert result.status == "bounded", result.log[-3000:]


def test_a_broken_output_stage_is_caught(tmp_path):
    """Valid dropped while stalled: the proof must fail, with a counterexample."""
    result = prove(Harness(array(4, "hard"), ("hold",), broken="drops-valid"), tmp_path,
                   induction=4)
    assert result.status == "failed"
    assert "Called with -verify and proof did fail" in result.log


@pytest.mark.parametrize("design", ["array", "network"])
def test_an_output_that_stalls_fails_the_liveness_check(design, tmp_path):
    """The liveness bound has teeth within the bounded depth: an output that never moves
    fails it (and only it: the other properties hold for a stalled output)."""
    dut = array(4, "hard", T=1) if design == "array" else network(T=1)
    depth = live_depth(array(4, "hard", T=1)) if design == "array" else \
        two_samples(network(T=1))
    result = prove(Harness(dut, ("liveness",), broken="stalls"), tmp_path, bounded=depth)
    assert result.status == "failed"
    assert "did not end within their bound" in result.log or \
        "Called with -verify and proof did fail" in result.log


def test_no_combinational_path_from_ready_to_valid():
    paths = combinational_paths(array(4, "hard"), ["o__ready"], ["o__valid", "i__ready"])
    assert "o__valid" not in paths
    top = network()
    paths = combinational_paths(top, ["logits__ready", "class__ready"],
                                ["logits__valid", "class__valid"])
    assert paths == {}


class _ReadyToValid(wiring.Component):
    """A stage whose valid waits for ready: what the structural check must find."""

    i: In(event_signature(4))
    o: Out(event_signature(4))

    def elaborate(self, platform):
        m = Module()
        held = Signal()
        m.d.sync += held.eq(self.i.valid)
        m.d.comb += [self.o.valid.eq(held & self.o.ready), self.i.ready.eq(1)]
        return m


def test_the_structural_check_finds_a_path():
    assert combinational_paths(_ReadyToValid(), ["o__ready"], ["o__valid"]) == \
        {"o__valid": ["o__ready"]}


def test_conv_layer_protocol_bounded(tmp_path):
    """A conv2d layer (2 channels, 2x2 kernel, padding, 2 column lanes over WO = 4): hold,
    FIFO and error-flag properties from reset over 24 cycles, every input free. They do not
    close by induction at 16 steps (the window walk's unreachable counter states), so they
    are checked bounded; the Verilator benches cover the long runs."""
    from dalif_hw.core.conv import ConvShape
    from dalif_hw.core.params import ConvParams

    rng = np.random.default_rng(0)
    shape = ConvShape((1, 3, 4), 2, (2, 2), (1, 1), (0, 1))
    params = ConvParams(weight=rng.integers(-2, 2, (2, 1, 2, 2)), alpha=np.full(2, 1),
                        beta=np.full(2, 1), threshold=np.array(1), bias=np.zeros(2, int),
                        in_shape=shape.in_shape, padding=shape.padding, **WIDTHS)
    conv = NeuronArray(params.config(1, lanes=2), params, multipliers="logic")
    result = prove(Harness(conv, INDUCTIVE), tmp_path, bounded=24)
    assert result.status == "bounded", result.log[-3000:]
    # The same check on the layer with a broken output stage fails.
    broken = NeuronArray(params.config(1, lanes=2), params, multipliers="logic")
    result = prove(Harness(broken, ("hold",), broken="drops-valid"), tmp_path / "broken",
                   bounded=24)
    assert result.status == "failed", result.log[-3000:]


def test_conv_layer_with_pooled_currents_protocol_bounded(tmp_path):
    """The same properties for a layer that max-pools its currents (SPEC 6 current_pool:
    3 x 5 pre-pool positions in 2 x 2 windows, the last row and column dropped, 2 pooled
    lanes over 4 pre-pool columns), whose neurons see a pooled group only every other
    row."""
    from dalif_hw.core.conv import ConvShape
    from dalif_hw.core.params import ConvParams

    rng = np.random.default_rng(1)
    shape = ConvShape((1, 4, 4), 2, (2, 2), (1, 1), (0, 1), pool=(2, 2))
    params = ConvParams(weight=rng.integers(-2, 2, (2, 1, 2, 2)), alpha=np.full(2, 1),
                        beta=np.full(2, 1), threshold=np.array(1), bias=np.zeros(2, int),
                        in_shape=shape.in_shape, padding=shape.padding,
                        current_pool=shape.pool, **WIDTHS)
    conv = NeuronArray(params.config(1, lanes=2), params, multipliers="logic")
    result = prove(Harness(conv, INDUCTIVE), tmp_path, bounded=24)
    assert result.status == "bounded", result.log[-3000:]


def test_counting_pool_keeps_the_stream_rules(tmp_path):
    """A counting sum pool (2 x 2 windows over 2 x 4 x 5, a column dropped), every input
    free: AXI-Stream on its output in every reachable state, and its output eots never
    outnumber its input's over 16 cycles from reset; with the output stage broken (valid
    dropped while stalled) the proof fails. (Its liveness is left to the benches: a bound
    for any input order, a row sent for every beat in flight, is deeper than the solver's
    reach here.)"""
    from dalif_hw.core.conv import PoolShape
    from dalif_hw.hw.pool import SpikePool

    pool = SpikePool(PoolShape("sumpool", (2, 4, 5), (2, 2)), counts=True)
    assert_proven(prove(Harness(pool, ("hold",)), tmp_path / "hold"))
    result = prove(Harness(pool, ("hold", "events")), tmp_path / "events", bounded=16)
    assert result.status == "bounded", result.log[-3000:]
    result = prove(Harness(pool, ("hold",), broken="drops-valid"), tmp_path / "broken",
                   induction=4)
    assert result.status == "failed"


# -- a fork-add diamond (SPEC 7) -------------------------------------------------------------

#: Bounded depth and liveness bound of the diamond's proof: the smallest bound it meets
#: (10 fails below; 12 before the add's output FIFO took a beat a cycle), at a depth where
#: a 10-cycle bound is caught.
DIAMOND_DEPTH, DIAMOND_LATENCY = 22, 11
#: Timesteps in flight the check holds: the buffers (two two-entry FIFOs, the add's three)
#: can hold the eots of 7 (with 6 the check's own assertion fails).
DIAMOND_STEPS = 8


def test_fork_add_diamond_keeps_the_stream_rules(tmp_path):
    """A fork, one branch skewed through a FIFO, an add: AXI-Stream holds, every output
    timestep carries its input timestep's spikes twice, and every sample completes under
    free back-pressure within the bound."""
    result = prove(Diamond(2, latency=DIAMOND_LATENCY, steps=DIAMOND_STEPS), tmp_path,
                   bounded=DIAMOND_DEPTH)
    assert result.status == "bounded", result.log[-3000:]


@pytest.mark.slow
def test_the_diamond_liveness_bound_has_teeth(tmp_path):
    """The bound is the smallest the diamond meets: one cycle less fails at the proof's depth.
    (Two minutes of solver time for a constant's tightness, so behind ``-m slow``; that the
    proof can fail at all is shown by the broken diamonds below, in the default run.)"""
    result = prove(Diamond(2, latency=DIAMOND_LATENCY - 1, steps=DIAMOND_STEPS), tmp_path,
                   bounded=DIAMOND_DEPTH)
    assert result.status == "failed"


@pytest.mark.parametrize("broken", sorted(BROKEN_DIAMONDS))
def test_broken_forks_and_adds_are_caught(broken, tmp_path):
    """A fork that repeats a beat to a consumer or lets one miss it, an add that passes an
    input's timestep t + 1 before its own eot of t: each fails the proof."""
    result = prove(Diamond(2, broken=broken, latency=DIAMOND_LATENCY, steps=DIAMOND_STEPS),
                   tmp_path, bounded=DIAMOND_DEPTH)
    assert result.status == "failed"
    assert "Called with -verify and proof did fail" in result.log
