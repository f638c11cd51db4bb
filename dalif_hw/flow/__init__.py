"""The FPGA flow: targets and boards (``targets``), the YoWASP tool runner (``tools``),
synthesis and reports (``synthesis``), DSP/BRAM register absorption (``hardregs``), bitstream
patching (``bitstream``), design-space sweeps on Dask (``explore``); board pins in
``constraints/`` (package data)."""
