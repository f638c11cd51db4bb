"""Interrupts and child processes: every command's children end with it.

The commands start other programs (Yosys for Amaranth's Verilog, the YoWASP tools, Verilator
and make, compilers under make). A terminal's Ctrl-C reaches them all, but a SIGTERM or SIGHUP
sent to the command alone (a timeout, a closed session, a CI runner) would leave them running.
:func:`handle_signals` makes SIGINT, SIGTERM and SIGHUP end the whole tree of descendants first
and then raise :class:`Interrupted` in the command, so that its clean-up (temporary files)
runs; :func:`deferred_signals` holds a signal back while a set of files is being put in place.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

__all__ = ["Interrupted", "handle_signals", "deferred_signals", "descendants", "end_children",
           "children_ignore_sigint"]

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """The command got SIGINT, SIGTERM or SIGHUP (a KeyboardInterrupt, so that clean-up written
    for Ctrl-C runs for every one of them)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def descendants(pid: int | None = None) -> list[int]:
    """The process IDs below ``pid`` (default: this process), parents before children.

    Reads ``/proc``; where there is none, returns an empty list.
    """
    pid = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (in parentheses) may hold spaces; the parent PID follows it.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_all(pids, signum) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _spared(pid: int) -> bool:
    """Whether ``pid`` is Python's multiprocessing resource tracker: it exits by itself when
    this process does, and killing it makes the one started next print a traceback for every
    semaphore released afterwards (Dask's, as ``explore`` closes its cluster)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"multiprocessing.resource_tracker" in f.read()
    except OSError:
        return False


def end_children() -> None:
    """Stop every descendant (so that none starts another), then kill them all (but
    multiprocessing's resource tracker: :func:`_spared`)."""
    stopped: list[int] = []
    for _ in range(20):
        new = [pid for pid in descendants() if pid not in stopped and not _spared(pid)]
        if not new:
            break
        _signal_all(new, signal.SIGSTOP)
        stopped += new
    _signal_all(stopped, signal.SIGKILL)
    # Reap the direct children, so that none is left as a zombie while clean-up runs.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.01)


_deferred: list[int] | None = None


def _handler(signum, frame):
    global _deferred
    if _deferred is not None:
        _deferred.append(signum)
        return
    end_children()
    raise Interrupted(signum)


@contextlib.contextmanager
def handle_signals(subreaper: bool = False):
    """Within this block, SIGINT, SIGTERM and SIGHUP end the children, then raise
    :class:`Interrupted`. Outside the main thread it does nothing. With ``subreaper`` (a
    command run as a program) the process becomes its descendants' subreaper (Linux), so
    that a grandchild whose parent died (a tool a Dask worker ran) is still among the
    :func:`descendants` that end with it; a process that lives on after the command (a test
    session) must not, or the orphans of every command it ran would stay its zombies."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if subreaper:
        _become_subreaper()
    previous = {signum: signal.signal(signum, _handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _become_subreaper() -> None:
    """``prctl(PR_SET_CHILD_SUBREAPER, 1)`` where there is one (Linux); else nothing."""
    import ctypes

    try:
        # The process's own symbols: libc's prctl, without a search (find_library runs
        # ldconfig, a child that an early Ctrl-C would catch).
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)          # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError, TypeError):
        pass


@contextlib.contextmanager
def children_ignore_sigint():
    """Within this block SIGINT is ignored, so that the Python processes started in it (Dask's
    workers) keep ignoring it: a terminal's Ctrl-C goes to the whole process group, and this
    process ends them itself (:func:`handle_signals`) instead of each printing its own
    KeyboardInterrupt. A Ctrl-C in the block itself is lost; keep it short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def deferred_signals():
    """Hold back SIGINT, SIGTERM and SIGHUP (as :func:`handle_signals` handles them) until
    the block ends, then act on the first one that came. For short steps that must not be
    cut in half, such as renaming a set of files into place."""
    global _deferred
    if _deferred is not None or threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferred = []
    previous = {signum: signal.signal(signum, _handler) for signum in SIGNALS}
    try:
        yield
    finally:
        came, _deferred = _deferred, None
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if came:
            signal.raise_signal(came[0])
