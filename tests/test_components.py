"""Each hardware component on its own, in ``amaranth.sim``, against a small Python model.

Seconds, not minutes: no Verilator build. The accumulator's forwarding (G = 1, 2: the same
group read while its last writes are in flight; G = 3: none needed), the neuron update at
the rails of rounding and saturation (against the integer twin's ``step``), the serializer
under back-pressure, the readout's argmax on ties.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
from amaranth.sim import Simulator

from dalif_hw import twin
from dalif_hw.core.config import RESETS, ArrayConfig, signed_range
from dalif_hw.core.layout import memories
from dalif_hw.core.params import IntParams, ReadoutParams
from dalif_hw.hw.accumulate import SpikeAccumulator, config_widths
from dalif_hw.hw.readout import Readout
from dalif_hw.hw.serialize import LUT_RING_DEPTH, SpikeSerializer
from dalif_hw.hw.update import PUSH_LATENCY, STAGES, UPDATE_LATENCY, NeuronUpdate


def offer(ctx, port, queue: list, gap: bool = False) -> bool:
    """Offer ``queue[0]`` (index, eot) or (index, eot, shift) on the event stream ``port``
    this cycle (unless ``gap``); return whether it is taken at the next clock edge."""
    if queue and not gap:
        ctx.set(port.valid, 1)
        fields = ("index", "eot", "shift")[:len(port.payload.shape().members)]
        ctx.set(port.payload, dict(zip(fields, queue[0])))
    else:
        ctx.set(port.valid, 0)
    return bool(queue) and not gap and bool(ctx.get(port.ready))


def simulate(dut, bench, background=None):
    """Run ``bench`` on ``dut`` (and ``background`` beside it, until ``bench`` ends)."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    if background is not None:
        sim.add_testbench(background, background=True)
    sim.add_testbench(bench)
    sim.run()


def drain(port, cycles: int, ready, got: list):
    """A testbench that takes beats from the event stream ``port`` for ``cycles`` cycles,
    ready when ``ready()`` says, into ``got`` as (cycle, index, eot), or (cycle, index, eot,
    shift) from a stream with counts."""
    counts = "shift" in port.payload.shape().members

    async def bench(ctx):
        for cycle in range(cycles):
            now = ready()
            ctx.set(port.ready, now)
            if now and ctx.get(port.valid):
                beat = ctx.get(port.payload)
                got.append((cycle, beat.index, beat.eot) + ((beat.shift,) if counts else ()))
            await ctx.tick()
    return bench


def random_params(rng, config: ArrayConfig, weight=None, **overrides) -> IntParams:
    n, m = config.neurons, config.inputs
    lo, hi = config.weight_range
    one = config.decay_one
    values = dict(
        weight=rng.integers(lo, hi + 1, (n, m)) if weight is None else weight,
        alpha=rng.integers(0, one + 1, n), beta=rng.integers(0, one + 1, n),
        threshold=rng.integers(1, 2 ** (config.VB - 2), n),
        bias=rng.integers(-(2 ** (config.VB - 2)), 2 ** (config.VB - 2), n) if config.bias
        else None,
        WB=config.WB, DB=config.DB, VB=config.VB, reset=config.reset)
    values.update(overrides)
    return IntParams(**values)


# -- the accumulator -------------------------------------------------------------------------

@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("groups,k,pass_every", [
    (1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 2, 1), (5, 2, 1), (8, 4, 1), (3, 3, 1),
    (1, 1, 2), (4, 2, 2), (3, 1, 3)])
def test_accumulator_forwards_back_to_back_beats(groups, k, pass_every, overlap):
    """Beats back to back (and with gaps), repeated indices, dropped beats, no room behind at
    random: every pass hands on bias + the sum of the counted beats' weights since the pass
    before, per group, in order; with k groups to an accumulation word (acc_lanes = k P: a
    beat walks ceil(groups / k) words); a pass every timestep (a neuron array) or every
    ``pass_every`` (a readout's T), each saying whether a sample's first timestep ended it;
    one set of accumulators or two (the next timestep's beats taken during the pass);
    ``pass_gap`` cycles between the last operation of a pass and the first of the next; in
    half the cases beats with counts (a shift: 1, 2 or 4 beats of the index, counted against
    the cap all or none)."""
    rng = np.random.default_rng(groups * 10 + k + 100 * pass_every + 1000 * overlap)
    pass_gap = (groups + k) % 4
    shifts = 3 if (groups + pass_every + overlap) % 2 else 1
    P, M, T = 2, 3, 2 if pass_every == 1 else pass_every
    config = ArrayConfig(neurons=groups * P, inputs=M, T=T, lanes=P, WB=4, VB=8,
                         acc_lanes=k * P)
    params = random_params(rng, config)
    specs = memories(config, params)
    assert specs[0].lanes == k * P and specs[0].depth == -(-groups // k) * M
    acc = SpikeAccumulator(inputs=M, T=T, weights=specs[0], acc_width=config.current_width,
                           base_width=config.out_index_width, pass_every=pass_every,
                           pass_gap=pass_gap, cfg_widths=config_widths(specs, 16), lanes=P,
                           groups=groups, overlap=overlap, shifts=shifts)
    bias = [int(b) for b in rng.integers(-20, 20, groups * P)]
    steps = []
    for _ in range(8 * pass_every):
        # Indices up to the field's top value: M and above are dropped (and raise err).
        n_beats = rng.integers(0, 2 * M + 2)
        steps.append([(int(j), int(sh)) for j, sh in zip(
            rng.integers(0, 1 << config.in_index_width, n_beats),
            rng.integers(0, shifts, n_beats))])
    # The beat cap (M) counts per timestep: (index, times) of each counted beat.
    counted_steps, dropped = [], False
    for beats in steps:
        count, counted = 0, []
        for j, sh in beats:
            if j < M and count + (1 << sh) <= M:
                count += 1 << sh
                counted.append((j, 1 << sh))
            else:
                dropped = True
        counted_steps.append(counted)
    expected = []
    for n in range(0, len(steps), pass_every):
        counted = [beat for beats in counted_steps[n:n + pass_every] for beat in beats]
        for g in range(groups):
            lanes = [bias[g * P + p] + sum(times * int(params.weight[g * P + p, j])
                                           for j, times in counted) for p in range(P)]
            expected.append((g, g == groups - 1, g * P, (n + pass_every - 1) % T == 0, lanes))
    stream = []
    for beats in steps:
        stream += [(j, 0, sh) for j, sh in beats] + [(0, 1, 0)]
    got = []
    issued = []

    async def bench(ctx):
        queue = list(stream)
        for _ in range(30 * len(stream) + 50):
            ctx.set(acc.room, rng.random() < 0.8)
            taken = offer(ctx, acc.i, queue, gap=rng.random() < 0.3)
            # The bias of the group issued two cycles ago (as read_in_step delivers it).
            g_bias = issued[-2] if len(issued) >= 2 and issued[-2] is not None else 0
            for p in range(P):
                ctx.set(acc.bias[p], bias[g_bias * P + p])
            if ctx.get(acc.pass_.valid):
                out = ctx.get(acc.pass_.payload)
                got.append((out.g, bool(out.last), out.base, bool(out.first_step),
                            [out.acc[p] for p in range(P)]))
            issued.append(ctx.get(acc.issue.g) if ctx.get(acc.issue.valid) else None)
            await ctx.tick()
            if taken:
                queue.pop(0)
        assert not queue, "the accumulator stopped taking beats"
        assert ctx.get(acc.err) == dropped

    simulate(acc, bench)
    assert len(got) == len(expected)
    for k, (g_out, g_exp) in enumerate(zip(got, expected)):
        assert g_out == g_exp, f"pass {k // groups}, group {k % groups}"
    cycles = [c for c, g in enumerate(issued) if g is not None]
    for n in range(groups, len(cycles), groups):
        assert cycles[n] - cycles[n - 1] > pass_gap, f"pass {n // groups} starts too soon"


# -- the neuron update -----------------------------------------------------------------------

def test_dsp_blocks_go_to_the_layers_in_order():
    """A network's DSP budget: each layer takes alpha * I lane by lane, then beta * H, and
    leaves the rest to the layers behind it; without a budget every product gets one."""
    from amaranth.hdl import Fragment

    from dalif_hw.hw.network import NetworkTop
    from dalif_hw.quant.packed import Dense, Network

    rng = np.random.default_rng(0)
    layers = []
    for k, (m, n, P) in enumerate([(8, 6, 3), (6, 4, 2), (4, 4, 4)]):
        config = ArrayConfig(neurons=n, inputs=m, T=2, lanes=P)
        layers.append(Dense(f"hidden{k}", config, random_params(rng, config)))
    network = Network(T=2, encoding={"kind": "spikes", "T": 2}, layers=layers)

    def lanes(**options):
        top = NetworkTop(network, **options)
        Fragment.get(top, None)   # elaborated, as a component should be
        return [hw.update.dsp_lanes for hw in top.layers]

    assert lanes(dsp_blocks=8) == [(3, 3), (2, 0), (0, 0)]
    assert lanes() == [(3, 3), (2, 2), (4, 4)]
    assert lanes(multipliers="logic") == [(0, 0)] * 3
    # Operands wider than the block's (12-bit blocks here; currents of 17 bits, membranes of
    # 16) take two blocks a product: the budget counts blocks, not products.
    assert [layer.config.current_width for layer in layers] == [17, 17, 17]
    assert lanes(dsp_blocks=14, dsp_width=12) == [(3, 3), (1, 0), (0, 0)]


def test_latencies_follow_the_stage_list():
    names = [s.name for s in STAGES]
    assert UPDATE_LATENCY == names.index("fire") == 7
    assert PUSH_LATENCY == names.index("push") == 9


def test_the_docs_table_lists_the_stages():
    """docs/hardware.md's table of the update's stages is the list in the code."""
    from pathlib import Path

    lines = (Path(__file__).parent.parent / "docs" / "hardware.md").read_text().splitlines()
    start = lines.index("| cycle | stage | what it computes | registers |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    assert rows == [[str(k), s.name, s.computes, s.registers] for k, s in enumerate(STAGES)]


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("multipliers,dsp_blocks,lanes", [
    ("dsp", None, (4, 4)), ("logic", None, (0, 0)),
    ("dsp", 6, (4, 2)), ("dsp", 3, (3, 0))])
def test_update_at_the_rails_matches_the_twin(reset, multipliers, dsp_blocks, lanes):
    """Currents and membranes at both rails, decays 0 and one, halves that round, thresholds
    at the bottom rail: spikes and written-back membranes equal the twin's ``step``."""
    rng = np.random.default_rng(7)
    P, N = 4, 8
    config = ArrayConfig(neurons=N, inputs=2, T=4, lanes=P, WB=4, DB=3, VB=6, reset=reset)
    lo, hi = signed_range(config.VB)
    clo, chi = signed_range(config.current_width)
    one = config.decay_one
    params = random_params(
        rng, config,
        alpha=np.array([0, one, one, 1, one - 1, 1, one, 3]),
        beta=np.array([one, 0, one, one, 1, one - 1, 1, 5]),
        threshold=np.array([lo, hi, 1, lo + 1, hi, 2, -1, 0]))
    update = NeuronUpdate(config, params, memories(config, params)[1:],
                          config_widths(memories(config, params), 16), multipliers,
                          dsp_blocks=dsp_blocks)
    assert update.dsp_lanes == lanes   # lanes with alpha * I, beta * H in DSP blocks
    currents = [np.array([chi, clo, chi, clo, 1, -1, 3, -3]),
                np.array([clo, chi, 0, 0, -5, 5, chi, clo]),
                rng.integers(clo, chi + 1, N), np.array([chi] * N), np.array([clo] * N),
                rng.integers(-20, 20, N), rng.integers(clo, chi + 1, N)]
    # The twin, timestep by timestep from H = 0.
    h = np.zeros(N, np.int64)
    expected = []
    for t, current in enumerate(currents):
        _, spikes, h = twin.step(params, h, current, first=t == 0)
        expected.append((spikes.copy(), h.copy()))
    got_spikes, got_h = [], {}

    # Issue each pass one group a cycle; pass_ follows two cycles later with the group's
    # accumulators. A new pass starts once the last one has written H back, as the
    # accumulator's pass_gap ensures.
    G = N // P
    schedule = {}
    cycle = 0
    for t, current in enumerate(currents):
        for g in range(G):
            schedule.setdefault(cycle, {})["issue"] = g
            schedule.setdefault(cycle + 2, {})["pass"] = (t, g, current[g * P:(g + 1) * P])
            cycle += 1
        cycle += max(0, UPDATE_LATENCY + 1 - G)

    async def bench(ctx):
        for c in range(cycle + PUSH_LATENCY + 4):
            todo = schedule.get(c, {})
            ctx.set(update.issue.valid, "issue" in todo)
            ctx.set(update.issue.g, todo.get("issue", 0))
            ctx.set(update.pass_.valid, "pass" in todo)
            if "pass" in todo:
                t, g, lanes = todo["pass"]
                ctx.set(update.pass_.payload, {
                    "g": g, "first_step": t == 0, "last": g == G - 1, "base": g * P,
                    "acc": [int(v) for v in lanes]})
            await ctx.tick()

    async def watch(ctx):
        step = {}
        async for _, _, push, entry, h_en, h_addr, h_data in ctx.tick().sample(
                update.push.valid, update.push.payload, *update.probes.values()):
            if h_en:
                t = step.get(h_addr, 0)
                step[h_addr] = t + 1
                got_h[(t, h_addr)] = [h_data[p] for p in range(P)]
            if push:
                got_spikes.append((entry.base, entry.mask, entry.count, entry.last))

    sim = Simulator(update)
    sim.add_clock(1e-6)
    sim.add_process(watch)
    sim.add_testbench(bench)
    sim.run()
    for t, (spikes, h_exp) in enumerate(expected):
        for g in range(G):
            for p in range(P):
                n = g * P + p
                assert got_h[(t, g)][p] == h_exp[n], (
                    f"timestep {t}, neuron {n}: H {got_h[(t, g)][p]}, twin {h_exp[n]}")
    pushed = {}
    k = 0
    for t, (spikes, _) in enumerate(expected):
        for g in range(G):
            mask = sum(int(spikes[g * P + p]) << p for p in range(P))
            last = g == G - 1
            if mask or last:
                pushed[k] = (g * P, mask, bin(mask).count("1"), last)
                k += 1
    assert got_spikes == [pushed[i] for i in range(k)]


# -- the serializer --------------------------------------------------------------------------

def serialize(fifo_ram: str):
    """Random entries through a serializer under random back-pressure: the entries' expected
    beats, and the beats sent as (cycle, index, eot)."""
    rng = np.random.default_rng(3)
    P, N = 4, 14
    ser = SpikeSerializer(lanes=P, neurons=N, depth=8, reserve=3, fifo_ram=fifo_ram)
    entries = []
    for _ in range(30):
        g = int(rng.integers(0, 4))
        real = (1 << min(P, N - g * P)) - 1
        mask = int(rng.integers(0, 1 << P)) & real
        last = bool(rng.random() < 0.3)
        if mask or last:
            entries.append((mask, g * P, last))
    expected = []
    for mask, base, last in entries:
        expected += [(base + p, 0) for p in range(P) if mask >> p & 1]
        if last:
            expected.append((0, 1))
    got = []

    async def producer(ctx):
        queue = list(entries)
        while queue:
            if ctx.get(ser.room) and rng.random() < 0.7:
                mask, base, last = queue.pop(0)
                ctx.set(ser.push.valid, 1)
                ctx.set(ser.push.payload, {"mask": mask, "base": base, "last": last,
                                           "count": bin(mask).count("1")})
            else:
                ctx.set(ser.push.valid, 0)
            await ctx.tick()
        ctx.set(ser.push.valid, 0)

    simulate(ser, drain(ser.o, 40 * len(entries), lambda: rng.random() < 0.5, got),
             producer)
    return expected, got


def test_serializer_sends_ascending_indices_under_back_pressure():
    """Both ring memories (LUT RAM read combinationally, block RAM read synchronously) send
    the expected beats, in the same cycles."""
    expected, distributed = serialize("distributed")
    assert [beat[1:] for beat in distributed] == expected
    _, block = serialize("block")
    assert block == distributed


def test_a_deep_ring_goes_into_block_ram():
    """Beyond LUT_RING_DEPTH entries the ring is read the block RAM's way (synchronously)
    even on a target whose rings are LUT RAM; the test above shows the two send alike."""
    from amaranth.hdl import Fragment

    def ring_ram(**options):
        serializer = SpikeSerializer(lanes=8, neurons=9216, reserve=3, **options)
        Fragment.get(serializer, None)     # it builds
        return serializer.ring_ram

    assert ring_ram(depth=LUT_RING_DEPTH, fifo_ram="distributed") == "distributed"
    assert ring_ram(depth=2 * LUT_RING_DEPTH, fifo_ram="distributed") == "block"
    assert ring_ram(depth=8, fifo_ram="block") == "block"


# -- the readout -----------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [[0, 0, 0, 0, 0], [1, 5, 5, 2, 5], [-3, -7, -3, -3, -9],
                                  [2, 2, 9, 9, 9]])
def test_readout_argmax_takes_the_lowest_index_among_ties(bias):
    N, M, T, P = 5, 3, 2, 2
    config = ArrayConfig(neurons=N, inputs=M, T=T, lanes=P, WB=4, VB=8)
    params = ReadoutParams(weight=np.zeros((N, M), np.int64), bias=np.array(bias), WB=4, VB=8)
    dut = Readout(config, params)
    stimulus = [[[0, 2], [1]]]
    logits_exp = twin.readout(params, stimulus)[0]
    got = {"logits": [], "class": []}

    async def bench(ctx):
        ctx.set(dut.logits.ready, 1)
        ctx.set(dut.cls.ready, 1)
        queue = []
        for step in stimulus[0]:
            queue += [(j, 0) for j in step] + [(0, 1)]
        for _ in range(200):
            taken = offer(ctx, dut.i, queue)
            if ctx.get(dut.logits.valid):
                got["logits"].append(ctx.get(dut.logits.payload.value))
            if ctx.get(dut.cls.valid):
                got["class"].append(ctx.get(dut.cls.payload.index))
            await ctx.tick()
            if taken:
                queue.pop(0)

    simulate(dut, bench)
    assert got["logits"] == list(logits_exp)
    assert got["class"] == [int(np.argmax(logits_exp))]
    assert got["class"] == [min(i for i, v in enumerate(bias) if v == max(bias))]


# -- a convolution: its accumulator with the update and serializer ----------------------------

@pytest.mark.parametrize("seed", range(12))
def test_conv_layer_matches_the_twin(seed):
    """Random conv2d layers (kernel up to the input, strides 1-2, padding, per-channel and
    per-neuron values, both resets, P up to WO, 1 to K channels a spike reaches at once; one
    or two sets of banks, in LUT or block RAM; a third with beats carrying counts, as behind
    a counting pool, each counting 1, 2 or 4 times): every output beat equals the twin's."""
    from dalif_hw.core.conv import ConvShape
    from dalif_hw.core.params import ConvParams
    from dalif_hw.harness.verilator import event_beats, expected_beats
    from dalif_hw.hw.neuron_array import NeuronArray

    rng = np.random.default_rng(seed)
    C, K = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    H, W = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    KH, KW = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
    shape = ConvShape((C, H, W), K, (KH, KW), tuple(int(s) for s in rng.integers(1, 3, 2)),
                      (int(rng.integers(0, KH)), int(rng.integers(0, KW))))
    n = shape.neurons if seed % 2 else K
    params = ConvParams(
        weight=rng.integers(-8, 8, (K, C, KH, KW)), alpha=rng.integers(100, 257, n),
        beta=rng.integers(0, 257, n),
        threshold=rng.integers(1, 12, n) if seed % 3 else np.array(6),
        bias=rng.integers(-3, 4, n), in_shape=shape.in_shape, stride=shape.stride,
        padding=shape.padding, WB=4, DB=8, VB=10, reset=["hard", "soft"][seed % 2])
    lanes = int(rng.integers(1, shape.out_shape[2] + 1))
    # Small layers get LUT-RAM banks and a second set (overlap); the rules pick block RAM and
    # one set for large ones: every combination here, whatever the size (the second set as a
    # user asks for it, ArrayConfig.second_set).
    config = params.config(2, lanes=lanes, acc_lanes=lanes * int(rng.integers(1, K + 1)),
                           second_set=bool(seed % 2))
    shifts = 3 if seed % 3 == 2 else 1
    dut = NeuronArray(config, params, shifts=shifts)
    dut.accumulator.lut_banks = seed % 4 < 2
    events = [[rng.integers(0, shape.inputs, rng.integers(0, shape.inputs + 1)).tolist()
               for _ in range(2)] for _ in range(3)]
    if shifts > 1:   # beats (j, shift), each counted 2 ** shift times, within the cap (M)
        steps = [[[] for _ in sample] for sample in events]
        for sample, shifted_sample in zip(events, steps):
            for step, shifted_step in zip(sample, shifted_sample):
                total = 0
                for j in step:
                    s = int(rng.integers(0, shifts))
                    if total + (1 << s) > shape.inputs:
                        break
                    total += 1 << s
                    shifted_step.append((j, s))
        beats = [beat for sample in steps for step in sample
                 for beat in [(j, 0, s) for j, s in step] + [(0, 1, 0)]]
        # The twin takes each as its 2 ** shift repeats.
        events = [[[j for j, s in step for _ in range(1 << s)] for step in sample]
                  for sample in steps]
    else:
        beats = event_beats(events)
    want = event_beats(expected_beats(twin.run(params, events).spikes_out))
    got = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        queue = list(beats)
        for _ in range(40 * len(beats) + 40 * config.neurons + 200):
            taken = offer(ctx, dut.i, queue)
            if ctx.get(dut.o.valid):
                beat = ctx.get(dut.o.payload)
                got.append((beat.index if not beat.eot else 0, beat.eot))
            await ctx.tick()
            if taken:
                queue.pop(0)
            if not queue and len(got) >= len(want):
                break

    simulate(dut, bench)
    acc = dut.accumulator
    assert got == want, (f"{shape}, P={config.lanes}, A={config.acc_lanes}, overlap "
                         f"{acc.overlap}, LUT banks {acc.lut_banks}")


# -- the pooling stage -----------------------------------------------------------------------

def pool_through(kind: str, seed: int, pressure: bool, in_shape=(2, 5, 7), counts=False,
                 beats=None):
    """Random beats (spikes, some beyond the inputs or the last whole window, and eots, the
    last an eot; or ``beats``) through a pooling stage (a sum pool with ``counts``) with
    random gaps and back-pressure (``pressure``) or none: the beats expected (from divmod,
    not the stage's ROM), and those sent as (cycle, index, eot[, shift])."""
    from dalif_hw.core.conv import PoolShape
    from dalif_hw.hw.pool import SpikePool

    rng = np.random.default_rng(seed)
    (C, H, W), (PKH, PKW) = in_shape, (2, 3)
    stage = SpikePool(PoolShape(kind, (C, H, W), (PKH, PKW)), counts=counts)
    top = (1 << len(stage.i.payload.index)) - 1
    if beats is None:
        beats = [(int(rng.integers(0, C * H * W + 3)) if rng.random() < 0.9 else top, 0)
                 if rng.random() < 0.85 else (0, 1) for _ in range(120)] + [(0, 1)]
    expected, seen = [], set()
    for index, eot in beats:
        if eot:
            expected.append((0, 1))
            seen = set()
            continue
        c, rest = divmod(index, H * W)
        y, x = divmod(rest, W)
        if c < C and y < H // PKH * PKH and x < W // PKW * PKW:
            pooled = (c * (H // PKH) + y // PKH) * (W // PKW) + x // PKW
            if kind == "sumpool" or pooled not in seen:
                expected.append((pooled, 0))
            seen.add(pooled)
    got = []

    async def producer(ctx):
        queue = list(beats)
        while queue:
            if offer(ctx, stage.i, queue, gap=pressure and rng.random() < 0.3):
                queue.pop(0)
            await ctx.tick()
        ctx.set(stage.i.valid, 0)

    simulate(stage, drain(stage.o, 6 * len(beats),
                          lambda: not pressure or rng.random() < 0.6, got), producer)
    return beats, expected, got


def per_timestep(beats) -> list:
    """(index, eot[, shift]) beats as one Counter per timestep: index -> beats it stands for."""
    steps, now = [], collections.Counter()
    for beat in beats:
        if beat[1]:
            steps.append(now)
            now = collections.Counter()
        else:
            now[beat[0]] += 1 << (beat[2] if len(beat) > 2 else 0)
    return steps + ([now] if now else [])


@pytest.mark.parametrize("in_shape", [(2, 5, 7), (3, 25, 31)], ids=["one-bank", "3-banks"])
def test_counting_pool_sends_the_same_sums_whatever_the_order(in_shape):
    """Beats in any order, repeated indices among them: each timestep's beats, each counted 2
    ** shift times, give every pooled index the count that sum pooling gives it."""
    for seed in range(3):
        _, expected, got = pool_through("sumpool", seed, pressure=True, in_shape=in_shape,
                                        counts=True)
        assert per_timestep([beat[1:] for beat in got]) == per_timestep(expected), f"seed {seed}"


@pytest.mark.parametrize("pressure", [False, True])
def test_counting_pool_sends_a_window_once_per_bit_of_its_count(pressure):
    """Beats as an array sends them (ascending, each index once a timestep, the eot last):
    each nonzero pooled index goes out once per bit set in its count, in ascending order
    (the cost model's beats behind a counting pool)."""
    rng = np.random.default_rng(7)
    C, H, W = 2, 5, 7
    for seed in range(3):
        beats = []
        for _ in range(4):
            beats += [(int(j), 0) for j in np.flatnonzero(rng.random(C * H * W) < 0.4)]
            beats.append((0, 1))
        _, expected, got = pool_through("sumpool", seed, pressure, counts=True, beats=beats)
        want = []
        for step in per_timestep(expected):
            want += [(j, 0, b) for j in sorted(step) for b in range(3) if step[j] >> b & 1]
            want.append((0, 1, 0))
        assert [(0, 1, 0) if e else (i, e, s) for _, i, e, s in got] == want, f"seed {seed}"


@pytest.mark.parametrize("kind", ["sumpool", "maxpool"])
@pytest.mark.parametrize("in_shape", [(2, 5, 7), (3, 25, 31)], ids=["one-bank", "3-banks"])
def test_pool_stage_remaps_every_beat_under_back_pressure(kind, in_shape):
    """The second shape's index ROM (2,325 words) takes three block RAMs' depth."""
    for seed in range(3):
        _, expected, got = pool_through(kind, seed, pressure=True, in_shape=in_shape)
        assert [beat[1:] for beat in got] == expected, f"seed {seed}"


def test_a_late_rom_reads_a_cycle_after_a_read_port():
    """Over banks (2,500 words of 13 bits: three block RAMs deep), with reads at random
    cycles: the data is the read port's of the cycle before."""
    from amaranth.hdl import Module, Signal
    from amaranth.lib.memory import Memory

    from dalif_hw.hw.rom import bank_depth, late_rom

    rng = np.random.default_rng(5)
    init = [int(v) for v in rng.integers(0, 1 << 13, 2500)]
    assert bank_depth(13) == 1024
    m = Module()
    addr, en = Signal(range(len(init))), Signal()
    late = late_rom(m, "rom", 13, init, addr, en)
    reference = m.submodules.reference = Memory(shape=13, depth=len(init), init=init)
    port = reference.read_port()
    m.d.comb += [port.addr.eq(addr), port.en.eq(en)]
    got, want = [], []

    async def bench(ctx):
        for _ in range(300):
            ctx.set(addr, int(rng.integers(0, len(init))))
            ctx.set(en, int(rng.random() < 0.6))
            got.append(ctx.get(late))
            want.append(ctx.get(port.data))
            await ctx.tick()

    simulate(m, bench)
    assert got[2:] == want[1:-1]


def test_pool_stage_passes_a_beat_a_cycle():
    """Sum pooling with nothing in its way: the beats that it sends come one a cycle (the
    cost model's beat a cycle, :func:`dalif_hw.hw.cost.pool_cycles`)."""
    beats, expected, got = pool_through("sumpool", 0, pressure=False)
    assert [beat[1:] for beat in got] == expected
    cycles = [beat[0] for beat in got]
    # Every input beat, sent or discarded, takes a cycle: the last beat goes out within the
    # stage's latency of the last beat offered.
    assert cycles[-1] - cycles[0] <= len(beats), (cycles[0], cycles[-1], len(beats))
