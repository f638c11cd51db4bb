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

__all__ = ["Interrupted", "handle_signals", "deferred_signals", "descendants", "end_children"]

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


def end_children() -> None:
    """Stop every descendant (so that none starts another), then kill them all."""
    stopped: list[int] = []
    for _ in range(20):
        new = [pid for pid in descendants() if pid not in stopped]
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
def handle_signals():
    """Within this block, SIGINT, SIGTERM and SIGHUP end the children, then raise
    :class:`Interrupted`. Outside the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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
