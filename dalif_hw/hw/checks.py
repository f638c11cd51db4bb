"""The stream protocol as Amaranth assertions, for formal proofs (:mod:`dalif_hw.harness.formal`).

Each function adds checker registers and ``Assert`` statements to a module beside the design
under test; they observe its ports (and the few probe signals the components expose for this,
never ports) and are built only into proof harnesses, never into the generated Verilog.
Checker registers sit in the ``sync`` domain, so a reset of the design resets them too.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Module, Mux, Signal, Value

from .streams import beat_shift

__all__ = ["assert_hold", "assert_events", "assert_drops", "assert_fifo", "assert_samples"]


def assert_hold(m: Module, stream, name: str) -> None:
    """AXI-Stream: once ``valid`` is high it stays high, with the payload unchanged, until
    ``ready``."""
    payload = Value.cast(stream.payload)
    stalled = Signal(name=f"chk_{name}_stalled")
    held = Signal.like(payload, name=f"chk_{name}_held")
    m.d.sync += [stalled.eq(stream.valid & ~stream.ready), held.eq(payload)]
    with m.If(stalled):
        m.d.comb += Assert(stream.valid & (payload == held),
                           f"{name}: valid dropped or payload changed while stalled")


def _bounded_counter(name: str, limit: int) -> Signal:
    return Signal(range(limit + 2), name=name)


def _in_flight(m: Module, name: str, arrive, leave, limit: int, what: str,
               early: str) -> Signal:
    """Count ``what`` in flight: one more on ``arrive``, one less on ``leave``; assert that
    none leaves before it arrived (``early`` says what that would be) and that no more than
    ``limit`` are ever in flight."""
    pending = _bounded_counter(f"chk_{name}_pending", limit)
    with m.If(leave):
        m.d.comb += Assert(pending != 0, f"{name}: {early}")
    m.d.comb += Assert(pending <= limit, f"{name}: over {limit} {what} in flight")
    with m.If(arrive & ~leave & (pending <= limit)):
        m.d.sync += pending.eq(pending + 1)
    with m.Elif(leave & ~arrive & (pending != 0)):
        m.d.sync += pending.eq(pending - 1)
    return pending


def assert_events(m: Module, inp, out, name: str, *, pending_limit: int,
                  latency: tuple[int, int] | None, ascending: bool = True) -> Signal:
    """An array's event streams: output ``eot`` beats never outnumber input ``eot`` beats
    (and no more than ``pending_limit`` timesteps are ever in flight); within a timestep the
    output spike beats are strictly ascending (unless not ``ascending``: a pooling stage
    keeps its input's order). With ``latency = (base, per_step)``, bounded
    liveness: once the output is ready and no input is offered, and stays so, the timesteps
    then in flight have all ended on the output within ``base + per_step * (timesteps -
    1)`` cycles. Returns the count of timesteps in flight."""
    in_eot = inp.valid & inp.ready & inp.payload.eot
    beat = out.valid & out.ready
    out_eot = beat & out.payload.eot
    pending = _in_flight(m, name, in_eot, out_eot, pending_limit, "timesteps",
                         "an output eot without an input eot")

    if ascending:
        last = Signal.like(out.payload.index, name=f"chk_{name}_last")
        have_last = Signal(name=f"chk_{name}_have_last")
        with m.If(beat & ~out.payload.eot):
            with m.If(have_last):
                m.d.comb += Assert(out.payload.index > last,
                                   f"{name}: output spikes not ascending within a timestep")
            m.d.sync += [last.eq(out.payload.index), have_last.eq(1)]
        with m.If(out_eot):
            m.d.sync += have_last.eq(0)

    if latency is not None:
        _assert_live(m, name, pending, out.ready & ~inp.valid, latency)
    return pending


def _assert_live(m: Module, name: str, pending, quiet, latency: tuple[int, int]) -> None:
    """Once ``quiet`` holds with ``pending`` work, and while it goes on holding, ``pending``
    reaches 0 within ``base + per_step * (pending when it began - 1)`` cycles."""
    base, per_step = latency
    limit = base + per_step * ((1 << len(pending)) - 1)
    waited = _bounded_counter(f"chk_{name}_waited", limit)
    bound = Signal(range(limit + 1), name=f"chk_{name}_bound")
    with m.If(quiet & (pending != 0)):
        with m.If(waited == 0):
            m.d.sync += bound.eq(base + per_step * (pending - 1))
        with m.If(waited <= limit):
            m.d.sync += waited.eq(waited + 1)
    with m.Else():
        m.d.sync += waited.eq(0)
    with m.If(waited != 0):
        m.d.comb += Assert(waited <= bound, f"{name}: the timesteps in flight did not end "
                                            f"within their bound of quiet cycles")


def assert_drops(m: Module, inp, probes: dict, err, name: str, *, inputs: int,
                 beat_cap: int) -> None:
    """The error flag rises exactly when a beat is dropped (SPEC section 2: an index of
    ``inputs`` or more, or a spike beat beyond the ``beat_cap``-th counted one of a timestep).

    A model here keeps its own copy of every accepted beat and counts the beats of a
    timestep as the design takes them from its one-beat input buffer (``probes`` of a
    :class:`~dalif_hw.hw.accumulate.SpikeAccumulator`): ``err`` must rise on the cycle after a
    beat that the model drops is taken, and at no other time. That the buffer and the count
    agree with the model's copies is asserted too (it makes the proof inductive). A beat with
    counts (a ``shift``) counts 2 ** shift times, all or none.
    """
    accept = inp.valid & inp.ready
    taken = probes["taken"]
    full = Signal(name=f"chk_{name}_full")
    copy = Signal.like(inp.payload, name=f"chk_{name}_copy")
    counted = Signal(range(beat_cap + 1), name=f"chk_{name}_counted")
    m.d.comb += [
        Assert(~taken | full, f"{name}: a beat taken from an empty input buffer"),
        Assert(~accept | ~full | taken, f"{name}: an input beat overwrote another"),
        Assert(full == probes["held"], f"{name}: input buffer differs from the model"),
        Assert(~full | (Value.cast(copy) == Value.cast(probes["beat"])),
               f"{name}: buffered beat differs from the one accepted"),
        Assert(counted == probes["count"], f"{name}: beat count differs from the model"),
    ]
    with m.If(accept):
        m.d.sync += [full.eq(1), copy.eq(inp.payload)]
    with m.Elif(taken):
        m.d.sync += full.eq(0)
    weight = 1 << beat_shift(copy)
    full_up = counted + weight > beat_cap if "shift" in copy.shape().members else \
        counted == beat_cap
    drop = ~copy.eot & ((copy.index >= inputs) | full_up)
    with m.If(taken):
        with m.If(copy.eot):
            m.d.sync += counted.eq(0)
        with m.Elif(~drop):
            m.d.sync += counted.eq(counted + weight)
    expected = Signal(name=f"chk_{name}_err")
    m.d.sync += expected.eq(expected | (taken & drop))
    m.d.comb += Assert(err == expected, f"{name}: err differs from the beats dropped")


def assert_fifo(m: Module, fifo: dict, depth: int, name: str) -> None:
    """No push into a full FIFO, no pop from an empty one (``fifo``: push, pop, level)."""
    m.d.comb += [
        Assert(~fifo["push"] | (fifo["level"] != depth), f"{name}: FIFO overflow"),
        Assert(~fifo["pop"] | (fifo["level"] != 0), f"{name}: FIFO underflow"),
    ]


def assert_samples(m: Module, inp, out_beat, T: int, name: str, *, pending_limit: int,
                   latency: tuple[int, int] | None, quiet=None) -> None:
    """A network's per-sample output: ``out_beat`` (the class beat) never comes before the
    T-th input ``eot`` of its sample; with ``latency = (base, per_sample)``, once ``quiet``
    holds (and while it does) the samples in flight get their beats within ``base +
    per_sample * (samples - 1)`` cycles."""
    in_eot = inp.valid & inp.ready & inp.payload.eot
    t = Signal(range(T), name=f"chk_{name}_t")
    sample_in = in_eot & (t == T - 1)
    with m.If(in_eot):
        m.d.sync += t.eq(Mux(t == T - 1, 0, t + 1))
    pending = _in_flight(m, name, sample_in, out_beat, pending_limit, "samples",
                         "a result before its sample's last eot")
    if latency is not None:
        _assert_live(m, name, pending, quiet, latency)
