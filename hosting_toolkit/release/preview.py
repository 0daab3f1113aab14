"""Preview links: any complete release on the site's own address, for holders of the preview token.

The token lives in the key-value store under ``PREVIEW_TOKEN_KEY``, never in the function code;
the router reads it only for requests that ask for a preview.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from hosting_toolkit.contract import (
    PREVIEW_KEY_PREFIX,
    PREVIEW_PARAM,
    PREVIEW_TOKEN_KEY,
    PREVIEW_TOKEN_PARAM,
    PreviewState,
)
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import KeyValueStore
from hosting_toolkit.release.routing import update_key

#: Bytes of randomness in a token (32 URL-safe characters, never a dot).
TOKEN_BYTES = 24


@dataclass(frozen=True)
class PreviewToken:
    """The preview token, and whether this call created or replaced it."""

    value: str
    created: bool


def preview_token(kvs: KeyValueStore, *, rotate: bool = False) -> PreviewToken:
    """The preview token, created on first use; ``rotate`` replaces it, ending every preview link and cookie.

    A named preview keeps a copy of the token in its own key (``PreviewState.token``); a replaced
    token is written into each of them too (listing the store), so the old one opens nothing. A
    token created first needs no copies: keys without one make the router read the token key.
    """
    fresh = secrets.token_urlsafe(TOKEN_BYTES)
    result = update_key(kvs, PREVIEW_TOKEN_KEY, lambda current: fresh if rotate or not current else current)
    assert result.after is not None
    if result.before and result.after != result.before:
        _copy_token(kvs, result.after)
    return PreviewToken(result.after, result.after != result.before)


def _copy_token(kvs: KeyValueStore, token: str) -> None:
    """Write ``token`` into every named preview's key (one conditional write each)."""
    items, _ = kvs.snapshot()
    for key in sorted(k for k in items if k.startswith(PREVIEW_KEY_PREFIX)):

        def change(current: str | None) -> str | None:
            if not current:
                return current
            state = PreviewState.from_json(current)
            return current if state.token == token else replace(state, token=token).to_json()

        update_key(kvs, key, change)


def preview_path(release_id: str, token: str, path: str = "/") -> str:
    """The path and query that open ``release_id`` as a preview (the router redirects it to ``path``)."""
    return f"{path}?{urlencode({PREVIEW_PARAM: release_id, PREVIEW_TOKEN_PARAM: token})}"


def preview_url(base_url: str, release_id: str, token: str) -> str:
    """The preview link of ``release_id`` on the site at ``base_url``."""
    return base_url.rstrip("/") + preview_path(release_id, token)


@dataclass(frozen=True)
class Preview:
    """What ``preview`` prints: the release, its link (or path, without a site address) and the token."""

    id: str
    url: str
    token: str
    token_created: bool


def preview(engine: ReleaseEngine, release_id: str, base_url: str | None, *, rotate: bool = False) -> Preview:
    """The preview link of a complete release; refuses unknown and incomplete ones before touching the token."""
    engine.require_complete(release_id)
    token = preview_token(engine.kvs, rotate=rotate)
    link = preview_url(base_url, release_id, token.value) if base_url else preview_path(release_id, token.value)
    return Preview(release_id, link, token.value, token.created)
