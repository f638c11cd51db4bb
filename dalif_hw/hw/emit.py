"""Turn a neuron array into files: Verilog, the manifest, and one ``.hex`` per memory.

The manifest (``<top>.json``) is everything a test bench or a system integrator needs to drive
the array without reading its source: port names and widths, the stream fields, the
configuration port's address map and the memory layouts (docs/hardware.md).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from ..core.config import parse_text
from ..core.files import replace_files
from ..core.layout import Select, hex_lines
from ..core.params import ConvParams
from ..quant.kinds import Add, Pool, Readout, Spiking
from .conv_accumulate import beat_operations
from .network import NetworkTop
from .neuron_array import PUSH_LATENCY, UPDATE_LATENCY, NeuronArray

__all__ = ["emit_array", "emit_network", "manifest", "network_manifest", "write_outputs",
           "ports_of", "manifest_files", "to_verilog"]

#: An element of an array layout in an escaped identifier: ``\s3_alpha[2] ``.
_ELEMENT = re.compile(r"(\\\S*?)\[(\d+)\](?=\S*\s)")
#: The initial block Amaranth writes for a memory, here one marked ``ram_style = "huge"``.
_HUGE_INIT = re.compile(r'(\(\* ram_style = "huge" \*\)\n(?:  \(\*[^\n]*\*\)\n)*'
                        r'  reg [^\n]* (\S+) \[\d+:0\];\n)  initial begin\n'
                        r'(?:    \2\[\d+\] = [^\n]*;\n)*  end\n')


def to_verilog(component, name: str) -> str:
    """``component`` as Verilog, top module ``name``.

    Amaranth names the elements of array layouts ``lanes[2]``, as escaped identifiers; Yosys
    0.70's ABC9 reintegration (``synth_ecp5``, ``synth_ice40``) then takes such a wire for a
    bit of another and fails an assertion. So elements are named ``lanes.2`` here.

    Amaranth also gives every memory an initial block (zeros when it has no contents); SPRAM
    has no initial contents, so Yosys maps no memory that has one to it. A memory marked
    ``ram_style = "huge"`` (:func:`dalif_hw.hw.accumulate.weight_memory` with ``spram``)
    loses that block here.
    """
    text = verilog.convert(component, name=name, emit_src=False)
    while True:
        renamed = _ELEMENT.sub(r"\1.\2", text)
        if renamed == text:
            return _HUGE_INIT.sub(r"\1", text)
        text = renamed


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


def _hex_name(file_prefix: str, spec) -> str:
    """The init file of memory ``spec`` (``<top>_<memory>.hex``, ``<top>_<layer>_<memory>``)."""
    return f"{file_prefix}_{spec.name}.hex"


def _memories(hw, file_prefix: str) -> list[dict]:
    return [{"name": spec.name, "depth": spec.depth, "width": spec.width, "lanes": spec.lanes,
             "lane_width": spec.lane_width, "signed": spec.signed,
             "rows_per_group": hw.config.inputs if spec.name == "weights" else 1,
             "select": spec.select, "file": _hex_name(file_prefix, spec),
             "layout": spec.layout,
             # SPRAM has no initial contents: such a memory is loaded at run time only.
             **({"init": False} if spec.name == "weights" and
                hw.accumulator.weight_ram == "spram" else {}),
             **({"address": spec.address} if isinstance(hw.params, ConvParams) else {})}
            for spec in hw.memory_specs]


def _config_port(hw, port: str) -> dict:
    """The configuration port ``port`` of a neuron array or readout ``hw``."""
    entry = {key: f"{port}__{key}" for key in ("en", "sel", "addr", "lane", "data")}
    entry["select"] = {spec.name: spec.select for spec in hw.memory_specs}
    entry["word"] = ("while en is 1, on each rising clock edge the low lane_width bits of "
                     "data are written into lane 'lane' of word 'addr' of the memory whose "
                     "'select' is 'sel'; a neuron's word is (neuron // lanes) * "
                     "rows_per_group + input (input = 0 for per-neuron memories), its lane "
                     "neuron % lanes")
    if isinstance(hw, NeuronArray) and not hw.config.per_neuron_threshold:
        entry["select"]["threshold"] = int(Select.threshold)
        entry["threshold_register"] = {
            "select": int(Select.threshold), "addr": 0, "lane": 0, "width": hw.config.VB,
            "signed": True, "init": int(hw.params.threshold)}
    return entry


def _header(name: str) -> dict:
    return {"top": name, "clock": "clk", "reset": "rst", "error": "err"}


def _array_params(array: NeuronArray) -> dict:
    """The ``params`` of an array's manifest (a convolution's name its shapes too)."""
    params = {**array.config.manifest(), "multipliers": array.multipliers}
    if isinstance(array.params, ConvParams):
        shape = array.params.shape
        params.update(kind="conv2d", in_shape=list(shape.in_shape),
                      out_shape=list(shape.out_shape), kernel=list(shape.kernel),
                      stride=list(shape.stride), padding=list(shape.padding),
                      groups=array.groups,
                      threshold=array.params.granularity("threshold"))
        if shape.pool is not None:
            params["current_pool"] = {"kind": "max", "window": list(shape.pool)}
    return params


def manifest(array: NeuronArray, name: str) -> dict:
    """The manifest of ``array`` generated as top module ``name``."""
    config = array.config
    params = _array_params(array)
    return {
        **_header(name),
        "params": params,
        "ports": ports_of(array),
        "streams": {"in": _stream(array, "i"), "out": _stream(array, "o")},
        "config": _config_port(array, "cfg"),
        "memories": _memories(array, name),
        "pipeline": {"update_latency": UPDATE_LATENCY, "push_latency": PUSH_LATENCY,
                     "spike_fifo_depth": array.fifo_depth,
                     # "distributed" (LUT RAM) or "block" (serialize.LUT_RING_DEPTH)
                     "spike_fifo_ram": array.serializer.ring_ram,
                     "cycles_per_input_beat": (
                         int(beat_operations(*array.params.shape.accumulator(
                             config.lanes, config.acc_lanes)).max())
                         if isinstance(array.params, ConvParams) else config.acc_groups),
                     "cycles_per_update_pass": array.accumulator_groups,
                     # whether the next timestep accumulates during the update pass
                     "overlap": array.accumulator.overlap},
    }


@functools.singledispatch
def manifest_entry(layer, hw, name: str) -> dict:
    """What a network's manifest says of ``layer`` (built as ``hw``, in the design ``name``)
    beyond its name, kind and inputs. Registered per layer kind."""
    raise TypeError(f"no manifest entry for layer kind {type(layer).__name__}")


@manifest_entry.register
def _(layer: Pool, hw, name):
    # counts: its stream to the next layer carries a shift, each beat 2 ** shift beats
    # (hw/pool.py; inside the design only)
    return {"params": {"in_shape": list(layer.pool.in_shape), "window": list(layer.pool.window),
                       "out_shape": list(layer.pool.out_shape), "counts": hw.counts}}


@manifest_entry.register
def _(layer: Add, hw, name):
    return {"params": {"shape": list(layer.shape)}}


def _weighted_entry(layer, hw, name: str, params: dict) -> dict:
    return {"params": params, "scale": layer.scale,
            "config": _config_port(hw, f"cfg_{layer.name}"),
            "memories": _memories(hw, f"{name}_{layer.name}")}


@manifest_entry.register
def _(layer: Spiking, hw, name):
    params = {k: v for k, v in _array_params(hw).items() if k != "multipliers"}
    return _weighted_entry(layer, hw, name, params)


@manifest_entry.register
def _(layer: Readout, hw, name):
    params = {k: v for k, v in hw.config.manifest().items()
              if k not in ("DB", "reset", "threshold")}
    params["logit_width"] = hw.config.logit_width
    return _weighted_entry(layer, hw, name, params)


def network_manifest(top: NetworkTop, name: str) -> dict:
    """The manifest of a network generated as top module ``name``.

    Like an array's, with the streams ``in``, ``logits`` and ``class`` (or ``in`` and ``out``,
    and ``outputs`` instead of ``classes``, for a network without a readout), and per layer
    its ``inputs`` (the graph: layer names, ``input`` for the network's), ``params``,
    ``config`` port (``cfg_<layer>``) and ``memories`` (layers with parameters).
    """
    network = top.network
    layers = [{"name": layer.name, "kind": layer.kind, "inputs": list(layer.inputs),
               **manifest_entry(layer, top.stages[layer.name], name)}
              for layer in network.layers]
    return {
        **_header(name),
        "params": {"inputs": network.inputs,
                   ("classes" if network.has_readout else "outputs"): network.outputs,
                   "T": network.T,
                   "layers": len(network.layers), "encoding": network.encoding},
        "ports": ports_of(top),
        "streams": {"in": _stream(top, "i"), **(
            {"logits": _stream(top, "logits"), "class": _stream(top, "class")}
            if network.has_readout else {"out": _stream(top, "o")})},
        "layers": layers,
    }


def emit_array(array: NeuronArray, name: str) -> dict[str, str]:
    """All files of ``array`` as ``{file name: text}``: Verilog, manifest, hex files."""
    files = {f"{name}.v": to_verilog(array, name)}
    files[f"{name}.json"] = json.dumps(manifest(array, name), indent=2) + "\n"
    for spec in array.memory_specs:
        files[_hex_name(name, spec)] = hex_lines(spec)
    return files


def emit_network(top: NetworkTop, name: str) -> dict[str, str]:
    """All files of a network: Verilog, manifest, and the hex files of every layer."""
    files = {f"{name}.v": to_verilog(top, name)}
    files[f"{name}.json"] = json.dumps(network_manifest(top, name), indent=2) + "\n"
    for layer_name, hw in top.stages.items():
        for spec in getattr(hw, "memory_specs", []):   # a stage without parameters has none
            files[_hex_name(f"{name}_{layer_name}", spec)] = hex_lines(spec)
    return files


def manifest_files(manifest: dict) -> list[str]:
    """The files of a generated design as its manifest lists them: Verilog, manifest and
    every memory's ``.hex`` (a network's per layer)."""
    top = manifest["top"]
    memories = list(manifest.get("memories", []))
    for layer in manifest.get("layers", []):
        memories += layer.get("memories", [])
    return [f"{top}.v", f"{top}.json"] + [memory["file"] for memory in memories]


def _previous_files(folder: Path, files: dict[str, str]) -> list[str]:
    """The files of the design that ``files`` replaces, from its manifest in ``folder`` (the
    same manifest name): only names such a design writes (``top.v``, ``top.json``,
    ``top_*.hex``), so that a manifest naming any other file removes nothing else."""
    names = []
    for name in files:
        if name.endswith(".json") and (folder / name).is_file():
            top = name[:-len(".json")]
            try:
                listed = manifest_files(parse_text((folder / name).read_text(), name))
            except (ValueError, KeyError, TypeError, AttributeError):   # ConfigError too
                continue  # not a manifest of ours: remove nothing
            names += [n for n in listed if isinstance(n, str) and (
                n in (f"{top}.v", f"{top}.json") or
                (n.startswith(f"{top}_") and n.endswith(".hex") and n == Path(n).name))]
    return names


def write_outputs(folder, files: dict[str, str]) -> list[Path]:
    """Write ``files`` into ``folder`` (created if needed) as one set, replacing the design
    of the same name that is there: its files that the new design lacks are removed, every
    other file in ``folder`` is left alone (:func:`dalif_hw.core.files.replace_files`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return replace_files(folder, files, _previous_files(folder, files))
