"""What every ``python -m dalif_hw.*`` command shares: error reporting and output paths."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from .config import DEFAULT_DB, DEFAULT_VB, DEFAULT_WB, ConfigError

__all__ = ["run", "output_path", "output_folder", "add_width_arguments", "check_positive"]


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Call ``main(argv)``; turn a :class:`ConfigError` (bad input) or a
    :class:`~dalif_hw.simulate.SimulationError` (a tool that cannot run) into one line on
    stderr and exit status 1."""
    from .simulate import SimulationError

    try:
        return main(argv)
    except (ConfigError, SimulationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def output_path(path, what: str = "output") -> Path:
    """Check that ``path`` can be written as a file, creating its parent folders."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a folder, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder of {what} {str(path)!r}: "
                          f"{exc.strerror}") from None
    return path


def output_folder(path, what: str = "--out") -> Path:
    """Create the output folder ``path`` if needed; refuse a path that is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {what} folder {str(path)!r}: {exc.strerror}") from None
    return path


def add_width_arguments(parser, source: str) -> None:
    """Add ``--weight-width``, ``--decay-width`` and ``--membrane-width`` to ``parser``;
    omitted, each comes from ``source`` (named in the help), else the project's default."""
    for flag, key, what, default in (
            ("--weight-width", "WB", "signed weight bits", DEFAULT_WB),
            ("--decay-width", "DB", "decay fraction bits", DEFAULT_DB),
            ("--membrane-width", "VB", "signed membrane bits", DEFAULT_VB)):
        parser.add_argument(flag, type=int, metavar=key,
                            help=f"{what} (default: {source}, else {default})")


def check_positive(*flags: tuple[str, int | None]) -> None:
    """Raise :class:`ConfigError` for the first ``(flag, value)`` given a value below 1."""
    for flag, value in flags:
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be a positive integer, not {value}")
