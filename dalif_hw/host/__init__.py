"""The host side: drive a board over its serial link (:mod:`dalif_hw.host.driver`), the
library behind ``python -m dalif_hw.run``."""

from .driver import Board, DesignMismatch, Info, config_frames, event_payloads, network_manifest_of

__all__ = ["Board", "DesignMismatch", "Info", "config_frames", "event_payloads",
           "network_manifest_of"]
