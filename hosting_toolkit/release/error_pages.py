"""Error pages: the live release's not-found and server-error pages, at the fixed keys CloudFront fetches.

CloudFront fetches a custom error response's page by a fixed path and runs no viewer-request
function for that fetch, so the router cannot send it into a release's folder. After every switch
of the live release, the engine therefore copies that release's pages to ``errors/`` (a built-in
page when the release has none). The copies are revalidated on every use (``no-cache``): CloudFront
keeps serving the cached body while its ETag holds, and a switch shows the new page within the
error-caching time of the distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.contract import NOT_FOUND_PAGE_KEY, RELEASE_METADATA_KEY, SERVER_ERROR_PAGE_KEY, release_prefix
from hosting_toolkit.release.storage import ObjectStore

#: Cache-Control of the published pages: cached, but revalidated by ETag on every use.
ERROR_PAGE_CACHE_CONTROL = "no-cache"
HTML_TYPE = "text/html; charset=utf-8"


def _page(title: str, message: str) -> bytes:
    # No inline style or script, so any Content-Security-Policy of the site lets it render.
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body><h1>{title}</h1><p>{message}</p>"
        '<p><a href="/">Go to the home page</a></p></body></html>\n'
    ).encode()


#: The pages a release without its own gets.
BUILT_IN_PAGES = {
    NOT_FOUND_PAGE_KEY: _page("Page not found", "There is nothing at this address."),
    SERVER_ERROR_PAGE_KEY: _page(
        "Something went wrong", "The site could not answer just now. Please try again in a moment."
    ),
}


@dataclass(frozen=True)
class PublishedPage:
    """One published error page: its key, and the release file it came from (``None``: the built-in page)."""

    key: str
    source: str | None


def page_sources(config: HostingConfig) -> dict[str, str]:
    """The release file each error page is copied from ('' for the built-in page).

    In ``spa`` mode a missing path gets the entry page, so the app's client-side router can answer it.
    """
    not_found = config.site.entry if config.site.mode == "spa" else config.errors.not_found
    return {NOT_FOUND_PAGE_KEY: not_found, SERVER_ERROR_PAGE_KEY: config.errors.server_error}


def publish_error_pages(store: ObjectStore, config: HostingConfig, release_id: str) -> tuple[PublishedPage, ...]:
    """Write the error pages of ``release_id`` to their fixed keys; writing them again changes nothing."""
    published = []
    metadata = {RELEASE_METADATA_KEY: release_id}
    for key, path in page_sources(config).items():
        page = store.get_object(release_prefix(release_id) + path) if path else None
        if page is None:
            body, content_type, source = BUILT_IN_PAGES[key], HTML_TYPE, None
        else:
            body, content_type, source = page.body, page.content_type, path
        store.put_bytes(key, body, content_type=content_type, cache_control=ERROR_PAGE_CACHE_CONTROL, metadata=metadata)
        published.append(PublishedPage(key, source))
    return tuple(published)


def place_built_in_pages(store: ObjectStore) -> tuple[str, ...]:
    """Put the built-in pages at the fixed keys where no page is yet: what stands before anything is
    live, so that no custom error response of the distribution can fall back to an S3 error document.

    Each page is a conditional write (``If-None-Match: *``), never a read first: a role that may only
    write ``errors/*`` cannot tell a missing page from a refusal by reading (a missing key answers 403
    without a list grant), and a page a switch published meanwhile is never overwritten. Returns the
    keys placed now.
    """
    placed = []
    for key, body in BUILT_IN_PAGES.items():
        if store.put_bytes(key, body, content_type=HTML_TYPE, cache_control=ERROR_PAGE_CACHE_CONTROL, if_absent=True):
            placed.append(key)
    return tuple(placed)
