"""Writing files so that a failed run leaves nothing half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .process import deferred_signals

__all__ = ["atomic_path", "write_text_atomic", "savez_atomic", "replace_files", "SET_RECORD",
           "set_files", "check_set_folder", "replace_folder"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Permissions of new files (mkstemp makes them private; the files we write are not).
_FILE_MODE = 0o666 & ~_umask()


def _temporary(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = _temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def savez_atomic(path, **arrays) -> None:
    """``np.savez`` to ``path`` atomically (through a file object, so no suffix is added)."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def replace_files(folder, files: dict[str, str], stale: Iterable[str] = ()) -> list[Path]:
    """Put ``files`` (``{name: text}``) into ``folder`` as one set and remove ``stale`` (names
    of an earlier set that this one lacks).

    Every file is written to a temporary file first; only then are they renamed into place
    and the stale ones removed, with SIGINT, SIGTERM and SIGHUP held back meanwhile. An
    interrupt or error therefore leaves the earlier set or the new one, never a mix, and no
    temporary file. Other files in ``folder`` are left alone.
    """
    folder = Path(folder)
    temporaries: dict[str, Path] = {}
    try:
        for name, text in files.items():
            temporaries[name] = _temporary(folder / name)
            temporaries[name].write_text(text)
        with deferred_signals():
            for name, tmp in temporaries.items():
                os.replace(tmp, folder / name)
            temporaries.clear()
            for name in set(stale) - set(files):
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()
    finally:
        for tmp in temporaries.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return [folder / name for name in files]


#: The record a command keeps in a folder it wrote as one set: which command, which files.
SET_RECORD = ".dalif-hw-set.json"


def set_files(folder, command: str) -> list[str] | None:
    """The files ``command`` recorded writing into ``folder`` as one set (:data:`SET_RECORD`),
    or None where no readable record of that command is there."""
    from .config import parse_text

    record = Path(folder) / SET_RECORD
    try:
        entry = parse_text(record.read_text(), str(record)) if record.is_file() else None
    except (ValueError, OSError):
        return None
    if not isinstance(entry, dict) or entry.get("command") != command or \
            not isinstance(entry.get("files"), list):
        return None
    return [name for name in entry["files"] if isinstance(name, str)]


def check_set_folder(folder, command: str, force: bool = False, inputs=(),
                     what: str = "--out") -> Path:
    """Check up front that ``command`` may replace ``folder`` as a whole (see
    :func:`replace_folder`): it is no file, holds none of ``inputs`` (the command's input
    files), and holds nothing but what ``command`` wrote there last time (by its record),
    unless ``force``. Returns the folder.

    Raises
    ------
    ValueError (ConfigError)
        Naming the folder and the first files that are not the command's.
    """
    from .config import ConfigError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} {str(folder)!r} is a file, not a folder")
    resolved = folder.resolve()
    for source in inputs:
        if source is not None and Path(source).resolve().is_relative_to(resolved):
            raise ConfigError(f"{what} {str(folder)!r} holds the input {str(source)!r}: the "
                              f"folder is replaced whole, so write it elsewhere")
    if not folder.is_dir():
        return folder
    present = sorted(p.name for p in folder.iterdir() if p.name != SET_RECORD)
    known = set_files(folder, command) or []
    foreign = [name for name in present if name not in known]
    if foreign and not force:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise ConfigError(f"{what} {str(folder)!r} holds files that {command} did not write "
                          f"({shown}): it replaces the folder whole; give another folder, or "
                          f"--force to replace it anyway")
    return folder


def replace_folder(folder, write, command: str) -> Path:
    """Write a command's output folder as one set: ``write(tmp)`` fills a new sibling
    folder (with :data:`SET_RECORD` naming what it holds), then the old folder is moved
    aside, the new one moved in and the old one deleted, with SIGINT, SIGTERM and SIGHUP held
    back over the renames. At every moment ``folder`` holds one whole set; an error or an
    interrupt before the renames leaves the old one (check first with
    :func:`check_set_folder`)."""
    import json
    import shutil

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
    old = None
    try:
        write(new)
        names = sorted(p.name for p in new.iterdir())
        (new / SET_RECORD).write_text(json.dumps({"command": command, "files": names}) + "\n")
        os.chmod(new, 0o777 & ~_umask())
        with deferred_signals():
            if folder.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
                os.rmdir(old)
                os.rename(folder, old)
            os.rename(new, folder)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        if old is not None and old.exists() and not folder.exists():
            os.rename(old, folder)      # put the old set back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return folder
