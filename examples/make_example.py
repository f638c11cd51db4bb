"""Write the small example in this folder: params.npz (8 neurons, 16 inputs) and stimulus.npz.

    python examples/make_example.py

The parameters are random but reproducible; thresholds are per neuron and the reset is soft,
so the example shows most of the arithmetic.
"""

from pathlib import Path

import numpy as np

from dalif_hw.core.files import savez_atomic
from dalif_hw.core.params import IntParams

HERE = Path(__file__).parent


def main():
    rng = np.random.default_rng(2025)
    n, m, T, samples = 8, 16, 4, 3
    params = IntParams(weight=rng.integers(-64, 128, (n, m)), alpha=rng.integers(64, 257, n),
                       beta=rng.integers(64, 257, n), threshold=rng.integers(100, 300, n),
                       bias=rng.integers(-20, 21, n), WB=8, DB=8, VB=16, reset="soft")
    params.save(HERE / "params.npz")
    savez_atomic(HERE / "stimulus.npz", spikes=rng.random((samples, T, m)) < 0.3)


if __name__ == "__main__":
    main()
