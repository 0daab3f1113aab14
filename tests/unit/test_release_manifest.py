"""Scanning a build folder into a release manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hosting_toolkit.errors import InvalidInputError
from hosting_toolkit.release.content import IMMUTABLE, REVALIDATE
from hosting_toolkit.release.manifest import (
    FileEntry,
    Manifest,
    check_release_path,
    extensionless_files,
    is_folder_index,
    manifest_json,
    scan_directory,
)
from tests.fakes.sites import SAMPLE_SITE, sample_site, write_files


def scan(root: Path, *, static: bool = False, max_files: int = 1000) -> Manifest:
    return scan_directory(root, entry="index.html", static_aliases=static, max_files=max_files)


def test_manifest_lists_every_file_sorted_with_hash_size_and_headers(tmp_path: Path) -> None:
    manifest = scan(sample_site(tmp_path / "site"))

    assert [e.path for e in manifest.entries] == sorted(SAMPLE_SITE)
    assert manifest.files == len(SAMPLE_SITE)
    assert manifest.bytes == sum(len(body) for body, _, _ in SAMPLE_SITE.values())
    index = next(e for e in manifest.entries if e.path == "index.html")
    assert index.size == len(SAMPLE_SITE["index.html"][0])
    assert len(index.sha256) == 64
    assert (index.content_type, index.cache_control) == ("text/html; charset=utf-8", REVALIDATE)
    assert manifest.sources["index.html"] == tmp_path / "site" / "index.html"


def test_content_id_is_stable_across_scans_copies_and_mtimes(tmp_path: Path) -> None:
    first = scan(sample_site(tmp_path / "a"))
    copy = sample_site(tmp_path / "b")
    for path in copy.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))

    second = scan(copy)

    assert second.content_id() == first.content_id() == scan(tmp_path / "a").content_id()
    assert len(first.content_id()) == 12


def test_content_id_changes_when_one_byte_or_one_name_changes(tmp_path: Path) -> None:
    site = sample_site(tmp_path / "site")
    original = scan(site).content_id()

    asset = site / "assets" / "index-4f3a9c1e.css"
    asset.write_bytes(asset.read_bytes().replace(b"margin:0", b"margin:1"))
    changed_byte = scan(site).content_id()
    asset.rename(site / "assets" / "index-4f3a9c1f.css")
    renamed = scan(site).content_id()

    assert len({original, changed_byte, renamed}) == 3


def test_content_id_ignores_static_aliases(tmp_path: Path) -> None:
    site = sample_site(tmp_path / "site")

    assert scan(site, static=True).content_hash == scan(site).content_hash


def test_static_aliases_point_pages_at_their_clean_url(tmp_path: Path) -> None:
    site = write_files(
        tmp_path / "site",
        {"index.html": "home", "about.html": "about", "docs/a.html": "a", "docs/a/index.html": "own", "404.html": "x"},
    )

    aliases = {e.path: e.alias_of for e in scan(site, static=True).entries if e.alias_of}

    assert aliases == {"about/index.html": "about.html"}


def test_manifest_json_round_trips_entries() -> None:
    entries = (
        FileEntry("a.js", "0" * 64, 3, "text/javascript; charset=utf-8", IMMUTABLE),
        FileEntry("a/index.html", "1" * 64, 4, "text/html; charset=utf-8", REVALIDATE, alias_of="a.html"),
    )

    rows = json.loads(manifest_json(Manifest(entries, {})))

    assert tuple(FileEntry.from_record(row) for row in rows) == entries


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "the build folder is empty"),
        ({"home.html": "x"}, "no index.html at the top"),
        ({"dist/index.html": "x"}, "no index.html at the top"),
        ({"index.html": "x", "back\\slash.js": "x"}, "backslash or a control character"),
        ({"index.html": "x", "tab\there.js": "x"}, "backslash or a control character"),
        ({"index.html": "x", "bell\x07.js": "x"}, "backslash or a control character"),
        ({"index.html": "x", "caf%C3%A9.html": "x"}, "contains '%'"),
    ],
    ids=["empty", "no-entry", "entry-in-subfolder", "backslash", "tab", "control-char", "percent"],
)
def test_unusable_folders_are_refused(tmp_path: Path, files: dict[str, str], message: str) -> None:
    site = write_files(tmp_path / "site", files)

    with pytest.raises(InvalidInputError, match=message):
        scan(site)


def test_too_many_files_are_refused(tmp_path: Path) -> None:
    site = write_files(tmp_path / "site", {"index.html": "x", "a.js": "1", "b.js": "2"})

    with pytest.raises(InvalidInputError, match="more than 2 files"):
        scan(site, max_files=2)


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a folder"):
        scan(tmp_path / "missing")


def test_symlink_to_a_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    site = write_files(tmp_path / "site", {"index.html": "x"})
    (site / "leak.txt").symlink_to(secret)

    with pytest.raises(InvalidInputError, match="points outside the build folder"):
        scan(site)


def test_symlinked_folder_outside_the_folder_is_refused(tmp_path: Path) -> None:
    site = write_files(tmp_path / "site", {"index.html": "x"})
    (site / "etc").symlink_to(tmp_path)

    with pytest.raises(InvalidInputError, match="points outside the build folder"):
        scan(site)


def test_symlink_to_a_file_inside_the_folder_is_released_as_a_copy(tmp_path: Path) -> None:
    site = write_files(tmp_path / "site", {"index.html": "home"})
    (site / "start.html").symlink_to(site / "index.html")

    entries = {e.path: e for e in scan(site).entries}

    assert entries["start.html"].sha256 == entries["index.html"].sha256


@pytest.mark.parametrize(
    "path", ["", "/abs.js", "a//b.js", "./a.js", "a/../b.js", "..", "a\\b.js", "nul\x00.js", "x" * 901]
)
def test_check_release_path_refuses_unsafe_paths(path: str) -> None:
    assert check_release_path(path) is not None


@pytest.mark.parametrize("path", ["index.html", "a/b/c.js", "_next/static/x.js", "über/straße.html", ".well-known/x"])
def test_check_release_path_accepts_ordinary_paths(path: str) -> None:
    assert check_release_path(path) is None


def test_static_aliases_make_files_without_an_extension_reachable_with_their_own_type(tmp_path: Path) -> None:
    site = write_files(
        tmp_path / "site",
        {
            "index.html": "<h1>home</h1>",
            "LICENSE": "MIT",
            ".well-known/apple-app-site-association": "{}",
            "docs/index.html": "<h1>docs</h1>",
        },
    )
    manifest = scan(site, static=True)
    aliases = {e.path: (e.alias_of, e.content_type) for e in manifest.entries if e.alias_of}
    assert aliases == {
        "LICENSE/index.html": ("LICENSE", "text/plain; charset=utf-8"),
        ".well-known/apple-app-site-association/index.html": (
            ".well-known/apple-app-site-association",
            "application/json",
        ),
    }
    assert [e.path for e in manifest.entries if is_folder_index(e)] == ["docs/index.html"]
    assert extensionless_files(manifest.entries) == ["LICENSE"]
    assert manifest.content_id() == scan(site, static=False).content_id()
