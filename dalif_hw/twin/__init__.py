"""The integer twin: exactly what the hardware computes (docs/arithmetic.md), per layer kind
(:mod:`.layers`) and for a packed network (:mod:`.graph`: any graph of
SPEC 7), and its golden traces."""

from .graph import Step, classify, evaluate, run_network, walk
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
           "run_network", "classify", "exact_product", "pool", "evaluate", "walk", "Step"]
