"""Move pipeline registers into the ECP5's DSP and block-RAM primitives.

Yosys's ``synth_ecp5`` maps a multiplication to a ``MULT18X18D`` and a memory to
``DP16KD`` blocks, but leaves the flip-flops around them in the fabric: a registered
multiplier then costs fabric-to-DSP routing, the multiplier's 3.9 ns and DSP-to-fabric
routing in one cycle, and a block RAM's read data arrives 5.8 ns after the clock. Both
primitives have registers of their own (the DSP's input and output registers, the block
RAM's output register, ``REGMODE = OUTREG``) that Yosys does not use on ECP5.

:func:`absorb_registers` edits the synthesised netlist (Yosys JSON) before place and
route: a plain flip-flop (``TRELLIS_FF`` on the same clock, no clock enable, no set or
reset) that feeds a DSP input, or that is the only load of a DSP or block-RAM output, is
replaced by the primitive's own register. The design computes the same values on the
same cycles (one register is traded for an equivalent one; power-up values are zero on
both sides), so the simulated RTL stays the verified description of the hardware.

What is absorbed, per primitive, all or nothing:

- ``MULT18X18D``: inputs A and B (both, or neither: nextpnr's timing model wants both)
  when every non-constant bit comes from a plain flip-flop (the flip-flop stays if it has
  other loads); output P when every used bit goes to exactly one plain flip-flop.
- ``DP16KD``: the read data of a port when every used bit goes to exactly one plain
  flip-flop clocked by that port's clock. A 36-bit wide block RAM (pseudo dual port) reads
  through the pins of both ports: then both ports' output registers, or neither.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict

__all__ = ["absorb_registers", "Absorbed"]


@dataclasses.dataclass
class Absorbed:
    """What :func:`absorb_registers` did."""

    dsp_inputs: int = 0       # MULT18X18D with REG_INPUTA/B_CLK = CLK0
    dsp_outputs: int = 0      # ... with REG_OUTPUT_CLK = CLK0
    bram_ports: int = 0       # DP16KD ports with REGMODE = OUTREG
    flip_flops: int = 0       # fabric flip-flops removed


def _param(cell: dict, name: str, default: str = "") -> str:
    return str(cell["parameters"].get(name, default)).strip()


def _width(cell: dict, port: str) -> int:
    """A DP16KD port's DATA_WIDTH (Yosys writes it as a binary string)."""
    value = _param(cell, f"DATA_WIDTH_{port}", "18")
    return int(value, 2) if set(value) <= {"0", "1"} and len(value) > 2 else int(value)


def _bits(cell: dict, prefix: str) -> dict[str, list]:
    """The cell's one-bit pins ``prefix0``, ``prefix1``, ... with their bits."""
    pattern = re.compile(rf"{prefix}\d+$")
    return {pin: bits for pin, bits in cell["connections"].items() if pattern.match(pin)}


def absorb_registers(netlist: dict, top: str, dsps: bool = True,
                     brams: bool = True) -> Absorbed:
    """Absorb flip-flops into the DSP blocks and block RAMs of module ``top`` (in place).

    Parameters
    ----------
    netlist : dict
        A Yosys JSON netlist after ``synth_ecp5`` (``write_json``).
    top : str
        The module to edit.
    dsps, brams : bool
        Whether to absorb registers into the DSP blocks, and into the block RAMs.
    """
    module = netlist["modules"][top]
    cells = module["cells"]
    drivers: dict = {}
    loads: dict = defaultdict(list)
    for name, cell in cells.items():
        directions = cell.get("port_directions", {})
        for pin, bits in cell["connections"].items():
            for bit in bits:
                if isinstance(bit, str):      # a constant
                    continue
                if directions.get(pin) == "output":
                    drivers[bit] = (name, pin)
                else:
                    loads[bit].append((name, pin))
    for port in module["ports"].values():
        for bit in port["bits"]:
            if not isinstance(bit, str):
                loads[bit].append((None, "port"))

    def plain_ff(name) -> bool:
        """A flip-flop that is a bare D register: rising edge, no enable, no set/reset,
        zero at power-up (as the primitives' registers are)."""
        if name is None or cells[name]["type"] != "TRELLIS_FF":
            return False
        cell = cells[name]
        enable = _param(cell, "CEMUX", "1")
        lsr = cell["connections"].get("LSR", ["0"])
        return (_param(cell, "CLKMUX", "CLK") == "CLK" and
                _param(cell, "REGSET", "RESET") == "RESET" and
                (enable == "1" or (enable == "CE" and cell["connections"].get("CE") == ["1"]))
                and lsr == ["0"])

    def clock_of(name):
        return cells[name]["connections"]["CLK"][0]

    result = Absorbed()
    removed: set = set()

    def registered_outputs(pins: dict, clock):
        """For output pins, their only loads if those are plain flip-flops on ``clock``."""
        moves = {}
        for pin, (bit,) in pins.items():
            if isinstance(bit, str) or not loads.get(bit):
                continue
            sink = loads[bit]
            if len(sink) != 1 or sink[0][1] != "DI" or not plain_ff(sink[0][0]):
                return None
            ff = sink[0][0]
            if clock is not None and clock_of(ff) != clock:
                return None
            clock = clock_of(ff)
            moves[pin] = ff
        return moves, clock

    def rewire_outputs(name: str, moves: dict) -> None:
        cell = cells[name]
        for pin, ff in moves.items():
            q = cells[ff]["connections"]["Q"]
            cell["connections"][pin] = q
            drivers[q[0]] = (name, pin)
            removed.add(ff)

    for name in sorted(cells):
        cell = cells[name]
        if cell["type"] == "MULT18X18D" and dsps:
            if any(_param(cell, p, "NONE") != "NONE" for p in (
                    "REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_INPUTC_CLK", "REG_PIPELINE_CLK",
                    "REG_OUTPUT_CLK")):
                continue
            clock = None
            inputs = {}
            for pin, (bit,) in {**_bits(cell, "A"), **_bits(cell, "B")}.items():
                if isinstance(bit, str):
                    continue
                ff = drivers.get(bit, (None, None))[0]
                if not plain_ff(ff) or (clock is not None and clock_of(ff) != clock):
                    inputs = None
                    break
                clock = clock_of(ff)
                inputs[pin] = ff
            outputs = registered_outputs(_bits(cell, "P"), clock)
            moves = outputs[0] if outputs else {}
            if not inputs and not moves:
                continue
            clock = outputs[1] if moves else clock
            if inputs:
                for pin, ff in inputs.items():
                    d = cells[ff]["connections"]["DI"]
                    cell["connections"][pin] = list(d)
                    if not isinstance(d[0], str):
                        loads[d[0]].append((name, pin))
                cell["parameters"]["REG_INPUTA_CLK"] = "CLK0"
                cell["parameters"]["REG_INPUTB_CLK"] = "CLK0"
                result.dsp_inputs += 1
            if moves:
                rewire_outputs(name, moves)
                cell["parameters"]["REG_OUTPUT_CLK"] = "CLK0"
                result.dsp_outputs += 1
            cell["connections"].update({"CLK0": [clock], "CE0": ["1"], "RST0": ["0"]})
            cell.setdefault("port_directions", {}).update(
                {"CLK0": "input", "CE0": "input", "RST0": "input"})
        elif cell["type"] == "DP16KD" and brams:
            if 36 in (_width(cell, "A"), _width(cell, "B")):
                # 36 bits wide (pseudo dual port): one read spans the pins of both ports,
                # so both output registers, or neither.
                groups = [("A", "B")] if cell["connections"]["CLKA"] == \
                    cell["connections"]["CLKB"] else []
            else:
                # True dual port: each port's read data and output register are its own.
                groups = [("A",), ("B",)]
            for ports in groups:
                if any(_param(cell, f"REGMODE_{port}", "NOREG") != "NOREG" for port in ports):
                    continue
                if len(ports) == 1 and cell["connections"].get(f"OCE{ports[0]}", ["1"]) != ["1"]:
                    continue
                pins = {pin: bits for port in ports for pin, bits in
                        _bits(cell, f"DO{port}").items()}
                found = registered_outputs(pins, cell["connections"][f"CLK{ports[-1]}"][0])
                if found is None or not found[0]:
                    continue
                rewire_outputs(name, found[0])
                for port in ports:
                    cell["parameters"][f"REGMODE_{port}"] = "OUTREG"
                    cell["connections"][f"OCE{port}"] = ["1"]
                result.bram_ports += 1

    # A flip-flop that fed only DSP inputs, now taken from its D, goes too.
    for name in cells:
        if cells[name]["type"] != "TRELLIS_FF" or name in removed:
            continue
        (q,) = cells[name]["connections"]["Q"]
        if loads.get(q) and not any(
                load is None or q in cells[load]["connections"][pin]
                for load, pin in loads[q] if load not in removed):
            removed.add(name)
    for name in removed:
        del cells[name]
    result.flip_flops = len(removed)
    return result
