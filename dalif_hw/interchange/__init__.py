"""Models in and out of dalif-hw through other frameworks' formats: NIR
(:mod:`dalif_hw.interchange.nir_graph`; the command is ``python -m dalif_hw.nir``)."""

from .nir_graph import DT, from_nir, to_nir

__all__ = ["DT", "from_nir", "to_nir"]
