"""Object storage behind the release engine: the protocol, and the local backend (a bucket as files)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hosting_toolkit.errors import BackendError


@dataclass(frozen=True)
class StoredObject:
    """An object as read back for serving: its bytes and the headers S3 would return."""

    body: bytes
    content_type: str
    cache_control: str | None
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)


class ObjectStore(Protocol):
    """What the engine needs from a bucket; the AWS and local backends implement it alike."""

    def put_file(
        self, key: str, source: Path, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None: ...

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> bool:
        """Write ``data``; with ``if_absent``, write only if no object has the key and say whether it did."""
        ...

    def copy(
        self, source_key: str, key: str, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def get_object(self, key: str) -> StoredObject | None: ...

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Every ``(key, size)`` under ``prefix``, paginated underneath."""
        ...

    def list_folders(self, prefix: str) -> Iterator[str]:
        """The immediate sub-folder names under ``prefix``."""
        ...

    def delete(self, keys: Iterable[str]) -> int: ...

    @property
    def description(self) -> str: ...


def _safe_key(key: str) -> str:
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")) or "\\" in key:
        raise BackendError(f"refusing unsafe object key {key!r}")
    return key


#: Appended to the file of a key whose last segment has no dot: S3 holds ``LICENSE`` and
#: ``LICENSE/index.html`` side by side, a file system cannot. Release paths never hold a ``%``.
_EXTENSIONLESS_MARK = "%"


def _object_file(key: str) -> str:
    return key + _EXTENSIONLESS_MARK if "." not in key.rsplit("/", 1)[-1] else key


def _object_key(file: str) -> str:
    return file[: -len(_EXTENSIONLESS_MARK)] if file.endswith(_EXTENSIONLESS_MARK) else file


class LocalObjectStore:
    """A bucket kept as files: ``<root>/objects/<key>`` and its headers in ``<root>/headers/<key>.json``.

    Every write lands through a temporary file and a rename, so a reader never sees half a file.
    A key whose last segment has no dot is kept as ``<key>%``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._headers = root / "headers"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._headers.mkdir(parents=True, exist_ok=True)

    @property
    def description(self) -> str:
        return f"local bucket {self.root}"

    def _paths(self, key: str) -> tuple[Path, Path]:
        _safe_key(key)
        return self._objects / _object_file(key), self._headers / f"{key}.json"

    def _write_headers(self, path: Path, headers: dict[str, object]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._atomic_write(path, json.dumps(headers).encode())

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(
        self, key: str, source: Path, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None:
        obj, head = self._paths(key)
        self._write_headers(head, {"content_type": content_type, "cache_control": cache_control, "metadata": metadata})
        obj.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=obj.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, obj)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> bool:
        obj, head = self._paths(key)
        if if_absent and obj.exists():
            return False
        headers: dict[str, object] = {
            "content_type": content_type,
            "cache_control": cache_control,
            "metadata": metadata or {},
        }
        if not if_absent:
            self._write_headers(head, headers)
            self._atomic_write(obj, data)
            return True
        obj.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=obj.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            try:
                os.link(tmp, obj)
            except FileExistsError:
                return False
            self._write_headers(head, headers)
            return True
        finally:
            Path(tmp).unlink(missing_ok=True)

    def copy(
        self, source_key: str, key: str, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None:
        src, _ = self._paths(source_key)
        if not src.exists():
            raise BackendError(f"cannot copy {source_key}: no such object")
        self.put_file(key, src, content_type=content_type, cache_control=cache_control, metadata=metadata)

    def get(self, key: str) -> bytes | None:
        obj, _ = self._paths(key)
        try:
            return obj.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def get_object(self, key: str) -> StoredObject | None:
        try:
            obj, head = self._paths(key)
        except BackendError:
            return None
        body = self.get(key)
        if body is None:
            return None
        try:
            headers = json.loads(head.read_text())
        except (OSError, ValueError):
            headers = {"content_type": "application/octet-stream", "cache_control": None, "metadata": {}}
        stat = obj.stat()
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        return StoredObject(
            body, headers["content_type"], headers.get("cache_control"), etag, headers.get("metadata") or {}
        )

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        base = self._objects
        start = base / prefix if prefix.endswith("/") else (base / prefix).parent
        if not start.is_dir():
            return
        for folder, dirs, names in os.walk(start):
            dirs.sort()
            for name in sorted(names):
                if name.startswith(".tmp-"):
                    continue
                full = Path(folder) / name
                key = _object_key(full.relative_to(base).as_posix())
                if key.startswith(prefix):
                    yield key, full.stat().st_size

    def list_folders(self, prefix: str) -> Iterator[str]:
        start = self._objects / prefix
        if start.is_dir():
            yield from sorted(p.name for p in start.iterdir() if p.is_dir())

    def delete(self, keys: Iterable[str]) -> int:
        count = 0
        for key in keys:
            obj, head = self._paths(key)
            try:
                obj.unlink()
                count += 1
            except FileNotFoundError:
                pass
            head.unlink(missing_ok=True)
            for path, top in ((obj.parent, self._objects), (head.parent, self._headers)):
                while path != top:
                    try:
                        path.rmdir()
                    except OSError:
                        break
                    path = path.parent
        return count
