"""Load and validate ``hosting.toml``: one typed, frozen configuration for the CDK app and the CLI."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from hosting_toolkit.errors import ConfigError

DEFAULT_CONFIG_FILE = "hosting.toml"

SiteMode = Literal["spa", "static"]
SITE_MODES: tuple[str, ...] = ("spa", "static")
_SITE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_ENTRY_RE = re.compile(r"^[A-Za-z0-9._-]+\.html?$")


@dataclass(frozen=True)
class SiteConfig:
    """What the site is and how its URLs map to files.

    name: lowercase name used for the stack and resource descriptions (default ``site``).
    mode: ``spa`` maps extensionless paths to the entry page; ``static`` maps ``/a/`` to
      ``/a/index.html`` and ``/a`` to ``/a.html`` when the release has it, else ``/a/index.html``.
    entry: the page every release must contain (default ``index.html``).
    """

    name: str = "site"
    mode: SiteMode = "spa"
    entry: str = "index.html"


@dataclass(frozen=True)
class HeadersConfig:
    """Security headers added to every response.

    content_security_policy: the CSP header value; omitted when empty (default).
    hsts_max_age: Strict-Transport-Security max-age in seconds (default two years).
    frame_options: ``DENY`` or ``SAMEORIGIN`` (default ``DENY``).
    referrer_policy: Referrer-Policy value (default ``strict-origin-when-cross-origin``).
    """

    content_security_policy: str = ""
    hsts_max_age: int = 63072000
    frame_options: Literal["DENY", "SAMEORIGIN"] = "DENY"
    referrer_policy: str = "strict-origin-when-cross-origin"


REFERRER_POLICIES = (
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
)


@dataclass(frozen=True)
class ReleaseConfig:
    """How releases are uploaded, kept and checked.

    keep: releases ``prune`` keeps besides live, canary and pinned ones (default 10).
    pins: recent live releases kept routable for viewers pinned to them (default 3).
    concurrency: parallel uploads (default 16).
    max_archive_bytes: largest total uncompressed size of a ZIP release (default 2 GiB).
    max_archive_ratio: largest compression ratio of a ZIP entry, against zip bombs (default 200).
    max_files: most files in one release (default 200,000).
    """

    keep: int = 10
    pins: int = 3
    concurrency: int = 16
    max_archive_bytes: int = 2 * 1024**3
    max_archive_ratio: int = 200
    max_files: int = 200_000


@dataclass(frozen=True)
class HostingConfig:
    """The whole validated configuration."""

    site: SiteConfig = field(default_factory=SiteConfig)
    headers: HeadersConfig = field(default_factory=HeadersConfig)
    release: ReleaseConfig = field(default_factory=ReleaseConfig)
    path: Path | None = None

    @property
    def stack_name(self) -> str:
        """CloudFormation stack name for this site."""
        return f"hosting-{self.site.name}"


_SECTIONS: dict[str, type] = {"site": SiteConfig, "headers": HeadersConfig, "release": ReleaseConfig}


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(options))})"


def _check_int(problems: list[str], key: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{key}: expected a whole number, got {value!r}")
    elif not low <= value <= high:
        problems.append(f"{key}: {value} is out of range; use {low} to {high}")


def _validate_site(problems: list[str], s: SiteConfig) -> None:
    if not isinstance(s.name, str) or not _SITE_NAME_RE.match(s.name):
        problems.append(
            f"site.name: {s.name!r} is not a valid name; use 2-32 lowercase letters, digits "
            "and hyphens, starting with a letter (e.g. 'marketing-site')"
        )
    if s.mode not in SITE_MODES:
        problems.append(f"site.mode: {s.mode!r} is not a mode; use 'spa' or 'static'")
    if not isinstance(s.entry, str) or not _ENTRY_RE.match(s.entry):
        problems.append(f"site.entry: {s.entry!r} must be an .html file name at the release root (e.g. 'index.html')")


def _validate_headers(problems: list[str], h: HeadersConfig) -> None:
    if not isinstance(h.content_security_policy, str) or any(c in h.content_security_policy for c in "\r\n"):
        problems.append("headers.content_security_policy: must be one line of text")
    _check_int(problems, "headers.hsts_max_age", h.hsts_max_age, 0, 10 * 63072000)
    if h.frame_options not in ("DENY", "SAMEORIGIN"):
        problems.append(f"headers.frame_options: {h.frame_options!r} is not valid; use 'DENY' or 'SAMEORIGIN'")
    if h.referrer_policy not in REFERRER_POLICIES:
        problems.append(
            f"headers.referrer_policy: {h.referrer_policy!r} is not a policy{_suggest(str(h.referrer_policy), list(REFERRER_POLICIES))}"
        )


def _validate_release(problems: list[str], r: ReleaseConfig) -> None:
    _check_int(problems, "release.keep", r.keep, 1, 1000)
    _check_int(problems, "release.pins", r.pins, 0, 10)
    _check_int(problems, "release.concurrency", r.concurrency, 1, 256)
    _check_int(problems, "release.max_archive_bytes", r.max_archive_bytes, 1024, 1024**4)
    _check_int(problems, "release.max_archive_ratio", r.max_archive_ratio, 2, 100_000)
    _check_int(problems, "release.max_files", r.max_files, 1, 10_000_000)


def parse_config(data: dict[str, Any], path: Path | None = None) -> HostingConfig:
    """Validate a parsed TOML document; every problem is reported together in one ``ConfigError``."""
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SECTIONS:
            problems.append(f"[{name}]: unknown section{_suggest(name, list(_SECTIONS))}")
            continue
        if not isinstance(value, dict):
            problems.append(f"{name}: expected a [{name}] table")
            continue
        cls = _SECTIONS[name]
        known = [f.name for f in fields(cls)]
        kwargs = {}
        for key, item in value.items():
            if key not in known:
                problems.append(f"{name}.{key}: unknown key{_suggest(key, known)}")
            else:
                kwargs[key] = item
        sections[name] = cls(**kwargs)
    config = HostingConfig(path=path, **sections)
    _validate_site(problems, config.site)
    _validate_headers(problems, config.headers)
    _validate_release(problems, config.release)
    if problems:
        raise ConfigError(problems, str(path) if path else None)
    return config


def load_config(path: str | Path | None = None, *, required: bool = False) -> HostingConfig:
    """Load ``path`` (default ``./hosting.toml``); without a file, the defaults unless ``required``."""
    explicit = path is not None
    file = Path(path) if path is not None else Path(DEFAULT_CONFIG_FILE)
    if not file.exists():
        if explicit or required:
            raise ConfigError(["file not found; create it from hosting.example.toml"], str(file))
        return HostingConfig()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(file)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read the file: {exc}"], str(file)) from exc
    return parse_config(data, file)
