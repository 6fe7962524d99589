"""Every command's --help shows its help texts whole: Typer renders them as Rich markup, where a bracketed word
such as ``[experiment]`` is taken for a style tag and silently dropped unless it is escaped (issue 13, item 10)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from defection.cli.app import app

BOX = re.compile(r"[│╭╮╰╯─]")


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group of the app, as (argument path, click command)."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _help_texts(cmd: Any) -> list[str]:
    """The command's own help and its parameters' help, as written (a Rich escape ``\\[`` read as ``[``)."""
    texts = [cmd.help or "", *(getattr(p, "help", None) or "" for p in cmd.params)]
    return [t.replace("\\[", "[") for t in texts if t]


def _flat(text: str) -> str:
    """Rendered help without the panels' box drawing and with all whitespace runs (wrapping) as one space."""
    return " ".join(BOX.sub(" ", text).split())


COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=[" ".join(p) or "defection" for p, _ in COMMANDS])
def test_help_keeps_bracketed_text(path: tuple[str, ...]) -> None:
    cmd = dict(COMMANDS)[path]
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100", "TERMINAL_WIDTH": "100"})
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    for text in _help_texts(cmd):
        for word in _flat(text).split(" "):
            if "[" in word:
                assert word in shown, f"`defection {' '.join(path)} --help` lost {word!r} of {text!r}:\n{shown}"
    assert ", []" not in shown and "[]." not in shown, shown


def test_sweep_help_names_the_spec_tables() -> None:
    result = CliRunner().invoke(app, ["sweep", "--help"], env={"COLUMNS": "100", "TERMINAL_WIDTH": "100"})
    assert result.exit_code == 0, result.output
    assert "Spec TOML file: [experiment], [[uncertainties]], [[levers]], [[outcomes]]." in _flat(result.output)
