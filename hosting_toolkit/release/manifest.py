"""Scan a build folder into a release manifest: every path with its sha256, size and headers."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hosting_toolkit.errors import InvalidInputError
from hosting_toolkit.release.content import cache_control, content_type

_CHUNK = 1024 * 1024
_HASH_BATCH = 256
#: Characters refused in release paths: they would not survive the router's path checks.
_FORBIDDEN_PATH_CHARS = frozenset("\\\x00") | frozenset(chr(c) for c in range(32)) | {"\x7f"}


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a release. ``alias_of`` names the file whose bytes it repeats (static clean URLs)."""

    path: str
    sha256: str
    size: int
    content_type: str
    cache_control: str
    alias_of: str | None = None

    def to_record(self) -> list[object]:
        row: list[object] = [self.path, self.sha256, self.size, self.content_type, self.cache_control]
        if self.alias_of:
            row.append(self.alias_of)
        return row

    @classmethod
    def from_record(cls, row: list[object]) -> FileEntry:
        alias = str(row[5]) if len(row) > 5 else None
        return cls(str(row[0]), str(row[1]), int(row[2]), str(row[3]), str(row[4]), alias)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Manifest:
    """The files of a release, sorted by path, and where each one is read from."""

    entries: tuple[FileEntry, ...]
    sources: dict[str, Path]

    @property
    def files(self) -> int:
        return len(self.entries)

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def content_hash(self) -> str:
        """Hash of the paths and contents only: the same files give the same hash."""
        digest = hashlib.sha256()
        for entry in self.entries:
            if entry.alias_of is None:
                digest.update(f"{entry.path}\0{entry.sha256}\n".encode())
        return digest.hexdigest()

    def content_id(self) -> str:
        """Release id derived from the content (DESIGN 3.1)."""
        return self.content_hash[:12]

    def to_json(self) -> list[list[object]]:
        return [e.to_record() for e in self.entries]


def check_release_path(path: str) -> str | None:
    """Why ``path`` cannot be a release path, or ``None`` when it can."""
    if not path or path.startswith("/") or len(path.encode()) > 900:
        return "empty, absolute or too long"
    if any(c in _FORBIDDEN_PATH_CHARS for c in path):
        return "contains a backslash or a control character"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "has an empty, '.' or '..' segment"
    if "%" in path:
        return "contains '%' (an encoded name the router would refuse)"
    return None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(root: Path) -> Iterable[tuple[str, Path]]:
    real_root = root.resolve()
    for folder, dirs, names in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in list(dirs):
            full = base / name
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(real_root):
                    raise InvalidInputError(f"{full}: symbolic link points outside the build folder")
                raise InvalidInputError(f"{full}: symbolic links to folders are not supported; copy the folder")
        dirs.sort()
        for name in sorted(names):
            full = base / name
            if full.is_symlink() and not full.resolve().is_relative_to(real_root):
                raise InvalidInputError(f"{full}: symbolic link points outside the build folder")
            if not full.is_file():
                continue
            yield full.relative_to(root).as_posix(), full


def scan_directory(
    root: Path,
    *,
    entry: str,
    static_aliases: bool,
    max_files: int,
    workers: int = 4,
    on_progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Hash every file below ``root``; refuse a folder without ``entry`` or with unsafe names."""
    if not root.is_dir():
        raise InvalidInputError(f"{root}: not a folder")
    found: list[tuple[str, Path]] = []
    for rel, full in _walk(root):
        problem = check_release_path(rel)
        if problem:
            raise InvalidInputError(f"{rel!r}: file name {problem}")
        found.append((rel, full))
        if len(found) > max_files:
            raise InvalidInputError(f"{root}: more than {max_files} files (release.max_files)")
    if not found:
        raise InvalidInputError(f"{root}: the build folder is empty")
    paths = {rel for rel, _ in found}
    if entry not in paths:
        raise InvalidInputError(f"{root}: no {entry} at the top of the build folder; is this the build output folder?")

    def hash_one(item: tuple[str, Path]) -> FileEntry:
        rel, full = item
        size = full.stat().st_size
        digest = _sha256_file(full)
        if on_progress:
            on_progress(1)
        return FileEntry(rel, digest, size, content_type(rel), cache_control(rel))

    # Batches keep the number of pending tasks (and their memory) small on 100,000-file builds.
    entries: list[FileEntry] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(found), _HASH_BATCH):
            entries.extend(pool.map(hash_one, found[start : start + _HASH_BATCH]))
    if static_aliases:
        entries.extend(clean_url_aliases(entries))
    entries.sort(key=lambda e: e.path)
    return Manifest(tuple(entries), {rel: full for rel, full in found})


def _is_extensionless(path: str) -> bool:
    return "." not in path.rsplit("/", 1)[-1]


def is_folder_index(entry: FileEntry) -> bool:
    """A folder's own ``index.html`` (not the top one, not an alias): ``/folder`` redirects to ``/folder/``."""
    return entry.alias_of is None and entry.path.endswith("/index.html")


def extensionless_files(entries: Iterable[FileEntry]) -> list[str]:
    """Files whose name has no dot, outside ``.well-known/``: the spa mapping sends their paths to the entry page."""
    return [e.path for e in entries if _is_extensionless(e.path) and not e.path.startswith(".well-known/")]


def clean_url_aliases(entries: Iterable[FileEntry]) -> list[FileEntry]:
    """Static mode: ``a.html`` or an extensionless file ``a`` without ``a/index.html`` gets an alias there.

    The router maps an extensionless ``/a`` to ``/a/index.html`` without knowing the release's
    files; this alias makes that path exist whenever ``a.html`` or a file ``a`` (``LICENSE``,
    ``.well-known/apple-app-site-association``) does, with the file's own headers.
    """
    by_path = {e.path: e for e in entries}
    aliases = []
    for path, e in by_path.items():
        if _is_extensionless(path):
            if f"{path}/index.html" not in by_path:
                aliases.append(FileEntry(f"{path}/index.html", e.sha256, e.size, e.content_type, e.cache_control, path))
            continue
        if not path.endswith(".html") or path.endswith("index.html") or path.rsplit("/", 1)[-1] == "404.html":
            continue
        target = path[: -len(".html")] + "/index.html"
        if target not in by_path:
            aliases.append(FileEntry(target, e.sha256, e.size, e.content_type, e.cache_control, alias_of=path))
    return aliases


def manifest_json(manifest: Manifest) -> str:
    return json.dumps(manifest.to_json(), separators=(",", ":"))
