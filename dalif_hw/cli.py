"""What every ``python -m dalif_hw.*`` command shares: error reporting and output paths."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from .config import ConfigError

__all__ = ["run", "output_path", "output_folder"]


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
