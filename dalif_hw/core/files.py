"""Writing files so that a failed run leaves nothing half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .process import deferred_signals

__all__ = ["atomic_path", "write_text_atomic", "savez_atomic", "replace_files"]


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
