"""A release's own rules: Netlify-style ``_redirects`` and ``_headers`` files at the root of its build.

They are parsed and checked when the release is created (every problem at once, with its file and
line), compiled into one compact JSON value the router reads from the key-value store under
``rules:<id>`` only while that release serves a request, so they switch and roll back with it.

Compiled form (``{"r": [...], "h": [...]}``, keys absent when empty):

- a redirect or rewrite is ``[pattern, target, status, conditions, query, exact, skip]``, trailing
  empty entries left out (``0`` holds a place): ``pattern`` and ``target`` as in
  ``hosting_toolkit.edge.rules`` (captures of the path first, then of the query); ``status`` 3xx
  redirects, 200 rewrites, 4xx serves the target with that status; ``conditions`` are
  ``[name, value or 0]`` query parameters the request must have (``0``: any value, captured);
  ``query`` the target's literal query; ``exact`` 1 when the target is a file of the build served as
  it is (no spa or clean-URL mapping); ``skip`` the paths of build files a rule without ``!`` leaves
  to the file (Netlify's shadowing).
- a header rule is ``[pattern, {name: value or null}]`` (``null``: remove the header).

The router compares whole path segments only (no regular expression on viewer input) and checks
every path a rule builds again.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hosting_toolkit.contract import KVS_VALUE_LIMIT, WELL_KNOWN_PREFIX
from hosting_toolkit.edge.rules import (
    _HEADER_VALUE_RE,
    _TOKEN_RE,
    ONE_SEGMENT,
    REST,
    _header_problem,
    parse_pattern,
    parse_target,
)
from hosting_toolkit.errors import InvalidInputError

REDIRECTS_FILE = "_redirects"
HEADERS_FILE = "_headers"
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
REWRITE_STATUS = 200
#: Statuses a rule serves its target with (custom pages for a path), set by the viewer-response function.
PAGE_STATUSES = (403, 404, 410, 451)
#: Whole rules value: one KeyValueStore value, so a request with rules costs one more read only.
RULES_VALUE_LIMIT = KVS_VALUE_LIMIT
#: Characters a request path holds unencoded: a file name is matched in its percent-encoded form.
_PATH_SAFE = "/-._~!$&'()*+,;=:@"
_STATUS_RE = re.compile(r"(\d{3})(!?)")
_QUERY_NAME_RE = re.compile(r"[A-Za-z0-9._~-]+")
_QUERY_VALUE_RE = re.compile(r"[A-Za-z0-9._~%+-]+")
#: Conditions of Netlify's format that need what a CloudFront Function does not have, and why.
_REFUSED_CONDITIONS = {
    "country": "redirects by country need the viewer's country in the cache key (a CloudFront-Viewer-Country "
    "cache policy), which this site's distribution does not forward",
    "language": "redirects by language need the Accept-Language header in the cache key, which this "
    "site's distribution does not forward",
    "role": "redirects by role need Netlify Identity's signed JWT cookie; a CloudFront Function cannot verify it",
    "sign": "signed proxy rules send a JWS to another host; a CloudFront Function cannot proxy",
    "cookie": "redirects by cookie presence are not supported: the cookies are not part of the cache key",
}


@dataclass(frozen=True)
class RulesProblem:
    """One problem of a rules file: where it is and what is wrong."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass
class CompiledRules:
    """A release's compiled rules, the notes worth showing, and how many rules of each kind there are."""

    redirects: list[list[Any]] = field(default_factory=list)
    headers: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    implicit: int = 0

    @property
    def empty(self) -> bool:
        return not self.redirects and not self.headers

    def to_json(self) -> str:
        """The compact value stored under ``rules:<id>``; ``""`` without rules."""
        if self.empty:
            return ""
        data: dict[str, Any] = {}
        if self.redirects:
            data["r"] = self.redirects
        if self.headers:
            data["h"] = self.headers
        return json.dumps(data, separators=(",", ":"))


def _normalize(path: str) -> str:
    """A path without its trailing slash (Netlify matches ``/a`` and ``/a/`` alike); ``/`` stays."""
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


def matches(pattern: list[str | int], path: str) -> bool:
    """Whether a normalized request path matches a compiled pattern, as the router decides it."""
    segments = path.split("/")
    for i, part in enumerate(pattern):
        if part == REST:
            return True
        if i + 1 >= len(segments):
            return False
        segment = segments[i + 1]
        if (part == ONE_SEGMENT and segment == "") or (part != ONE_SEGMENT and segment != part):
            return False
    return len(segments) == len(pattern) + 1


def served_paths(files: Iterable[str], *, mode: str) -> dict[str, str]:
    """Normalized request paths that a build file answers -> that file.

    In ``static`` mode a folder's ``index.html`` and an ``a.html`` answer their clean URLs too; in
    ``spa`` mode those paths get the entry page, so only the files' own paths (and ``/``) count.
    """
    served: dict[str, str] = {}
    for name in files:
        path = "/" + quote(name, safe=_PATH_SAFE)
        served.setdefault(path, name)
        if posixpath.basename(name) == "index.html" and (mode == "static" or name == "index.html"):
            served.setdefault(_normalize(path[: -len("index.html")]), name)
        elif mode == "static" and name.endswith(".html"):
            served.setdefault(path[: -len(".html")], name)
    return served


def _is_option(token: str) -> bool:
    return "=" in token and not token.startswith(("/", "http://", "https://"))


def _parse_status(token: str) -> tuple[int, bool] | None:
    match = _STATUS_RE.fullmatch(token)
    return (int(match[1]), match[2] == "!") if match else None


class _Compiler:
    def __init__(self, files: set[str], *, mode: str, entry: str) -> None:
        self.files = files
        self.mode = mode
        self.entry = entry
        self.served = served_paths(files, mode=mode)
        self.problems: list[RulesProblem] = []
        self.rules = CompiledRules()

    def problem(self, file: str, line: int, message: str) -> None:
        self.problems.append(RulesProblem(file, line, message))

    # -- _redirects ------------------------------------------------------------------------

    def redirects(self, text: str) -> None:
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if line and not line.startswith("#"):
                self.redirect_line(number, line)

    def redirect_line(self, number: int, line: str) -> None:
        def refuse(message: str) -> None:
            self.problem(REDIRECTS_FILE, number, message)

        tokens = line.split()
        source = tokens[0]
        if source.startswith(("http://", "https://")):
            return refuse(
                f"{source!r}: rules for a whole host (domain-level redirects) are not supported; use hosting.toml's "
                "[domain] www_redirect, or a separate site for the other host"
            )
        position = 1
        queries: list[tuple[str, str]] = []
        while position < len(tokens) and "=" in tokens[position] and not tokens[position].startswith("/"):
            if tokens[position].startswith(("http://", "https://")):
                break
            name, _, value = tokens[position].partition("=")
            if not _QUERY_NAME_RE.fullmatch(name) or not (
                (value.startswith(":") and re.fullmatch(r":[A-Za-z_][A-Za-z0-9_]*", value))
                or _QUERY_VALUE_RE.fullmatch(value)
            ):
                return refuse(f"{tokens[position]!r} is not a query parameter condition (e.g. 'id=:id' or 'lang=en')")
            queries.append((name, value))
            position += 1
        target = ""
        if position < len(tokens) and not _parse_status(tokens[position]) and not _is_option(tokens[position]):
            target = tokens[position]
            position += 1
        status, force = 301, False
        parsed = _parse_status(tokens[position]) if position < len(tokens) else None
        if parsed:
            status, force = parsed
            position += 1
        refused = False
        for option in tokens[position:]:
            key = option.split("=", 1)[0].lower()
            if key in _REFUSED_CONDITIONS:
                refuse(f"{option!r}: {_REFUSED_CONDITIONS[key]}")
            else:
                refuse(f"{option!r}: unknown option; a rule is 'from [param=value ...] to [status][!]'")
            refused = True
        if not target and not refused:
            return refuse(f"{line!r}: give the path (or URL) to send {source!r} to after it")
        if refused:
            return None
        if status not in (*REDIRECT_STATUSES, REWRITE_STATUS, *PAGE_STATUSES):
            return refuse(
                f"status {status} is not supported: use 301, 302, 303, 307 or 308 (redirect), 200 (rewrite) or "
                f"{', '.join(map(str, PAGE_STATUSES))} (serve the target with that status)"
            )
        redirect = status in REDIRECT_STATUSES
        if not redirect and target.startswith(("http://", "https://")):
            return refuse(
                f"{target!r} with {status}: proxying to another host is not supported (a CloudFront Function cannot "
                "fetch it); redirect with 301 or 302 instead"
            )
        if target.startswith("http://"):
            return refuse(f"{target!r}: redirect to https:// only (browsers warn on http://)")
        try:
            pattern, names = parse_pattern(_normalize(source))
        except ValueError as exc:
            return refuse(str(exc))
        for _name, value in queries:
            if value.startswith(":"):
                if value[1:] in names:
                    return refuse(f"{source!r}: the placeholder '{value}' appears twice")
                names.append(value[1:])
        try:
            parts, query = parse_target(target, names, absolute=redirect)
        except ValueError as exc:
            return refuse(str(exc))
        conditions = [[name, 0 if value.startswith(":") else value] for name, value in queries]
        exact = 0
        if not redirect:
            exact_or_problem = self.target_file(target, parts)
            if isinstance(exact_or_problem, str):
                return refuse(exact_or_problem)
            exact = exact_or_problem
        skip: list[str] = []
        if not force:
            shadowed = sorted(path for path in self.served if matches(pattern, path))
            if shadowed and not queries:
                if all(isinstance(p, str) for p in pattern) and REST not in pattern:
                    self.rules.notes.append(
                        f"{REDIRECTS_FILE}:{number}: {source} is the file {self.served[shadowed[0]]}, which is served "
                        "instead of the rule (shadowing); add ! after the status to apply the rule anyway"
                    )
                    return None
                if self.is_spa_fallback(pattern, parts, status):
                    self.rules.notes.append(
                        f"{REDIRECTS_FILE}:{number}: {line!r} is what the spa mode already does; no rule needed"
                    )
                    return None
                skip = shadowed
        rule: list[Any] = [pattern, parts, status, conditions or 0, query or 0, exact, skip or 0]
        while rule[-1] == 0:
            rule.pop()
        self.rules.redirects.append(rule)
        return None

    def is_spa_fallback(self, pattern: list[str | int], parts: list[str | int], status: int) -> bool:
        return (
            self.mode == "spa"
            and status == REWRITE_STATUS
            and pattern == [REST]
            and parts in (["/"], ["/" + self.entry])
        )

    def target_file(self, target: str, parts: list[str | int]) -> int | str:
        """1 when a rewrite's literal target is a file served as it is, 0 when mapped; a problem text when missing."""
        if any(not isinstance(p, str) for p in parts):
            return 0
        path = str(parts[0]) if parts else "/"
        name = path[1:]
        last = posixpath.basename(path)
        if name in self.files:
            return 1 if "." not in last else 0
        if _normalize(path) in self.served or (self.mode == "spa" and "." not in last):
            return 0
        return f"{target!r} is not a file of this build; a rewrite serves a file of the same release"

    # -- _headers --------------------------------------------------------------------------

    def headers(self, text: str) -> None:
        current: dict[str, str | None] | None = None
        start = 0
        lines = 0
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if raw[0] not in " \t":
                if start and not lines:
                    self.problem(HEADERS_FILE, start, "this path has no headers under it (indent them)")
                start, lines, current = number, 0, {}
                try:
                    pattern, _ = parse_pattern(_normalize(line))
                except ValueError as exc:
                    self.problem(HEADERS_FILE, number, str(exc))
                    continue
                self.rules.headers.append([pattern, current])
                continue
            if current is None:
                self.problem(HEADERS_FILE, number, "a header line must follow a path line (e.g. '/*')")
                continue
            lines += 1
            self.header_line(number, line, current)
        if start and not lines:
            self.problem(HEADERS_FILE, start, "this path has no headers under it (indent them)")

    def header_line(self, number: int, line: str, current: dict[str, str | None]) -> None:
        unset = line.startswith("!")
        if unset:
            name, value = line[1:].strip(), None
        else:
            name, colon, text = line.partition(":")
            name, value = name.strip(), text.strip()
            if not colon:
                self.problem(HEADERS_FILE, number, f"{line!r} is not 'Name: value' (or '! Name' to remove a header)")
                return
        lowered = name.lower()
        problem = _header_problem(lowered) if _TOKEN_RE.fullmatch(name) else "not a header name (letters, digits, -)"
        if lowered == "basic-auth":
            problem = (
                "Netlify's password protection is not supported; a CloudFront Function would have to hold the password"
            )
        if problem:
            self.problem(HEADERS_FILE, number, f"{name}: {problem}")
            return
        if value is not None and not _HEADER_VALUE_RE.fullmatch(value):
            self.problem(HEADERS_FILE, number, f"{name}: the value must be one line of printable ASCII text")
            return
        before = current.get(lowered)
        # Netlify joins the values of a header given on several lines.
        current[lowered] = value if before is None or value is None else f"{before}, {value}"

    # -- implicit rules --------------------------------------------------------------------

    def extensionless_files(self) -> None:
        """In spa mode, a file without an extension outside /.well-known/ is served as itself, not the entry page."""
        if self.mode != "spa":
            return
        for name in sorted(self.files):
            if "." not in posixpath.basename(name) and not ("/" + name).startswith(WELL_KNOWN_PREFIX):
                if name in (REDIRECTS_FILE, HEADERS_FILE):
                    continue
                path = "/" + quote(name, safe=_PATH_SAFE)
                try:
                    pattern, _ = parse_pattern(path)
                except ValueError as exc:
                    self.rules.notes.append(f"{name}: answers the entry page in spa mode ({exc})")
                    continue
                self.rules.redirects.append([pattern, [path], REWRITE_STATUS, 0, 0, 1])
                self.rules.implicit += 1


def compile_rules(
    redirects: str | None, headers: str | None, files: Iterable[str], *, mode: str, entry: str
) -> CompiledRules:
    """Parse, check and compile a build's rules files; raises ``InvalidInputError`` listing every problem."""
    compiler = _Compiler(set(files), mode=mode, entry=entry)
    if redirects is not None:
        compiler.redirects(redirects)
    if headers is not None:
        compiler.headers(headers)
    compiler.extensionless_files()
    size = len(compiler.rules.to_json().encode())
    if not compiler.problems and size > RULES_VALUE_LIMIT:
        what = f"{len(compiler.rules.redirects)} redirects and rewrites and {len(compiler.rules.headers)} header rules"
        if compiler.rules.implicit:
            what += f" ({compiler.rules.implicit} of them for files without an extension)"
        compiler.problems.append(
            RulesProblem(
                REDIRECTS_FILE if redirects is not None else HEADERS_FILE,
                0,
                f"the compiled rules ({what}) are {size:,} bytes, over the {RULES_VALUE_LIMIT:,}-byte limit of one "
                "KeyValueStore value; merge rules with :placeholders and *, or move site-wide ones to hosting.toml [rules]",
            )
        )
    if compiler.problems:
        raise InvalidInputError(
            f"{len(compiler.problems)} problem{'s' if len(compiler.problems) > 1 else ''} in the release's rules:\n"
            + "\n".join(f"  {p}" for p in compiler.problems)
        )
    return compiler.rules


def read_rules(folder: Path, files: Iterable[str], *, mode: str, entry: str) -> CompiledRules:
    """The compiled rules of a build folder's ``_redirects`` and ``_headers`` files (and its implicit ones)."""

    def text(name: str) -> str | None:
        path = folder / name
        if not path.is_file():
            return None
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{name}: not UTF-8 text ({exc})") from exc

    return compile_rules(text(REDIRECTS_FILE), text(HEADERS_FILE), files, mode=mode, entry=entry)
