"""What every part of the configuration's validation shares: suggestions and ``[[array]]`` tables.

Each problem is appended to a list, so a whole file is checked at once and every problem reported.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any


def suggest(word: str, options: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the option closest to ``word``, else `` (known: ...)``."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(options))})"


def tables(
    problems: list[str],
    key: str,
    value: Any,
    known: Sequence[str],
    build: Callable[[list[str], str, dict[str, Any]], Any],
) -> tuple[Any, ...]:
    """Each table of ``[[key]]`` built by ``build(problems, where, table)``; every problem names the table's index."""
    if not isinstance(value, list):
        problems.append(f"{key}: expected [[{key}]] tables, got {value!r}")
        return ()
    built = []
    for i, table in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(table, dict):
            problems.append(f"{where}: expected a table with {', '.join(known)}")
            continue
        for name in table:
            if name not in known:
                problems.append(f"{where}.{name}: unknown key{suggest(name, known)}")
        built.append(build(problems, where, table))
    return tuple(built)
