"""Redirect, rewrite and response-header rules (``[rules]`` in hosting.toml): their configuration, its checks,
and the compiled form the edge functions read from ``SITE``.

A pattern is a path: literal segments, ``:name`` placeholders (exactly one non-empty segment) and
a last ``*`` segment (the rest of the path, zero or more segments, available as ``:splat``). It is
compiled at synth time into a list with one entry per segment: the text to equal, ``ONE_SEGMENT``
or ``REST``. A target is compiled into a list of literal text and capture numbers. The router
then matches with whole-segment string comparisons only: no regular expression ever runs on
viewer input, and what a placeholder captures is the viewer's still-encoded text, which the
router's ``safePath`` already accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hosting_toolkit.contract import MAX_URI_LENGTH
from hosting_toolkit.validation import tables

#: Request header the router tags a request with: the numbers of the header rules matching the
#: path the viewer asked for, dot-separated; the viewer-response function reads it (it only sees
#: the rewritten URI). Declared in both functions; tests/unit/test_rules_config.py checks them.
RULES_HEADER = "x-hosting-rules"
REDIRECT_STATUSES: tuple[int, ...] = (301, 302, 307, 308)
#: Compiled pattern entries: one segment (``:name``) and the rest of the path (``*``).
ONE_SEGMENT = 0
REST = 1
SPLAT = "splat"

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TARGET_PLACEHOLDER_RE = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
#: Characters a path holds unencoded (RFC 3986 pchar, and '/' between segments).
_PATH_TEXT_RE = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
_QUERY_TEXT_RE = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: What the router refuses in any request path (its ENCODED list): a rule holding it could never
#: match, or would build a path the router refuses.
_REFUSED_ENCODINGS = ("%2e", "%2f", "%5c", "%0", "%1", "%7f")
_ORIGIN_RE = re.compile(r"https://[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:\d{1,5})?(?=[/?]|\Z)")
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE_RE = re.compile(r"[\t\x20-\x7e]*")

#: Headers CloudFront never lets a function add: it answers 502 instead.
_DISALLOWED_HEADERS = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-amzn-auth",
        "x-amzn-cf-billing",
        "x-amzn-cf-id",
        "x-amzn-cf-xff",
        "x-amzn-errortype",
        "x-amzn-fle-profile",
        "x-amzn-header-count",
        "x-amzn-header-order",
        "x-amzn-lambda-integration-tag",
        "x-amzn-requestid",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
_DISALLOWED_PREFIXES = ("x-amz-cf-", "x-edge-")
#: Headers a viewer-response function may read but not add, change or remove.
_READ_ONLY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "warning", "via"})
#: Headers the distribution's response headers policy sets from ``[headers]``.
_POLICY_HEADERS = frozenset(
    {
        "strict-transport-security",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "content-security-policy",
    }
)
#: Headers the toolkit's functions set themselves.
_OWN_HEADERS = {"x-release": "names the release that served a response", "set-cookie": "holds the toolkit's cookies"}


@dataclass(frozen=True)
class RedirectRule:
    """One ``[[rules.redirects]]`` table: a request whose path matches ``source`` is redirected to ``target``.

    source: the ``from`` pattern.
    target: the ``to`` path or ``https://`` URL; ``:name`` and ``:splat`` take what the pattern
      captured, and the request's query string is appended (after ``to``'s own, with ``&``).
    status: 301 (default), 302, 307 or 308.
    """

    source: str
    target: str
    status: int = 301


@dataclass(frozen=True)
class RewriteRule:
    """One ``[[rules.rewrites]]`` table: a request whose path matches ``source`` is served ``target`` of the same release.

    The viewer's URL does not change; the target is then mapped like any path (``spa``/``static``).
    """

    source: str
    target: str


@dataclass(frozen=True)
class HeaderRule:
    """One ``[[rules.headers]]`` table: response headers added to every response whose request path matches ``path``.

    headers: (lowercase name, value) pairs, in file order.
    """

    path: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RulesConfig:
    """Redirects, rewrites and response headers by path, compiled into the edge functions at synth time.

    redirects: ``[[rules.redirects]]``; the first match (in file order) answers (default none).
    rewrites: ``[[rules.rewrites]]``; the first match (in file order) is served (default none).
    headers: ``[[rules.headers]]``; every match applies, a later rule's header replacing an earlier
      one's (default none).
    """

    redirects: tuple[RedirectRule, ...] = ()
    rewrites: tuple[RewriteRule, ...] = ()
    headers: tuple[HeaderRule, ...] = ()

    @property
    def count(self) -> int:
        """How many rules there are, of every kind."""
        return len(self.redirects) + len(self.rewrites) + len(self.headers)


Pattern = list[str | int]


def parse_pattern(text: Any) -> tuple[Pattern, list[str]]:
    """The compiled form of a path pattern and its placeholder names (``splat`` last); ``ValueError`` says why not."""
    if not isinstance(text, str) or not text.startswith("/"):
        raise ValueError(f"{text!r} must be a path pattern starting with '/' (e.g. '/blog/:year/*')")
    if "?" in text or "#" in text:
        raise ValueError(
            f"{text!r}: a pattern matches the path only, without '?' or '#' (the query string passes through)"
        )
    if len(text) > MAX_URI_LENGTH:
        raise ValueError(f"a pattern is at most {MAX_URI_LENGTH} characters, like the paths the router accepts")
    segments = text[1:].split("/")
    compiled: Pattern = []
    names: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "*":
            if not last:
                raise ValueError(f"{text!r}: '*' must be the last segment (it matches the rest of the path)")
            compiled.append(REST)
            names.append(SPLAT)
        elif segment.startswith(":"):
            name = segment[1:]
            if not _NAME_RE.fullmatch(name):
                raise ValueError(
                    f"{text!r}: a placeholder is a whole segment ':name' (letters, digits and _), not {segment!r}"
                )
            if name == SPLAT:
                raise ValueError(f"{text!r}: ':splat' is what '*' captures; name the placeholder otherwise")
            if name in names:
                raise ValueError(f"{text!r}: the placeholder ':{name}' appears twice")
            compiled.append(ONE_SEGMENT)
            names.append(name)
        else:
            if "*" in segment:
                raise ValueError(f"{text!r}: '*' only stands as the whole last segment (e.g. '/docs/*')")
            if segment == "" and not last:
                raise ValueError(f"{text!r}: empty segments ('//') never match; the router refuses such paths")
            _check_path_text(text, segment)
            compiled.append(segment)
    return compiled, names


def _check_path_text(whole: str, text: str) -> None:
    if ".." in text or text == ".":
        raise ValueError(f"{whole!r}: '.' segments and '..' are not allowed")
    if not _PATH_TEXT_RE.fullmatch(text):
        raise ValueError(f"{whole!r}: holds characters a path cannot hold unencoded; percent-encode them (e.g. %20)")
    if _BAD_PERCENT_RE.search(text):
        raise ValueError(f"{whole!r}: '%' must start an escape such as %20")
    lowered = text.lower()
    if any(encoded in lowered for encoded in _REFUSED_ENCODINGS):
        raise ValueError(
            f"{whole!r}: holds an encoded dot, slash, backslash or control character, which the router refuses in any path"
        )


def parse_target(text: Any, names: list[str] | None, *, absolute: bool) -> tuple[Pattern, str]:
    """The compiled path of a ``to`` (literal text and capture numbers) and its literal query; ``ValueError`` says why not.

    ``names`` are the pattern's placeholders (``None``: the pattern was invalid, so they are not
    checked); ``absolute`` allows an ``https://`` URL (redirects).
    """
    example = "'/news/:splat' or 'https://example.com/:splat'" if absolute else "'/docs/index.html'"
    if not isinstance(text, str) or not text:
        raise ValueError(f"{text!r} is not a target; give a path starting with '/' (e.g. {example})")
    if "#" in text:
        raise ValueError(f"{text!r}: a target cannot hold a '#' fragment")
    if ".." in text:
        raise ValueError(f"{text!r}: '..' is not allowed")
    origin, rest = "", text
    if absolute and text.startswith("https://"):
        match = _ORIGIN_RE.match(text)
        if not match:
            raise ValueError(f"{text!r} is not an https:// URL with a lowercase host name (e.g. {example})")
        origin, rest = match[0], text[match.end() :]
    elif not text.startswith("/") or text.startswith("//"):
        hint = "a path starting with '/', or an https:// URL" if absolute else "a path of the release starting with '/'"
        raise ValueError(f"{text!r} must be {hint} (e.g. {example})")
    path, mark, query = rest.partition("?")
    if mark and not absolute:
        raise ValueError(f"{text!r}: a rewrite serves a file and keeps the request's query string; remove '?...'")
    if query and not _QUERY_TEXT_RE.fullmatch(query):
        raise ValueError(f"{text!r}: the query holds characters it cannot hold unencoded; percent-encode them")
    if _TARGET_PLACEHOLDER_RE.search(query):
        raise ValueError(f"{text!r}: placeholders go in the path of the target, not in its query")
    segments = path.split("/")
    if any(segment == "." for segment in segments) or "" in segments[1:-1]:
        raise ValueError(f"{text!r}: '.' and empty ('//') segments are not allowed")
    parts: Pattern = []
    position = 0
    for match in _TARGET_PLACEHOLDER_RE.finditer(path):
        name = match[1]
        if names is not None and name not in names:
            known = ", ".join(f":{n}" for n in names) or "none"
            raise ValueError(f"{text!r}: ':{name}' is not a placeholder of the pattern (it has {known})")
        parts.extend([path[position : match.start()], names.index(name) if names is not None else 0])
        position = match.end()
    parts.append(path[position:])
    for part in parts:
        if isinstance(part, str):
            _check_path_text(text, part)
    parts[0] = origin + str(parts[0])
    return [part for part in parts if part != ""], query


def _pattern_names(problems: list[str], key: str, text: Any) -> list[str] | None:
    if text is None:
        problems.append(f"{key}: missing; give the path pattern to match (e.g. '/blog/:year/*')")
        return None
    try:
        return parse_pattern(text)[1]
    except ValueError as exc:
        problems.append(f"{key}: {exc}")
        return None


def _check_target(problems: list[str], key: str, text: Any, names: list[str] | None, *, absolute: bool) -> None:
    if text is None:
        problems.append(f"{key}: missing; give where the matching requests go")
        return
    try:
        parse_target(text, names, absolute=absolute)
    except ValueError as exc:
        problems.append(f"{key}: {exc}")


def _redirect(problems: list[str], where: str, table: dict[str, Any]) -> RedirectRule:
    source: Any = table.get("from")
    target: Any = table.get("to")
    status: Any = table.get("status", 301)
    _check_target(problems, f"{where}.to", target, _pattern_names(problems, f"{where}.from", source), absolute=True)
    if isinstance(status, bool) or status not in REDIRECT_STATUSES:
        problems.append(f"{where}.status: {status!r} is not a redirect status; use 301, 302, 307 or 308")
    return RedirectRule(source, target, status)


def _rewrite(problems: list[str], where: str, table: dict[str, Any]) -> RewriteRule:
    source: Any = table.get("from")
    target: Any = table.get("to")
    _check_target(problems, f"{where}.to", target, _pattern_names(problems, f"{where}.from", source), absolute=False)
    return RewriteRule(source, target)


def _header_problem(name: str) -> str | None:
    if name in _DISALLOWED_HEADERS or name.startswith(_DISALLOWED_PREFIXES):
        return "CloudFront does not let a function add this header (it would answer 502)"
    if name in _READ_ONLY_HEADERS:
        return "CloudFront does not let a viewer-response function change this header"
    if name in _POLICY_HEADERS:
        return "the distribution's response headers policy sets this header; configure it in [headers]"
    if name in _OWN_HEADERS:
        return f"the toolkit sets this header itself (it {_OWN_HEADERS[name]})"
    return None


def _header_rule(problems: list[str], where: str, table: dict[str, Any]) -> HeaderRule:
    path: Any = table.get("path")
    _pattern_names(problems, f"{where}.path", path)
    headers = table.get("headers")
    if not isinstance(headers, dict) or not headers:
        problems.append(f'{where}.headers: expected a table of name = value (e.g. {{ "cache-control" = "no-cache" }})')
        headers = {}
    pairs: list[tuple[str, str]] = []
    for name, value in headers.items():
        key = f"{where}.headers.{name}"
        lowered = name.lower()
        problem = _header_problem(lowered) if _TOKEN_RE.fullmatch(name) else "not a header name (letters, digits, -)"
        if problem:
            problems.append(f"{key}: {problem}")
        elif lowered in (seen for seen, _ in pairs):
            problems.append(f"{key}: set twice in this rule (header names ignore case)")
        if not isinstance(value, str) or not _HEADER_VALUE_RE.fullmatch(value):
            problems.append(f"{key}: the value must be one line of printable ASCII text")
        pairs.append((lowered, value))
    return HeaderRule(path, tuple(pairs))


def redirect_rules(problems: list[str], value: Any) -> Any:
    """``[[rules.redirects]]`` tables as ``RedirectRule``s."""
    return tables(problems, "rules.redirects", value, ("from", "to", "status"), _redirect)


def rewrite_rules(problems: list[str], value: Any) -> Any:
    """``[[rules.rewrites]]`` tables as ``RewriteRule``s."""
    return tables(problems, "rules.rewrites", value, ("from", "to"), _rewrite)


def header_rules(problems: list[str], value: Any) -> Any:
    """``[[rules.headers]]`` tables as ``HeaderRule``s."""
    return tables(problems, "rules.headers", value, ("path", "headers"), _header_rule)


def router_rules(rules: RulesConfig, www: tuple[str, str] | None) -> dict[str, Any]:
    """The router's ``SITE.rules``: the www redirect's (from, to) hosts and the compiled rules, in file order.

    ``r`` holds the redirects, then the rewrites, in the form of a release's own rules
    (``hosting_toolkit.release.release_rules``): a redirect ``[pattern, target path, status, 0,
    target query]`` (trailing zeros left out), a rewrite ``[pattern, target path, 200]``; ``headers``
    holds each header rule's pattern (its number tags the request for the viewer-response function).
    """
    compiled: list[list[Any]] = []
    for redirect in rules.redirects:
        pattern, names = parse_pattern(redirect.source)
        path, query = parse_target(redirect.target, names, absolute=True)
        compiled.append([pattern, path, redirect.status, 0, query] if query else [pattern, path, redirect.status])
    for rewrite in rules.rewrites:
        pattern, names = parse_pattern(rewrite.source)
        compiled.append([pattern, parse_target(rewrite.target, names, absolute=False)[0], 200])
    return {
        "www": list(www) if www else None,
        "r": compiled,
        "headers": [parse_pattern(rule.path)[0] for rule in rules.headers],
    }


def response_headers(rules: RulesConfig) -> list[dict[str, str]]:
    """The viewer-response function's ``SITE.headers``: each header rule's headers, by rule number."""
    return [dict(rule.headers) for rule in rules.headers]
