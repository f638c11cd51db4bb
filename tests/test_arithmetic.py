"""Hand-worked cases of the integer arithmetic (docs/arithmetic.md), one rule each."""

import numpy as np
import pytest

from dalif_hw import twin
from dalif_hw.core.config import ArrayConfig, ConfigError, rnd, sat
from dalif_hw.core.params import IntParams


def make(weight, alpha, beta, threshold, bias=None, **widths):
    weight = np.array(weight)
    n = weight.shape[0]
    return IntParams(weight=weight, alpha=np.broadcast_to(alpha, (n,)),
                     beta=np.broadcast_to(beta, (n,)), threshold=np.array(threshold),
                     bias=None if bias is None else np.array(bias), **widths)


def spikes(*steps):
    """One sample: a list of timesteps, each a list of 0/1 per input."""
    return np.array([steps], dtype=bool)


@pytest.mark.parametrize("x, expected", [(-384, -1), (-385, -2), (-129, -1), (-128, 0),
                                         (-1, 0), (0, 0), (127, 0), (128, 1), (384, 2)])
def test_rnd_rounds_halves_up(x, expected):
    # DB = 8: -1.5 -> -1, -0.5 -> 0, 0.5 -> 1, 1.5 -> 2; just below a half rounds down.
    assert rnd(x, 8) == expected
    assert rnd(np.array([x]), 8)[0] == expected


def test_sat_clamps_both_ends():
    assert sat(200, 8) == 127 and sat(-200, 8) == -128 and sat(5, 8) == 5
    np.testing.assert_array_equal(sat(np.array([-129, -128, 127, 128]), 8), [-128, -128, 127, 127])


def test_rounding_of_negative_and_positive_products():
    # alpha = 0.5, beta = 0: V = rnd(128 * w) for a single spike.
    p = make([[-3], [-1], [1], [3], [-2]], alpha=128, beta=0, threshold=100)
    trace = twin.run(p, spikes([1]))
    np.testing.assert_array_equal(trace.membrane[0, 0], [-1, 0, 1, 2, -1])


def test_saturation_at_both_ends():
    # VB = 8: [-128, 127]. Neuron 0 is driven to +254, neuron 1 to -256 per step.
    p = make([[127, 127], [-128, -128]], alpha=256, beta=256, threshold=[127, 127], VB=8)
    trace = twin.run(p, spikes([1, 1], [1, 1]))
    np.testing.assert_array_equal(trace.current[0], [[254, -256], [254, -256]])
    np.testing.assert_array_equal(trace.membrane[0], [[127, -128], [127, -128]])
    np.testing.assert_array_equal(trace.spikes_out[0], [[True, False], [True, False]])


def test_soft_reset_saturates_after_subtracting():
    # theta = -100: V = 127 fires and H = sat(127 + 100) = 127; then beta = 0.5 gives
    # rnd(128 * 127) = rnd(16256) = 64, which fires again.
    p = make([[127]], alpha=256, beta=128, threshold=-100, VB=8, reset="soft")
    trace = twin.run(p, spikes([1], [0]))
    np.testing.assert_array_equal(trace.membrane[0, :, 0], [127, 64])
    np.testing.assert_array_equal(trace.spikes_out[0, :, 0], [True, True])


@pytest.mark.parametrize("reset, w, membrane, fired", [
    ("hard", 150, [150, 150, 150], [1, 1, 1]),
    ("soft", 150, [150, 200, 250], [1, 1, 1]),
    ("hard", 60, [60, 120, 60], [0, 1, 0]),
    ("soft", 60, [60, 120, 80], [0, 1, 0]),
])
def test_hard_and_soft_reset(reset, w, membrane, fired):
    p = make([[w]], alpha=256, beta=256, threshold=100, reset=reset, WB=9)
    trace = twin.run(p, spikes([1], [1], [1]))
    np.testing.assert_array_equal(trace.membrane[0, :, 0], membrane)
    np.testing.assert_array_equal(trace.spikes_out[0, :, 0], np.array(fired, bool))


def test_per_neuron_threshold_fires_at_equality():
    p = make([[50], [50], [50]], alpha=256, beta=0, threshold=[40, 50, 60])
    trace = twin.run(p, spikes([1]))
    np.testing.assert_array_equal(trace.spikes_out[0, 0], [True, True, False])


def test_bias_enters_every_timestep():
    # beta = 0.5: 10; rnd(128 * 10) + 10 = 15; rnd(128 * 15) + 10 = 8 + 10 = 18 (7.5 -> 8).
    p = make([[99]], alpha=256, beta=128, threshold=1000, bias=[10])
    trace = twin.run(p, spikes([0], [0], [0]))
    np.testing.assert_array_equal(trace.current[0, :, 0], [10, 10, 10])
    np.testing.assert_array_equal(trace.membrane[0, :, 0], [10, 15, 18])


@pytest.mark.parametrize("beats, current, dropped", [
    ([0, 0, 1], None, None),          # three beats but M = 2: the third is dropped
    ([0, 0], 10, False),              # a repeated index counts twice
    ([1, 0], 12, False),
    ([0, 0, 0], 10, True),            # beyond the M-th counted beat
    ([5, 0], 5, True),                # out of range, dropped
    ([5, 0, 1], 12, True),            # out-of-range beats do not use up the M counted
    ([0, 1, 5, 0], 12, True),
    ([], 0, False),
])
def test_events_count_repeats_and_drop_extras(beats, current, dropped):
    if current is None:
        current, dropped = 10, True
    p = make([[5, 7]], alpha=256, beta=0, threshold=1000)
    counts, was_dropped = twin.counts_from_events([[beats]], inputs=2)
    trace = twin.run(p, [[beats]])
    assert trace.current[0, 0, 0] == current
    assert was_dropped[0] == dropped and trace.dropped[0] == dropped
    assert counts.sum() == min(len([b for b in beats if 0 <= b < 2]), 2)


def test_state_returns_to_zero_after_T_timesteps():
    # beta = 1 keeps 60 below theta = 100 at the end of sample 0; sample 1 starts from 0.
    p = make([[30]], alpha=256, beta=256, threshold=100)
    stimulus = np.array([[[1], [1]], [[0], [1]]], bool)
    trace = twin.run(p, stimulus)
    np.testing.assert_array_equal(trace.membrane[:, :, 0], [[30, 60], [0, 30]])
    alone = twin.run(p, stimulus[1:])
    np.testing.assert_array_equal(alone.membrane, trace.membrane[1:])


def test_events_and_bool_spikes_agree():
    rng = np.random.default_rng(1)
    p = make(rng.integers(-128, 128, (6, 5)), alpha=rng.integers(0, 257, 6),
             beta=rng.integers(0, 257, 6), threshold=rng.integers(-50, 200, 6), VB=10,
             reset="soft")
    stim = rng.random((4, 3, 5)) < 0.5
    events = [[list(np.flatnonzero(step)) for step in sample] for sample in stim]
    a, b = twin.run(p, stim), twin.run(p, events)
    for name in ("current", "membrane", "spikes_out"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_widths_that_would_overflow_int64_are_refused():
    with pytest.raises(ConfigError, match="more than 63"):
        ArrayConfig(4, 4, 2, WB=8, DB=30, VB=40)


def test_model_twin_and_packing_import_without_amaranth():
    """The one source of truth for widths, rounding and saturation needs no HDL: the model,
    the twin and the packer work where Amaranth is absent."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['amaranth'] = None\n"
            "import dalif_hw, dalif_hw.core.config, dalif_hw.twin, dalif_hw.model, dalif_hw.pack\n"
            "import dalif_hw.golden, dalif_hw.quant.packed, dalif_hw.quant.packing\n"
            "assert 'amaranth.hdl' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("count_max, weight_max", [(1, 127), (2**17 + 1, 127), (2**43, 127),
                                                   (2**60 // 256, 3)])
def test_exact_product_is_exact_on_each_path(count_max, weight_max):
    """float32 below 2**24, float64 below 2**53, int64 beyond: each equal to the product in
    Python integers (including sums that float32 could not hold: 2**24 + 1 and above)."""
    from dalif_hw.twin import exact_product

    rng = np.random.default_rng(count_max % 1000)
    counts = rng.integers(0, count_max + 1, (3, 5, 8), dtype=np.int64)
    counts[0, 0, :2] = [count_max, count_max]     # the largest sums take the bound's path
    weight_t = rng.integers(-weight_max, weight_max + 1, (8, 6), dtype=np.int64)
    weight_t[0, 0] = weight_max
    got = exact_product(counts, weight_t)
    assert got.dtype == np.int64 and got.shape == (3, 5, 6)
    want = [[[sum(int(c) * int(w) for c, w in zip(row, weight_t[:, n])) for n in range(6)]
             for row in sample] for sample in counts]
    assert got.tolist() == want
