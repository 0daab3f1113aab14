"""Terminal output of the CLI: one console for people (stderr), plain stdout for scripts."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from typing import Any

from rich.console import Console
from rich.errors import StyleSyntaxError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.style import Style
from rich.text import Text

from hosting_toolkit.release.engine import Progress as EngineProgress

#: What Rich would read as a markup tag: ``[bold]``, ``[/]``, but also ``[source]`` or ``[verify]``.
_TAG = re.compile(r"(?<!\\)\[([a-z#/@][^\[\]]*)\]")


def _is_style_tag(tag: str) -> bool:
    if tag.startswith("/"):
        return True
    try:
        Style.parse(tag)
    except StyleSyntaxError:
        return False
    return True


def keep_brackets(text: str) -> str:
    """``text`` with every bracketed word that is not a Rich style escaped, so it shows as written.

    Messages name configuration tables (``[source]``, ``[verify]``) and hold paths and values a
    person typed; Rich would swallow those as unknown tags. Styles the CLI means (``[bold]``,
    ``[green]``, ``[/]``) keep working.
    """
    return _TAG.sub(lambda m: m.group(0) if _is_style_tag(m.group(1)) else escape(m.group(0)), text)


class ToolkitConsole(Console):
    """A Rich console on which a bracketed word that is not a style is printed as it is written."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        markup = kwargs.get("markup")
        if markup or (markup is None and self._markup):
            text = keep_brackets(text)
        return super().render_str(text, **kwargs)


err = ToolkitConsole(stderr=True, highlight=False, soft_wrap=True)


def emit_json(data: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def emit_line(text: str) -> None:
    """One plain line on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class BarProgress(EngineProgress):
    """Rich progress bars on a terminal; a line every tenth of the way in a build log."""

    def __init__(self, console: Console = err) -> None:
        self.console = console
        self.interactive = console.is_terminal
        self._bars: Progress | None = None
        self._task: TaskID | None = None
        self._lock = threading.Lock()
        self._label = ""
        self._total = 0
        self._done = 0
        self._next_report = 0

    def begin(self, label: str, total: int) -> None:
        self._label, self._total, self._done = label, total, 0
        self._next_report = max(1, total // 10)
        if total == 0:
            return
        if self.interactive:
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bars.start()
            self._task = self._bars.add_task(label, total=total)
        else:
            self.console.print(f"{label}: {total} to do")

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self._done += amount
            if self._bars is not None and self._task is not None:
                self._bars.advance(self._task, amount)
            elif not self.interactive and self._done >= self._next_report and self._total:
                self.console.print(f"{self._label}: {self._done}/{self._total}")
                self._next_report += max(1, self._total // 10)

    def end(self) -> None:
        if self._bars is not None:
            self._bars.stop()
        self._bars = None
        self._task = None

    def note(self, message: str) -> None:
        self.console.print(message)


def render_table(table: Any) -> str:
    """A Rich table as plain text, wide enough for its columns, for stdout."""
    console = Console(width=max(100, len(table.columns) * 20), record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text().rstrip()
