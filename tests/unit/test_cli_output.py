"""CLI text keeps every bracketed word: help of every command, and messages on the console."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hosting_toolkit.cli.main import app
from hosting_toolkit.cli.output import ToolkitConsole, keep_brackets

BRACKETED = re.compile(r"\[[^\[\]]+\]")


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command below ``group`` (Typer's own click), with the words that invoke it."""
    yield path, group
    if hasattr(group, "commands"):
        for name, command in group.commands.items():
            yield from commands(command, (*path, name))


def flat(text: str) -> str:
    return " ".join(text.split())


ALL_COMMANDS = list(commands(typer.main.get_command(app)))


def test_every_command_is_walked() -> None:
    names = {" ".join(path) for path, _ in ALL_COMMANDS}
    assert {"", "release", "verify", "init", "function", "function test"} <= names


@pytest.mark.parametrize("path", [p for p, _ in ALL_COMMANDS], ids=lambda p: " ".join(p) or "hosting-toolkit")
def test_help_shows_every_bracketed_word_of_its_source_text(path: tuple[str, ...]) -> None:
    command = dict(ALL_COMMANDS)[path]
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    words = [flat(w) for text in texts for w in BRACKETED.findall(text)]

    result = CliRunner().invoke(app, [*path, "--help"])

    assert result.exit_code == 0, result.output
    shown = flat(result.output)
    assert [w for w in words if w not in shown] == []


def test_help_of_verify_names_its_configuration_table() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert "Run the [verify] checks of hosting.toml" in flat(result.output)


def test_an_error_message_keeps_the_brackets_a_person_typed(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--local", str(tmp_path / "target"), "rollback", "--to", "[wip]"])

    assert result.exit_code != 0
    assert "'[wip]' is not a valid release id" in result.stderr


@pytest.mark.parametrize(
    ("markup", "shown"),
    [
        ("add a [source] (see hosting.example.toml)", "add a [source] (see hosting.example.toml)"),
        ("[bold red]error:[/] no [verify] checks", "error: no [verify] checks"),
        ("release [bold]v1[/]: files [default: 3]", "release v1: files [default: 3]"),
        ("a[1] and [green]live[/]", "a[1] and live"),
        (r"already \[escaped]", "already [escaped]"),
    ],
)
def test_the_console_prints_bracketed_words_and_applies_only_real_styles(markup: str, shown: str) -> None:
    console = ToolkitConsole(record=True, file=open("/dev/null", "w"), width=200)  # noqa: SIM115
    console.print(markup)
    assert console.export_text().strip() == shown
    assert keep_brackets("[bold]x[/]") == "[bold]x[/]"
