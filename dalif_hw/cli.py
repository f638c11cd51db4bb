"""What every ``python -m dalif_hw.*`` command shares: error reporting and output paths."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .core.config import DEFAULT_DB, DEFAULT_VB, DEFAULT_WB, ConfigError
from .core.process import Interrupted, end_children, handle_signals

__all__ = ["run", "output_path", "output_folder", "add_width_arguments", "check_positive",
           "check_memory", "available_memory", "describe_os_error"]


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Call ``main(argv)`` and turn every failure that is not a bug into one line on stderr:
    a :class:`ConfigError` (bad input), a tool that cannot run or fails
    (:class:`~dalif_hw.harness.verilator.SimulationError`,
    :class:`~dalif_hw.core.tools.ToolError`), a board that answers wrongly or not at all
    (:class:`~dalif_hw.core.protocol.ProtocolError`), a file that cannot be read or written
    (``OSError``), exit status 1; SIGINT, SIGTERM or SIGHUP end every child process first,
    then exit status 128 + the signal's number. Run as a program (``argv`` None: from the
    command line), the command is its descendants' subreaper, so that none outlives it."""
    from .core.protocol import ProtocolError
    from .core.tools import ToolError
    from .harness.verilator import SimulationError

    # A command run as a program (argv from the command line) reaps its orphans.
    with handle_signals(subreaper=argv is None):
        try:
            return main(argv)
        except (ConfigError, SimulationError, ToolError, ProtocolError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"error: {describe_os_error(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:
            end_children()      # any the clean-up left (a cluster's, once it closed)
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            print(f"interrupted ({signal.Signals(signum).name}): nothing was left "
                  f"half-written", file=sys.stderr)
            return 128 + signum


def describe_os_error(exc: OSError) -> str:
    """``OSError`` in one line: what failed, on which file."""
    what = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{what}: {str(exc.filename)!r}"
    return what


def output_path(path, what: str = "output", inputs=()) -> Path:
    """Check that ``path`` can be written as a file and is none of ``inputs`` (files the
    command reads) nor inside one of them that is a folder (a packed network), creating its
    parent folders."""
    path = Path(path)
    for source in inputs:
        if source is None:
            continue
        source = Path(source).resolve()
        if path.resolve() == source:
            raise ConfigError(f"{what} {str(path)!r} is also an input: it would be "
                              f"overwritten")
        if source.is_dir() and path.resolve().is_relative_to(source):
            raise ConfigError(f"{what} {str(path)!r} is inside the input folder "
                              f"{str(source)!r}: it could overwrite one of its files")
    if path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a folder, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder of {what} {str(path)!r}: "
                          f"{exc.strerror}") from None
    _check_writable(path.parent, f"cannot write {what} {str(path)!r}")
    return path


def _check_writable(folder: Path, message: str) -> None:
    """Create and remove a temporary file in ``folder``; raise :class:`ConfigError` with
    ``message`` and the reason if that fails."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"{message}: {exc.strerror}") from None


def output_folder(path, what: str = "--out") -> Path:
    """Create the output folder ``path`` if needed and check that files can be written in it;
    refuse a path that is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write into {what} folder {str(path)!r}: "
                          f"{exc.strerror}") from None
    _check_writable(path, f"cannot write into {what} folder {str(path)!r}")
    return path


def available_memory() -> int | None:
    """Bytes of memory this machine has available now (``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(needed: float, what: str) -> None:
    """Raise :class:`ConfigError` up front when ``what`` needs more than the ``needed`` bytes
    this machine has available, instead of failing minutes later."""
    available = available_memory()
    if available is not None and needed > available:
        raise ConfigError(f"{what} needs about {needed / 2**30:.3g} GiB of memory; this machine "
                          f"has {available / 2**30:.3g} GiB available")


def add_width_arguments(parser, source: str, auto: str | None = None) -> None:
    """Add ``--weight-width``, ``--decay-width`` and ``--membrane-width`` to ``parser``;
    omitted, each comes from ``source`` (named in the help), else the project's default.
    ``auto`` (its help) lets ``--weight-width`` be ``auto`` too."""
    def weight_width(text: str):
        return "auto" if text == "auto" else int(text)

    for flag, key, what, default in (
            ("--weight-width", "WB", "signed weight bits", DEFAULT_WB),
            ("--decay-width", "DB", "decay fraction bits", DEFAULT_DB),
            ("--membrane-width", "VB", "signed membrane bits", DEFAULT_VB)):
        wb = flag == "--weight-width" and auto
        parser.add_argument(flag, type=weight_width if wb else int, metavar=key,
                            help=f"{what} (default: {source}, else {default})"
                                 + (f"; auto: {auto}" if wb else ""))


#: ``--second-set``'s words and what they mean (:class:`ArrayConfig`'s ``second_set``).
SECOND_SET = {"yes": True, "no": False, "auto": None}


def second_set_arg(text: str) -> list:
    """One ``second_set`` per comma-separated word of ``text``, ``--second-set``'s value
    (:data:`SECOND_SET`)."""
    values = text.split(",")
    bad = [v for v in values if v not in SECOND_SET]
    if bad:
        raise ConfigError(f"--second-set must be comma-separated {', '.join(SECOND_SET)}, one "
                          f"per layer, not {bad[0]!r} (in {text!r})")
    return [SECOND_SET[v] for v in values]


def check_positive(*flags: tuple[str, int | None]) -> None:
    """Raise :class:`ConfigError` for the first ``(flag, value)`` given a value below 1."""
    for flag, value in flags:
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be a positive integer, not {value}")
