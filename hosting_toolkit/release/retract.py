"""Take a release's viewers away from it, whatever share it has: what a failed rollout undoes."""

from __future__ import annotations

from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.routing import RoutingChange


def retract(engine: ReleaseEngine, release_id: str) -> RoutingChange | None:
    """Send ``release_id``'s viewers back: a canary is aborted, a live release rolled back to the one before.

    Returns ``None`` when the release has no traffic (it never got any, or something else replaced
    it meanwhile): nothing is written then, so a retract can safely be repeated.
    """
    state = engine.status()
    if state.canary == release_id:
        return engine.abort()
    if state.live == release_id:
        return engine.rollback()
    return None
