"""New block-RAM contents in a finished bitstream: the library behind
``python -m dalif_hw.patch``."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from ..core.config import ConfigError, check_input_file, parse_text
from ..core.files import atomic_path
from ..core.tools import run_tool
from .targets import SLICE_WORDS

_HEX_WORD = re.compile(r"[0-9a-fA-F]+")



def read_image(path: Path) -> list[str]:
    """The words of a ``$readmemh`` image, one a line, all of one width.

    Raises
    ------
    ConfigError
        For a missing or empty file, a word that is not hexadecimal (naming the line and the
        word), or words of different widths.
    """
    check_input_file(path, "image")
    words = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        word = line.strip()
        if not word:
            continue
        if not _HEX_WORD.fullmatch(word):
            raise ConfigError(f"{path} line {number}: {word[:40]!r} is not a hexadecimal word")
        if words and len(word) != len(words[0]):
            raise ConfigError(f"{path} line {number}: {word!r} has {len(word)} hex digits, "
                              f"the words before it {len(words[0])}")
        words.append(word.lower())
    if not words:
        raise ConfigError(f"{path} holds no words")
    return words



def pair_images(old: Path, new: Path, family: str,
                depth: int | None = None) -> tuple[list[str], list[str]]:
    """The two images of a swap, of equal length.

    A placeholder image (``synth --placeholder-weights``) fills its block RAMs to whole bit
    slices, past the memory's depth; the image from ``gen`` or ``pack`` holds just the
    memory's words. Where one is longer and its length is a whole number of slices, the
    shorter one takes the longer one's trailing words (never addressed, left as they are in
    the bitstream). ``depth``, the memory's words where the design's manifest gives them:
    neither image may hold fewer (the missing words would keep the old contents).
    """
    old_words, new_words = read_image(old), read_image(new)
    for path, words in ((new, new_words), (old, old_words)):
        if depth is not None and len(words) < depth:
            raise ConfigError(f"{path} holds {len(words)} words, the memory it stands for "
                              f"{depth}: the missing words would keep the bitstream's old "
                              f"contents")
    if len(old_words[0]) != len(new_words[0]) or (
            len(old_words) != len(new_words) and
            max(len(old_words), len(new_words)) % SLICE_WORDS[family]):
        raise ConfigError(f"{new} has {len(new_words)} words of {len(new_words[0])} hex "
                          f"digits, {old} {len(old_words)} of {len(old_words[0])}: not the same "
                          f"memory")
    if len(old_words) < len(new_words):
        old_words += new_words[len(old_words):]
    else:
        new_words += old_words[len(new_words):]
    return old_words, new_words



def _write_padded(words: list[str], dst: Path, family: str) -> None:
    """Write ``words``, padded with zero words to whole slices (the rest of a small memory's
    block RAM holds zeros in the bitstream)."""
    slice_words = SLICE_WORDS[family]
    pad = -len(words) % slice_words
    dst.write_text("".join(f"{word}\n" for word in words + ["0" * len(words[0])] * pad))



def block_rams(text: str) -> dict[str, str]:
    """The block-RAM contents of a textual configuration, ``{header: contents}``: the
    ``.bram_init`` (ECP5) or ``.ram_data`` (iCE40) sections, whatever their order."""
    sections, key = {}, None
    for line in text.splitlines():
        if line.startswith("."):
            key = line if line.startswith((".bram_init", ".ram_data")) else None
            if key is not None:
                sections[key] = []
        elif key is not None:
            sections[key].append(line.strip())
    return {key: "\n".join(lines) for key, lines in sections.items()}



def uninitialised_memories(manifest: dict) -> list[str]:
    """The memories a design's manifest marks ``"init": false`` (SPRAM: no contents in the
    bitstream), as ``layer/memory`` (or ``memory`` for an array)."""
    entries = [("", manifest)] + [(layer["name"] + "/", layer)
                                  for layer in manifest.get("layers", [])]
    return [prefix + memory["name"] for prefix, entry in entries
            for memory in entry.get("memories", []) if memory.get("init", True) is False]


def memory_depths(manifest: Path) -> dict[str, int]:
    """``{init file name: depth}`` of the memories a design's manifest names (none where
    there is no manifest of ours)."""
    try:
        entry = parse_text(manifest.read_text(), str(manifest)) if manifest.is_file() else {}
        entries = [entry] + list(entry.get("layers", []))
        return {memory["file"]: int(memory["depth"]) for layer in entries
                for memory in layer.get("memories", [])}
    except (ValueError, TypeError, KeyError, AttributeError, OSError):
        return {}


def _memory_file(image) -> str:
    """The init file a swap's image stands for: a placeholder's (``X.placeholder.hex``:
    ``X.hex``) or its own name."""
    name = Path(image).name
    return name.replace(".placeholder.hex", ".hex")


def patch(config: Path, swaps: list[tuple[Path, Path]], out: Path) -> Path:
    """Replace each ``(from, to)`` memory image in ``config`` and pack the bitstream ``out``.

    The manifest that ``synth --board`` writes beside the bitstream (``<top>.json``), if it is
    there, must not mark any memory ``"init": false``: SPRAM contents are not in a bitstream.

    Raises
    ------
    ConfigError
        For missing or malformed files, images of different memories, a FROM image that
        is not in the configuration, or a design whose weights are in SPRAM.
    ToolError
        If ``ecpbram``/``icebram`` or a packer fails.
    """
    config = Path(config)
    family = {".config": "ecp5", ".asc": "ice40"}.get(config.suffix)
    if family is None:
        raise ConfigError(f"{config} is neither an ECP5 .config nor an iCE40 .asc file")
    check_input_file(config, "configuration")
    manifest = config.with_suffix(".json")
    if manifest.is_file():
        try:
            spram = uninitialised_memories(parse_text(manifest.read_text(), str(manifest)))
        except (ValueError, TypeError, KeyError, AttributeError):
            spram = []   # not a manifest of ours
        if spram:
            raise ConfigError(f"memory {spram[0]} of this design has no contents in the "
                              f"bitstream (\"init\": false in {manifest}: SPRAM), so there "
                              f"is nothing to patch; python -m dalif_hw.run loads it over the "
                              f"link")
    depths = memory_depths(manifest)
    images = [pair_images(Path(old), Path(new), family,
                          depths.get(_memory_file(old)) or depths.get(_memory_file(new)))
              for old, new in swaps]
    with tempfile.TemporaryDirectory() as tmp:
        # The YoWASP tools see only their working folder: copy everything in.
        work = Path(tmp)
        current = work / f"in{config.suffix}"
        shutil.copy(config, current)
        for k, ((old, new), (old_words, new_words)) in enumerate(zip(swaps, images)):
            _write_padded(old_words, work / f"from{k}.hex", family)
            _write_padded(new_words, work / f"to{k}.hex", family)
            result = work / f"step{k}{config.suffix}"
            if family == "ecp5":
                run_tool("yowasp-ecpbram", ["-i", current.name, "-o", result.name,
                                            "-f", f"from{k}.hex", "-t", f"to{k}.hex"],
                         work, f"ecpbram{k}.log")
            else:
                text = run_tool("yowasp-icebram", [f"from{k}.hex", f"to{k}.hex"], work,
                                f"icebram{k}.log", stdin=current.read_text())
                result.write_text(text)
            # The patchers say nothing when no block RAM holds the image: nothing changed.
            if old_words != new_words and \
                    block_rams(result.read_text()) == block_rams(current.read_text()):
                raise ConfigError(f"the image {old} is not in {config}: no block RAM holds "
                                  f"it (was the bitstream built with "
                                  f"--placeholder-weights, from this image?)")
            current = result
        packed = work / f"out{out.suffix or '.bit'}"
        tool = "yowasp-ecppack" if family == "ecp5" else "yowasp-icepack"
        run_tool(tool, [current.name, packed.name], work, "pack.log")
        out.parent.mkdir(parents=True, exist_ok=True)
        for src, dst in ((current, out.with_suffix(config.suffix)), (packed, out)):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    return out
