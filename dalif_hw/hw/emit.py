"""Turn a neuron array into files: Verilog, the manifest, and one ``.hex`` per memory.

The manifest (``<top>.json``) is everything a test bench or a system integrator needs to drive
the array without reading its source: port names and widths, the stream fields, the
configuration port's address map and the memory layouts (docs/hardware.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from ..files import write_text_atomic
from ..layout import SELECT, hex_lines
from .neuron_array import UPDATE_LATENCY, NeuronArray

__all__ = ["emit_array", "write_outputs", "ports_of"]


def _member(component, path):
    obj = component
    for part in path:
        obj = getattr(obj, part)
    return obj


def ports_of(component: wiring.Component) -> list[dict]:
    """The Verilog ports of ``component`` as Amaranth names them (``i__valid``), with clk/rst."""
    ports = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]
    for path, member in component.signature.members.flatten():
        if member.is_port:
            ports.append({"name": "__".join(map(str, path)),
                          "dir": "in" if member.flow == wiring.In else "out",
                          "width": len(Value.cast(_member(component, path)))})
    return ports


def _stream(component, name: str) -> dict:
    layout = getattr(component, name).payload.shape()
    return {"valid": f"{name}__valid", "ready": f"{name}__ready", "payload": f"{name}__payload",
            "fields": {field_name: [field.offset, field.width] for field_name, field in layout}}


def manifest(array: NeuronArray, name: str) -> dict:
    """The manifest of ``array`` generated as top module ``name``."""
    config = array.config
    memories = []
    for spec in array.memory_specs:
        memories.append({
            "name": spec.name, "depth": spec.depth, "width": spec.width,
            "lanes": spec.lanes, "lane_width": spec.lane_width, "signed": spec.signed,
            "rows_per_group": config.inputs if spec.name == "weights" else 1,
            "select": spec.select, "file": f"{name}_{spec.name}.hex", "layout": spec.layout,
        })
    config_port = {
        "en": "cfg__en", "sel": "cfg__sel", "addr": "cfg__addr", "lane": "cfg__lane",
        "data": "cfg__data", "select": {k: v for k, v in SELECT.items()
                                        if k in {m["name"] for m in memories}},
        "word": ("while en is 1, on each rising clock edge the low lane_width bits of data "
                 "are written into lane 'lane' of word 'addr' of the memory whose 'select' "
                 "is 'sel'; a neuron's word is (neuron // lanes) * rows_per_group + input "
                 "(input = 0 for per-neuron memories), its lane neuron % lanes"),
    }
    if not config.per_neuron_threshold:
        config_port["select"]["threshold"] = SELECT["threshold"]
        config_port["threshold_register"] = {
            "select": SELECT["threshold"], "addr": 0, "lane": 0, "width": config.VB,
            "signed": True, "init": int(array.params.threshold)}
    return {
        "top": name, "clock": "clk", "reset": "rst", "error": "err",
        "params": config.manifest(),
        "ports": ports_of(array),
        "streams": {"in": _stream(array, "i"), "out": _stream(array, "o")},
        "config": config_port,
        "memories": memories,
        "pipeline": {"update_latency": UPDATE_LATENCY, "spike_fifo_depth": array.fifo_depth,
                     "cycles_per_input_beat": config.groups,
                     "cycles_per_update_pass": config.groups},
    }


def emit_array(array: NeuronArray, name: str) -> dict[str, str]:
    """All files of ``array`` as ``{file name: text}``: Verilog, manifest, hex files."""
    files = {f"{name}.v": verilog.convert(array, name=name, emit_src=False)}
    files[f"{name}.json"] = json.dumps(manifest(array, name), indent=2) + "\n"
    for spec in array.memory_specs:
        files[f"{name}_{spec.name}.hex"] = hex_lines(spec)
    return files


def write_outputs(folder, files: dict[str, str]) -> list[Path]:
    """Write ``files`` into ``folder`` (created if needed), each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in files.items():
        write_text_atomic(folder / file_name, text)
        written.append(folder / file_name)
    return written
