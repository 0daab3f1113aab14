"""Content-Type and Cache-Control of release files."""

from __future__ import annotations

import pytest

from hosting_toolkit.release.content import IMMUTABLE, REVALIDATE, cache_control, content_type, is_content_hashed
from tests.fakes.sites import SAMPLE_SITE


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("docs/Guide.HTM", "text/html; charset=utf-8"),
        ("assets/app.css", "text/css; charset=utf-8"),
        ("assets/app.js", "text/javascript; charset=utf-8"),
        ("assets/worker.mjs", "text/javascript; charset=utf-8"),
        ("assets/legacy.cjs", "text/javascript; charset=utf-8"),
        ("assets/app.js.map", "application/json"),
        ("assets/engine.wasm", "application/wasm"),
        ("manifest.webmanifest", "application/manifest+json"),
        ("img/hero.avif", "image/avif"),
        ("img/hero.webp", "image/webp"),
        ("img/logo.svg", "image/svg+xml"),
        ("favicon.ico", "image/vnd.microsoft.icon"),
        ("fonts/inter.woff2", "font/woff2"),
        ("fonts/inter.woff", "font/woff"),
        ("feed.xml", "application/xml"),
        ("robots.txt", "text/plain; charset=utf-8"),
        ("models/scene.glb", "model/gltf-binary"),
        ("data/archive.7z-part", "application/octet-stream"),
        ("LICENSE", "text/plain; charset=utf-8"),
        ("CNAME", "text/plain; charset=utf-8"),
        (".well-known/apple-app-site-association", "application/json"),
        (".well-known/security.txt", "text/plain; charset=utf-8"),
        ("bin/tool", "application/octet-stream"),
    ],
)
def test_content_type_of_release_paths(path: str, expected: str) -> None:
    assert content_type(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        # Vite / Rollup
        "assets/index-BdW3x1Yz.js",
        "assets/index-4f3a9c1e.css",
        "assets/worker-Cq7vR2kP.mjs",
        "assets/index-BdW3x1Yz.js.map",
        "assets/inter-latin-Xy98Zw76.woff2",
        # Create React App / webpack
        "static/js/main.3f9a1c2b.js",
        "static/js/787.2c4e6a8b.chunk.js",
        "static/css/main.073c9b0a.css",
        "static/media/logo.6ce24c58023cc2f8fd88fe9d219db6c6.svg",
        # Angular (webpack and esbuild builders)
        "main.3a1b2c3d4e5f6a7b.js",
        "styles.ef46db3751d8e999.css",
        "main-7XKZ4JQH.js",
        # Next.js, Astro, SvelteKit, Nuxt: whole folders are content-addressed
        "_next/static/chunks/pages/index.js",
        "_next/static/css/app.css",
        "_astro/Layout.astro_astro_type_style.css",
        "_app/immutable/entry/start.js",
        "_nuxt/entry.js",
        "docs/_next/static/chunks/main.js",
        # any file type with a hash
        "assets/engine-9f8e7d6c.wasm",
        "assets/hero-Ab12Cd34.avif",
        # Vite 7 / Rollup: base64url hashes with '-' or '_', or without a digit.
        "assets/lazy-J_fmwf7Y.js",
        "assets/lazy-sOMslOdl.js",
        "assets/index-B-x9Kd2a.js.map",
        "assets/vendor-react-dOM4xQzA.js",
    ],
)
def test_hashed_asset_names_are_cached_as_immutable(path: str) -> None:
    assert is_content_hashed(path)
    assert cache_control(path) == IMMUTABLE


@pytest.mark.parametrize(
    "path",
    [
        "index.html",
        "app.js",
        "sw.js",
        "service-worker.js",
        "styles.css",
        "favicon.ico",
        "robots.txt",
        "manifest.webmanifest",
        "site.webmanifest",
        "img/logo.png",
        "fonts/Inter-Regular.woff2",
        "vendor/jquery-3.7.1.min.js",
        "photos/IMG_20240131_123456.jpg",
        "favicon-32x32.png",
        "deadbeef.js",
        "0123456789abcdef.js",
        "downloads/report-2024.pdf",
        "og-image-1200x630.png",
        "fonts/roboto-v30-latin-500italic.woff2",
        "docs/report-q3fy2024.pdf",
        "polyfills-ES2015.js",
        "docs/guide-Overview.pdf",
        "img/team-portrait.jpg",
        "downloads/manual-2024-v2.pdf",
    ],
)
def test_plain_names_are_revalidated(path: str) -> None:
    assert not is_content_hashed(path)
    assert cache_control(path) == REVALIDATE


@pytest.mark.parametrize("path", ["page.3f9a1c2b.html", "_next/static/export/index.html", "about/index-BdW3x1Yz.htm"])
def test_html_is_always_revalidated_even_with_a_hash_in_its_name(path: str) -> None:
    assert cache_control(path) == REVALIDATE


def test_sample_site_headers_match_what_the_integration_tests_expect() -> None:
    assert {p: (content_type(p), cache_control(p)) for p in SAMPLE_SITE} == {
        p: (ct, cc) for p, (_, ct, cc) in SAMPLE_SITE.items()
    }
