"""Reading an input file: the one guard every loader uses (scenario and case TOML, exploration specs, posterior JSON).

A command reads only a regular file (not a directory, a named pipe, a device such as /dev/zero or a socket), of at
most a size cap, as UTF-8 text, and parsed data nested at most `MAX_DEPTH` levels deep. Anything else is refused
with one `Problem` on the path `(file)` before a byte is parsed, so a hostile or mistaken input can neither hang a
command (a FIFO with no writer), exhaust its memory (/dev/zero) nor overflow the parser's stack (deep nesting).
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from defection.scenario.errors import _MISSING, Problem

MAX_TOML_BYTES = 1_048_576
"""The largest TOML file read (1 MiB): the default scenario with every comment is 36 KB, the largest case 15 KB."""
MAX_JSON_BYTES = 50_000_000
"""The largest posterior file read: 50 MB is about a million particles of nine parameters."""
MAX_DEPTH = 32
"""The deepest nesting of tables, arrays and objects read: a case file needs 5, a posterior 3 (a calibration's
`meta` 4)."""


class InputFileError(Exception):
    """A file that is not read: missing, not a regular file, too large, not UTF-8, not parseable or nested too deeply.
    `problem` is the one problem to report, on the path `(file)`; the loader names the file."""

    def __init__(self, message: str, value: Any = _MISSING) -> None:
        self.problem = Problem("(file)", value, message)
        super().__init__(message if value is _MISSING else f"{value}: {message}")


_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, "is a directory, expected a regular file"),
    (stat.S_ISFIFO, "is a named pipe (FIFO), expected a regular file"),
    (stat.S_ISCHR, "is a character device, expected a regular file"),
    (stat.S_ISBLK, "is a block device, expected a regular file"),
    (stat.S_ISSOCK, "is a socket, expected a regular file"),
)


def _kind_problem(mode: int) -> str | None:
    """Why a file of this mode is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((why for test, why in _KINDS if test(mode)), "is not a regular file")


def read_bytes(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes` bytes; `InputFileError` otherwise.

    The file is checked before it is opened and again on the open descriptor (it may be replaced in between); it
    is opened non-blocking, so even a named pipe that appears in between cannot hang the read, and at most
    `max_bytes + 1` bytes are read, so a file that grows (or a /proc file that reports size 0) cannot exhaust memory.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputFileError("file not found") from None
    except OSError as e:
        raise InputFileError(f"cannot be read: {e.strerror or e}") from None
    if (why := _kind_problem(st.st_mode)) is not None:
        raise InputFileError(why)
    _check_size(st.st_size, max_bytes)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except OSError as e:
        raise InputFileError(f"cannot be read: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if (why := _kind_problem(st.st_mode)) is not None:
            raise InputFileError(why)
        _check_size(st.st_size, max_bytes)
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise InputFileError(f"cannot be read: {e.strerror or e}") from None
    _check_size(len(data), max_bytes)
    return data


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise InputFileError(f"larger than the {max_bytes:,} bytes allowed", f"{size:,} bytes")


def read_text(path: str | Path, max_bytes: int) -> str:
    """A regular file of at most `max_bytes` bytes as UTF-8 text (`read_bytes`); `InputFileError` otherwise."""
    try:
        return read_bytes(path, max_bytes).decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputFileError(f"not UTF-8 text: {e}") from None


def nesting_depth(data: Any) -> int:
    """How deeply lists and dicts nest in parsed data (a number or string is 0 deep); iterative, so any depth."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _too_deep(max_depth: int) -> InputFileError:
    return InputFileError(f"nested too deeply: deeper than the {max_depth} levels allowed")


def _check_depth(data: Any, max_depth: int) -> None:
    if (depth := nesting_depth(data)) > max_depth:
        raise InputFileError(f"nested deeper than the {max_depth} levels allowed", f"depth {depth}")


def read_toml(path: str | Path, max_bytes: int = MAX_TOML_BYTES, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """A TOML file's table, read by `read_text` and nested at most `max_depth` levels; `InputFileError` otherwise."""
    text = read_text(path, max_bytes)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputFileError(f"malformed TOML: {e}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise _too_deep(max_depth) from None
    _check_depth(data, max_depth)
    return data


def parse_toml_value(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """A TOML value as written on a command line (a number, true/false, a quoted string, an array), nested at most
    `max_depth` levels; `InputFileError` when it is not one."""
    _check_size(len(text.encode("utf-8")), MAX_TOML_BYTES)
    try:
        data = tomllib.loads(f"v = {text}")
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise InputFileError(f"not a TOML value: {e}") from None
    _check_depth(data, max_depth)
    return data["v"]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members, refusing a key given twice (json.loads would keep the last one silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InputFileError(f"not JSON: key {key!r} appears twice in one object")
        out[key] = value
    return out


def read_json(path: str | Path, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON file's value, read by `read_text`, each object's keys distinct, nested at most `max_depth` levels;
    `InputFileError` otherwise. `NaN` and `Infinity` are parsed (the caller's checks name them)."""
    text = read_text(path, max_bytes)
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:  # the json module recurses once per nested array or object
        raise _too_deep(max_depth) from None
    except ValueError as e:  # json.JSONDecodeError, or an integer literal too long to convert
        raise InputFileError(f"not JSON: {e}") from None
    _check_depth(data, max_depth)
    return data
