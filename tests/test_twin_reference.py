"""The golden trace against a plain, scalar reading of the arithmetic, on random parameters.

The reference below is written from the equations alone, with Python integers and loops and
none of the package's helpers, so a shared mistake in ``config.rnd``/``config.sat`` or the
vectorised twin cannot hide.
"""

import json

import numpy as np
import pytest

from dalif_hw import cli, golden


def reference(weight, alpha, beta, theta, bias, WB, DB, VB, reset, spikes):
    lo, hi = -(2 ** (VB - 1)), 2 ** (VB - 1) - 1
    n, m = len(weight), len(weight[0])
    out = []
    for sample in spikes:
        h = [0] * n
        fired_before = [False] * n      # S[t-1], kept here as a plain list
        rows = []
        for step in sample:
            row = []
            for i in range(n):
                current = bias[i] + sum(weight[i][j] for j in range(m) if step[j])
                a = (beta[i] * h[i] + 2 ** (DB - 1)) // 2 ** DB   # floor division: floor
                b = (alpha[i] * current + 2 ** (DB - 1)) // 2 ** DB
                taken = theta[i] if reset == "subtract" and fired_before[i] else 0
                v = min(max(a + b - taken, lo), hi)
                fired = v >= theta[i]
                if fired and reset == "hard":
                    h[i] = 0
                elif fired and reset == "soft":
                    h[i] = min(max(v - theta[i], lo), hi)
                else:
                    h[i] = v
                fired_before[i] = fired
                row.append((current, v, fired))
            rows.append(row)
        out.append(rows)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_golden_matches_reference_on_random_parameters(tmp_path, seed):
    rng = np.random.default_rng(seed)
    # Weights as wide as the membrane or wider, so currents saturate at both ends.
    VB = int(rng.integers(4, 10))
    WB, DB = VB + int(rng.integers(-1, 3)), int(rng.integers(2, 10))
    reset = ["hard", "soft", "subtract", "none"][seed % 4]
    n, m = int(rng.integers(4, 12)), int(rng.integers(3, 12))
    T, S = int(rng.integers(1, 6)), 32
    wlo, whi = -(2 ** (WB - 1)), 2 ** (WB - 1)
    vlo, vhi = -(2 ** (VB - 1)), 2 ** (VB - 1)
    weight = rng.integers(wlo, whi, (n, m))
    alpha = rng.integers(2 ** (DB - 1), 2 ** DB + 1, n)
    beta = rng.integers(0, 2 ** DB + 1, n)
    per_neuron = seed % 3 != 0
    # Thresholds across the whole range, negative ones too, so soft resets saturate.
    theta = rng.integers(vlo, vhi, n if per_neuron else ())
    bias = rng.integers(vlo, vhi, n)
    spikes = rng.random((S, T, m)) < 0.6
    params = tmp_path / "params.npz"
    np.savez(params, weight=weight, alpha=alpha, beta=beta, threshold=theta, bias=bias,
             meta=np.array(json.dumps({"WB": WB, "DB": DB, "VB": VB, "reset": reset})))
    np.savez(tmp_path / "stimulus.npz", spikes=spikes)
    out = tmp_path / "trace.npz"
    assert cli.run(golden.main, ["--params", str(params), "--stimulus",
                                 str(tmp_path / "stimulus.npz"), "--out", str(out)]) == 0
    trace = np.load(out)
    ref = reference(weight.tolist(), alpha.tolist(), beta.tolist(),
                    np.broadcast_to(theta, (n,)).tolist(), bias.tolist(), WB, DB, VB, reset,
                    spikes.tolist())
    for k, name in enumerate(("current", "membrane", "spikes_out")):
        expected = np.array([[[cell[k] for cell in row] for row in sample] for sample in ref])
        got = trace[name]
        if not np.array_equal(got, expected):
            s, t, i = np.argwhere(got != expected)[0]
            pytest.fail(f"{name} differs at sample {s}, timestep {t}, neuron {i}: "
                        f"golden {got[s, t, i]}, reference {expected[s, t, i]}")
    # The random case did reach saturation at both ends, and negative products that round.
    membrane, current = trace["membrane"], trace["current"]
    assert (membrane == vlo).any() and (membrane == vhi - 1).any()
    assert ((current * alpha < 0) & (current * alpha % 2 ** DB != 0)).any()
