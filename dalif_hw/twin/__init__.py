"""The integer twin: exactly what the hardware computes (docs/arithmetic.md), per layer kind
(:mod:`.layers`) and for a packed network (:mod:`.chain`), and its golden traces."""

from .chain import classify, run_network
from .layers import (
                     Trace,
                     counts_from_events,
                     exact_product,
                     pool,
                     readout,
                     run,
                     step,
                     stimulus_counts,
)

__all__ = ["Trace", "counts_from_events", "step", "stimulus_counts", "readout", "run",
           "run_network", "classify", "exact_product", "pool"]
