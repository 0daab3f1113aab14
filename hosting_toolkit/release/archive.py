"""Check a ZIP release completely before anything is uploaded, then unpack it safely."""

from __future__ import annotations

import lzma
import shutil
import stat
import zipfile
import zlib
from pathlib import Path

from hosting_toolkit.errors import InvalidInputError
from hosting_toolkit.release.manifest import check_release_path

_COPY_CHUNK = 1024 * 1024
#: Entries smaller than this are not judged by ratio: tiny files compress absurdly well.
_RATIO_FLOOR_BYTES = 64 * 1024


def inspect_archive(path: Path, *, max_bytes: int, max_ratio: int, max_files: int) -> list[zipfile.ZipInfo]:
    """The archive's file entries; raises ``InvalidInputError`` for anything unsafe or corrupt."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInputError(f"{path}: not a readable ZIP archive ({exc})") from exc
    with archive:
        infos = archive.infolist()
        files: list[zipfile.ZipInfo] = []
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            mode = info.external_attr >> 16
            if info.flag_bits & 0x1:
                raise InvalidInputError(f"{path}: entry {name!r} is encrypted")
            if stat.S_ISLNK(mode):
                raise InvalidInputError(f"{path}: entry {name!r} is a symbolic link")
            if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\\" in name:
                raise InvalidInputError(f"{path}: entry {name!r} has an absolute or Windows path")
            if info.is_dir():
                continue
            problem = check_release_path(name)
            if problem:
                raise InvalidInputError(f"{path}: entry {name!r} {problem}")
            if name in seen:
                raise InvalidInputError(f"{path}: entry {name!r} appears twice")
            seen.add(name)
            if info.file_size > _RATIO_FLOOR_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
                raise InvalidInputError(
                    f"{path}: entry {name!r} expands {info.file_size // max(info.compress_size, 1)}x, "
                    f"over release.max_archive_ratio={max_ratio} (zip bomb?)"
                )
            total += info.file_size
            if total > max_bytes:
                raise InvalidInputError(f"{path}: expands to more than {max_bytes} bytes (release.max_archive_bytes)")
            files.append(info)
            if len(files) > max_files:
                raise InvalidInputError(f"{path}: more than {max_files} files (release.max_files)")
        if not files:
            raise InvalidInputError(f"{path}: the archive holds no files")
        return files


def _common_folder(names: list[str], entry: str) -> str:
    """The single top folder that wraps every file (``dist/``), when the entry page is only inside it."""
    if entry in names:
        return ""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names):
        prefix = tops.pop() + "/"
        if prefix + entry in names:
            return prefix
    return ""


def extract_archive(path: Path, dest: Path, *, entry: str, max_bytes: int, max_ratio: int, max_files: int) -> Path:
    """Unpack a checked archive into ``dest`` and return the folder that holds the site.

    Sizes are enforced on the bytes actually written, not only on what the archive declares.
    """
    infos = inspect_archive(path, max_bytes=max_bytes, max_ratio=max_ratio, max_files=max_files)
    strip = _common_folder([i.filename for i in infos], entry)
    written = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in infos:
                rel = info.filename[len(strip) :]
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, target.open("wb") as out:
                    while chunk := src.read(_COPY_CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise InvalidInputError(f"{path}: expands to more than {max_bytes} bytes")
                        out.write(chunk)
    # A damaged compressed stream fails in the decompressor (zlib.error, LZMAError), and an entry
    # in a compression method zipfile lacks (e.g. Deflate64) fails with NotImplementedError.
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError, NotImplementedError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise InvalidInputError(f"{path}: corrupt archive ({exc})") from exc
    return dest
