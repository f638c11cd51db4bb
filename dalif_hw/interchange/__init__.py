"""Models in and out of dalif-hw through other frameworks' formats: NIR
(:mod:`dalif_hw.interchange.nir_graph`; the command is ``python -m dalif_hw.nir``), and
:func:`load_checkpoint`, which loads a checkpoint of either origin."""

from .nir_graph import DT, from_nir, load_checkpoint, to_nir

__all__ = ["DT", "from_nir", "to_nir", "load_checkpoint"]
