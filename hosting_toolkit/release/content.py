"""Content-Type and Cache-Control of release files."""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".cjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon",
    ".bmp": "image/bmp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    ".wasm": "application/wasm",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
}
_DEFAULT_TYPE = "application/octet-stream"
#: Well-known files without an extension, by name.
_NAMED_TYPES = {
    "apple-app-site-association": "application/json",
    "apple-developer-merchantid-domain-association": "text/plain; charset=utf-8",
    "license": "text/plain; charset=utf-8",
    "licence": "text/plain; charset=utf-8",
    "cname": "text/plain; charset=utf-8",
    "readme": "text/plain; charset=utf-8",
    "notice": "text/plain; charset=utf-8",
    "authors": "text/plain; charset=utf-8",
    "copying": "text/plain; charset=utf-8",
    "changelog": "text/plain; charset=utf-8",
}

#: Files whose names carry a content hash never change under that name.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Everything else: browsers revalidate every time; the edge keeps it, because the cache key is
#: the release-specific rewritten URI, which never changes content.
REVALIDATE = "public, max-age=0, s-maxage=31536000, must-revalidate"

#: Folders whose files frameworks always name by content hash.
_IMMUTABLE_DIRS = ("_next/static/", "_astro/", "_app/immutable/", "_nuxt/", "_gatsby/")
_HASH_SEPARATORS = ".-_~"
_HASH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")


def content_type(path: str) -> str:
    """MIME type for a release path, with a charset for text."""
    name = PurePosixPath(path).name.lower()
    if name in _NAMED_TYPES:
        return _NAMED_TYPES[name]
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or _DEFAULT_TYPE


def _is_hash(token: str) -> bool:
    """A build tool's hash: hex with digits and letters, or base62 mixing digits with both cases
    (or upper case only). Plain words with numbers (``1200x630``, ``500italic``, ``q3fy2024``) are not."""
    if not 8 <= len(token) <= 64 or not set(token) <= _HASH_CHARS:
        return False
    digits = sum(c.isdigit() for c in token)
    if set(token) <= _HEX:
        return len(token) >= 16 or (digits >= 1 and digits < len(token))
    upper = sum(c.isupper() for c in token)
    lower = sum(c.islower() for c in token)
    if lower == 0:
        return digits >= 2 and upper >= 2
    return digits >= 1 and upper >= 1


def _is_rollup_hash(stem: str) -> bool:
    """Rollup's and Vite's ``[name]-[hash]``: 8 base64url characters that may hold ``-`` and ``_``
    and need not hold a digit (``lazy-J_fmwf7Y``, ``lazy-sOMslOdl``). A capitalised word
    (``-Overview``) is not one."""
    if len(stem) < 10 or stem[-9] != "-":
        return False
    token = stem[-8:]
    if not set(token) <= _HASH_CHARS | {"-", "_"}:
        return False
    upper = sum(c.isupper() for c in token)
    lower = sum(c.islower() for c in token)
    marks = sum(not c.isalpha() for c in token)
    return upper >= 1 and lower >= 1 and (upper >= 2 or marks >= 1 or not token[0].isupper())


def is_content_hashed(path: str) -> bool:
    """Tell whether a file name carries a content hash (``app.3f9a1c2b.js``, ``index-BdW3x1Yz.css``)."""
    if any(path.startswith(d) or f"/{d}" in path for d in _IMMUTABLE_DIRS):
        return True
    name = PurePosixPath(path).name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if _is_rollup_hash(name.split(".", 1)[0]):
        return True
    token = ""
    for char in stem:
        if char in _HASH_SEPARATORS:
            if token and _is_hash(token):
                return True
            token = ""
        else:
            token += char
    return bool(token) and _is_hash(token) and len(token) < len(stem)


def cache_control(path: str) -> str:
    """Cache-Control for a release path: hashed assets immutable, everything else revalidated."""
    if path.lower().endswith((".html", ".htm")):
        return REVALIDATE
    return IMMUTABLE if is_content_hashed(path) else REVALIDATE
