"""ZIP releases: every unsafe or damaged archive is refused before anything is uploaded."""

from __future__ import annotations

import stat
import struct
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from hosting_toolkit.config import HostingConfig, ReleaseConfig
from hosting_toolkit.errors import InvalidInputError
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.storage import LocalObjectStore
from tests.fakes.sites import build_zip, sample_site, zip_folder

INDEX = ("index.html", b"<!doctype html><title>home</title>")
LOCAL_HEADER = b"PK\x03\x04"
CENTRAL_HEADER = b"PK\x01\x02"


def engine_on(tmp_path: Path, **limits: int) -> ReleaseEngine:
    config = HostingConfig(release=ReleaseConfig(concurrency=4, **limits))
    return ReleaseEngine(
        LocalObjectStore(tmp_path / "bucket"), LocalKeyValueStore(tmp_path / "kvs.json"), config, actor="tests"
    )


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Archives unpack under the test's own temporary folder, so leftovers are visible."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def patch_headers(path: Path, *, flag_bits: int | None = None, method: int | None = None) -> Path:
    """Rewrite fields of every local and central file header, as a hostile or broken tool would."""
    data = bytearray(path.read_bytes())
    for signature, flag_offset in ((LOCAL_HEADER, 6), (CENTRAL_HEADER, 8)):
        start = data.find(signature)
        while start != -1:
            if flag_bits is not None:
                (flags,) = struct.unpack_from("<H", data, start + flag_offset)
                struct.pack_into("<H", data, start + flag_offset, flags | flag_bits)
            if method is not None:
                struct.pack_into("<H", data, start + flag_offset + 2, method)
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))
    return path


def data_offset(path: Path, name: str) -> tuple[int, int]:
    """Where the (compressed) bytes of entry ``name`` start in the file, and how many there are."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("passwd.html")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def entries_zip(*entries: tuple[str | zipfile.ZipInfo, bytes]) -> Callable[[Path], Path]:
    return lambda path: build_zip(path, entries)


def encrypted_zip(path: Path) -> Path:
    return patch_headers(build_zip(path, [INDEX]), flag_bits=0x1)


def deflate64_zip(path: Path) -> Path:
    return patch_headers(build_zip(path, [INDEX]), method=9)


def crc_mismatch_zip(path: Path) -> Path:
    build_zip(path, [INDEX, ("big.txt", b"0123456789abcdef" * 1024)], compression=zipfile.ZIP_STORED)
    start, size = data_offset(path, "big.txt")
    data = bytearray(path.read_bytes())
    data[start + size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def broken_deflate_zip(path: Path) -> Path:
    build_zip(path, [INDEX, ("app.js", b"console.log(1);\n" * 4096)])
    start, _ = data_offset(path, "app.js")
    data = bytearray(path.read_bytes())
    data[start] = 0b111  # a final block of the reserved type 3, which no inflater accepts
    path.write_bytes(bytes(data))
    return path


def truncated_zip(path: Path) -> Path:
    build_zip(path, [INDEX, ("app.js", b"x" * 4096)])
    path.write_bytes(path.read_bytes()[:-40])
    return path


def not_a_zip(path: Path) -> Path:
    path.write_bytes(b"<!doctype html> this is not an archive")
    return path


def bomb_zip(path: Path) -> Path:
    return build_zip(path, [INDEX, ("assets/zeros.bin", bytes(50 * 1024 * 1024))])


REFUSED: dict[str, tuple[Callable[[Path], Path], str]] = {
    "absolute-path": (entries_zip(INDEX, ("/etc/cron.d/evil", b"x")), "absolute or Windows path"),
    "windows-drive": (entries_zip(INDEX, ("C:/evil.js", b"x")), "absolute or Windows path"),
    "backslash": (entries_zip(INDEX, ("..\\evil.js", b"x")), "absolute or Windows path"),
    "parent-dir": (entries_zip(INDEX, ("../evil.js", b"x")), "'..' segment"),
    "nested-parent-dir": (entries_zip(INDEX, ("a/../../evil.js", b"x")), "'..' segment"),
    "control-char": (entries_zip(INDEX, ("a\x01.js", b"x")), "control character"),
    "symlink": (entries_zip(INDEX, (symlink_entry(), b"/etc/passwd")), "symbolic link"),
    "encrypted": (encrypted_zip, "encrypted"),
    "duplicate-name": (entries_zip(INDEX, ("a.js", b"1"), ("a.js", b"2")), "appears twice"),
    "only-folders": (entries_zip(("dist/", b""), ("dist/assets/", b"")), "holds no files"),
    "no-entry-page": (entries_zip(("home.html", b"x")), "no index.html"),
    "zip-bomb": (bomb_zip, "zip bomb"),
    "crc-mismatch": (crc_mismatch_zip, "corrupt archive.*CRC"),
    "broken-deflate-stream": (broken_deflate_zip, "corrupt archive"),
    "unsupported-method": (deflate64_zip, "corrupt archive"),
    "truncated": (truncated_zip, "not a readable ZIP"),
    "not-a-zip": (not_a_zip, "not a readable ZIP"),
}


@pytest.mark.parametrize(("build", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_archive_uploads_nothing(
    tmp_path: Path, private_tempdir: Path, build: Callable[[Path], Path], message: str
) -> None:
    engine = engine_on(tmp_path)
    archive = build(tmp_path / "site.zip")

    with pytest.raises(InvalidInputError, match=message):
        engine.create(archive)

    assert list(engine.store.list("")) == []
    assert not (tmp_path / "bucket" / "objects" / "releases").exists()
    assert engine.status().live is None
    assert list(private_tempdir.iterdir()) == []


def test_archive_expanding_past_max_archive_bytes_is_refused(tmp_path: Path) -> None:
    engine = engine_on(tmp_path, max_archive_bytes=4096)
    archive = build_zip(tmp_path / "site.zip", [INDEX, ("a.bin", b"a" * 3000), ("b.bin", b"b" * 3000)])

    with pytest.raises(InvalidInputError, match="expands to more than 4096 bytes"):
        engine.create(archive)

    assert list(engine.store.list("")) == []


def test_archive_with_more_than_max_files_is_refused(tmp_path: Path) -> None:
    engine = engine_on(tmp_path, max_files=3)
    archive = build_zip(tmp_path / "site.zip", [INDEX, *((f"{n}.js", b"x") for n in range(3))])

    with pytest.raises(InvalidInputError, match="more than 3 files"):
        engine.create(archive)

    assert list(engine.store.list("")) == []


def test_small_files_that_compress_well_are_not_taken_for_bombs(tmp_path: Path) -> None:
    engine = engine_on(tmp_path)
    archive = build_zip(tmp_path / "site.zip", [INDEX, ("blank.css", b" " * 60_000)])

    assert engine.create(archive).files == 2


def test_single_top_folder_is_stripped(tmp_path: Path) -> None:
    engine = engine_on(tmp_path)
    archive = zip_folder(tmp_path / "site.zip", sample_site(tmp_path / "site"), prefix="dist/")

    result = engine.create(archive)

    paths = {e.path for e in engine.manifest(result.id)}
    assert "index.html" in paths
    assert not any(p.startswith("dist/") for p in paths)
    assert result.id == engine.create(tmp_path / "site").id


def test_top_folder_is_kept_when_the_entry_page_is_at_the_root(tmp_path: Path) -> None:
    engine = engine_on(tmp_path)
    archive = build_zip(tmp_path / "site.zip", [INDEX, ("docs/index.html", b"docs")])

    result = engine.create(archive)

    assert {e.path for e in engine.manifest(result.id)} == {"index.html", "docs/index.html"}


def test_changed_zip_under_the_same_name_gets_a_new_id(tmp_path: Path) -> None:
    engine = engine_on(tmp_path)
    archive = tmp_path / "site.zip"
    first = engine.create(zip_folder(archive, sample_site(tmp_path / "v1")))
    same = engine.create(zip_folder(archive, sample_site(tmp_path / "v1-again")))

    second = engine.create(zip_folder(archive, sample_site(tmp_path / "v2", marker="v2")))

    assert same.id == first.id and same.already_existed
    assert second.id != first.id
    assert engine.status().live == second.id
    record = engine.record(second.id)
    assert record is not None and record.source == "site.zip"
