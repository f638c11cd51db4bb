"""A session with a board: check the design, load the parameters, run samples, compare each
result with the integer twin and time it (the library behind ``python -m dalif_hw.run``)."""

from __future__ import annotations

import time

import numpy as np

from .. import twin
from .driver import Board

__all__ = ["evaluate"]


def _first_spike_mismatch(sample: int, got: list[list[int]], want: np.ndarray) -> str | None:
    for t, (indices, step) in enumerate(zip(got, want)):
        expected = np.flatnonzero(step).tolist()
        if indices != expected:
            extra = sorted(set(indices) ^ set(expected))
            return (f"sample {sample}, timestep {t}, neuron {extra[0] if extra else '?'}: "
                    f"board {indices}, twin {expected}")
    return None


def evaluate(board: Board, network, spikes: np.ndarray, labels=None, *, bit_seconds: float,
             clock=time.monotonic, load: bool = True) -> dict:
    """Run ``spikes`` [S, T, M] (or counts) on ``board`` and compare with the twin.

    ``bit_seconds`` is the line's bit time (1 / baud), for the link's share of the time;
    ``clock`` gives seconds (the simulated board's own clock in the tests).
    """
    info = board.check()
    summary = {"samples": int(len(spikes)), "design": info.design_hash.hex()}
    if load:
        start, before = clock(), board.stats.sent + board.stats.received
        summary["writes"] = board.load(network)
        summary["load_seconds"] = clock() - start
        summary["load_bytes"] = board.stats.sent + board.stats.received - before
    traces, logits = twin.run_network(network, spikes)
    mismatches, first, correct = 0, None, 0
    start, before = clock(), board.stats.sent + board.stats.received
    for s, sample in enumerate(spikes):
        result = board.run(sample)
        if logits is not None:
            got_logits, got_class = result
            want_class = int(np.argmax(logits[s]))
            bad = None
            if got_class != want_class:
                bad = f"sample {s}: class {got_class} on the board, {want_class} in the twin"
            elif (got_logits != logits[s]).any():
                k = int(np.flatnonzero(got_logits != logits[s])[0])
                bad = (f"sample {s}, logit {k}: {int(got_logits[k])} on the board, "
                       f"{int(logits[s, k])} in the twin")
            if labels is not None:
                correct += int(got_class == labels[s])
        else:
            bad = _first_spike_mismatch(s, result, traces[-1].spikes_out[s])
        if bad is not None:
            mismatches += 1
            first = first or bad
    seconds = clock() - start
    moved = board.stats.sent + board.stats.received - before
    summary.update(
        mismatches=mismatches, first_mismatch=first, seconds=seconds,
        inferences_per_second=len(spikes) / seconds if seconds > 0 else None,
        link_bytes=moved, link_share=min(1.0, moved * 10 * bit_seconds / seconds)
        if seconds > 0 else None)
    if labels is not None and logits is not None:
        summary["board_acc"] = correct / len(spikes)
        summary["int_acc"] = float((logits.argmax(1) == np.asarray(labels)).mean())
    return summary
