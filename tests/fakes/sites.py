"""Build folders and ZIP files shaped like the output of real front-end builds."""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from hosting_toolkit.release.content import IMMUTABLE, REVALIDATE

HTML = "text/html; charset=utf-8"
JS = "text/javascript; charset=utf-8"

#: A small site with every kind of file a modern build emits, and the headers each must get.
SAMPLE_SITE: dict[str, tuple[bytes, str, str]] = {
    "index.html": (b"<!doctype html><title>home</title>", HTML, REVALIDATE),
    "about/index.html": (b"<!doctype html><title>about</title>", HTML, REVALIDATE),
    "blog/first-post.html": (b"<!doctype html><title>post</title>", HTML, REVALIDATE),
    "404.html": (b"<!doctype html><title>not found</title>", HTML, REVALIDATE),
    "assets/index-BdW3x1Yz.js": (b"console.log('app')", JS, IMMUTABLE),
    "assets/index-BdW3x1Yz.js.map": (b'{"version":3,"sources":[]}', "application/json", IMMUTABLE),
    "assets/index-4f3a9c1e.css": (b"body{margin:0}", "text/css; charset=utf-8", IMMUTABLE),
    "assets/worker-Cq7vR2kP.mjs": (b"export default 1", JS, IMMUTABLE),
    "assets/engine-9f8e7d6c.wasm": (b"\0asm\x01\0\0\0", "application/wasm", IMMUTABLE),
    "assets/hero-Ab12Cd34.avif": (b"\0\0\0\x1cftypavif", "image/avif", IMMUTABLE),
    "assets/inter-latin-Xy98Zw76.woff2": (b"wOF2\0\1\0\0", "font/woff2", IMMUTABLE),
    "static/js/main.3f9a1c2b.js": (b"console.log('cra')", JS, IMMUTABLE),
    "manifest.webmanifest": (b'{"name":"site"}', "application/manifest+json", REVALIDATE),
    "favicon.ico": (b"\0\0\1\0", "image/vnd.microsoft.icon", REVALIDATE),
    "robots.txt": (b"User-agent: *\n", "text/plain; charset=utf-8", REVALIDATE),
    "sw.js": (b"self.addEventListener('fetch', () => {})", JS, REVALIDATE),
}


def write_files(root: Path, files: Mapping[str, bytes | str]) -> Path:
    """Write ``files`` (relative path -> content) below ``root`` and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def sample_site(root: Path, *, marker: str = "") -> Path:
    """The sample site; a ``marker`` changes the home page only (a different release)."""
    files: dict[str, bytes | str] = {rel: body for rel, (body, _, _) in SAMPLE_SITE.items()}
    if marker:
        files["index.html"] = f"<!doctype html><title>home {marker}</title>"
    return write_files(root, files)


def numbered_site(root: Path, count: int, *, marker: str = "", size: int = 16) -> Path:
    """``index.html`` and ``count - 1`` tiny hashed assets; ``marker`` changes the home page only."""
    files: dict[str, bytes | str] = {"index.html": f"<!doctype html><title>home {marker}</title>"}
    for n in range(1, count):
        files[f"assets/chunk-{n:05d}-a{n:07d}.js"] = f"/*{n}*/".ljust(size, " ")
    return write_files(root, files)


def build_zip(
    path: Path, entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]], *, compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    """A ZIP file holding ``entries`` exactly as given (duplicate names included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with zipfile.ZipFile(path, "w", compression=compression) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return path


def zip_folder(path: Path, folder: Path, *, prefix: str = "") -> Path:
    """A ZIP file of every file below ``folder``, each name prefixed with ``prefix``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return build_zip(path, [(prefix + p.relative_to(folder).as_posix(), p.read_bytes()) for p in files])
