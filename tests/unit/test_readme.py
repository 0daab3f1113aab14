"""The README's CLI reference agrees with the CLI: the usage line and the command table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from hosting_toolkit.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _cli() -> Any:
    """The root command group, as Typer builds it."""
    return typer.main.get_command(app)


def _usage_line() -> str:
    lines = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("hosting-toolkit [")]
    assert len(lines) == 1, lines
    return lines[0]


def test_the_usage_line_lists_every_global_option() -> None:
    usage = _usage_line()
    options = {max(p.opts, key=len) for p in _cli().params if p.opts and p.opts[0].startswith("-")} - {"--help"}
    assert options, "the CLI has global options"
    missing = sorted(o for o in options if not re.search(rf"\[{re.escape(o)}[\] ]", usage))
    assert not missing, f"README usage line lacks {missing}"


def test_the_command_table_names_every_command() -> None:
    text = README.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z][a-z-]*)", text, flags=re.MULTILINE))
    commands = set(_cli().commands)
    assert not commands - listed, f"README command table lacks {sorted(commands - listed)}"
