"""Write a configuration back as ``hosting.toml``: for the build (the configuration synth used) and for ``init``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from typing import Any

from hosting_toolkit.config import HostingConfig

_BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    return name if _BARE_KEY_RE.match(name) else _string(name)


def _string(text: str) -> str:
    # JSON's escapes are TOML's, except that TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _is_table_list(value: Any) -> bool:
    return isinstance(value, tuple | list) and bool(value) and all(is_dataclass(item) for item in value)


def _section(name: str, item: Any, *, keep: Iterable[str] = ()) -> list[str]:
    """``[name]`` with the keys of ``item`` that differ from their default (and those in ``keep``)."""
    default = type(item)()
    kind = getattr(type(item), "type", None)
    scalars = [f"type = {_string(kind)}"] if isinstance(kind, str) else []
    tables: list[str] = []
    for f in fields(item):
        value = getattr(item, f.name)
        if value == getattr(default, f.name) and f.name not in keep:
            continue
        if isinstance(value, dict):
            tables += ["", f"[{name}.{f.name}]", *(f"{_key(k)} = {_value(v)}" for k, v in value.items())]
        elif _is_table_list(value):
            for entry in value:
                tables += ["", f"[[{name}.{f.name}]]"]
                tables += [f"{e.name} = {_value(getattr(entry, e.name))}" for e in fields(entry)]
        else:
            scalars.append(f"{f.name} = {_value(value)}")
    if not scalars and not tables:
        return []
    return ["", f"[{name}]", *scalars, *tables]


def render_config(config: HostingConfig, *, keep: Iterable[str] = ()) -> str:
    """``config`` as TOML that loads back to an equal configuration; only keys that differ from their
    default are written, besides ``keep`` (``"section.key"`` names)."""
    kept = set(keep)
    lines: list[str] = []
    for f in fields(config):
        section = getattr(config, f.name)
        if not is_dataclass(section):
            continue
        keys = {k.split(".", 1)[1] for k in kept if k.startswith(f"{f.name}.")}
        lines += _section(f.name, section, keep=keys)
    return "\n".join(lines).lstrip("\n") + "\n"
