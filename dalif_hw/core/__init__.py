"""The one source of truth every stage shares: widths, rounding and saturation (``config``),
parameter and stimulus files (``params``), memory layout (``layout``), input encoding,
atomic files and child processes. No Amaranth, no torch."""
