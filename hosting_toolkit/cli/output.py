"""Terminal output of the CLI: one console for people (stderr), plain stdout for scripts."""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from hosting_toolkit.release.engine import Progress as EngineProgress

err = Console(stderr=True, highlight=False, soft_wrap=True)


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
