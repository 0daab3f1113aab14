"""Commands for safe releases: preview a staged release, verify it, and roll it out by canary."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any

import typer

from hosting_toolkit.cli.output import emit_json, emit_line, err
from hosting_toolkit.cli.session import Session, session_of
from hosting_toolkit.contract import PREVIEW_COOKIE_MAX_AGE, RoutingState
from hosting_toolkit.errors import InvalidInputError, VerificationError
from hosting_toolkit.release.preview import preview as make_preview
from hosting_toolkit.release.preview import preview_token
from hosting_toolkit.release.routing import RoutingChange
from hosting_toolkit.release.verify import VerifyReport, verify_release

#: Where ``serve`` listens by default, for links to a local target.
LOCAL_SERVE_URL = "http://127.0.0.1:8080"

ReleaseId = Annotated[str, typer.Argument(metavar="ID", help="A complete release.", show_default=False)]
BaseUrl = Annotated[
    str | None,
    typer.Option("--base-url", metavar="URL", help="Site address [default: the deployed site's, or a local edge]."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def preview(
    ctx: typer.Context,
    release_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[ID | open]", help="A complete release, or 'open' and a preview's name.", show_default=False
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="With 'open': the preview to open.", show_default=False)
    ] = None,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Replace the preview token: every earlier link and cookie stops working.")
    ] = False,
    base_url: BaseUrl = None,
    expires: Annotated[
        int | None,
        typer.Option(
            "--expires", metavar="MINUTES", help="preview open: a signed link that stops working after MINUTES."
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Print a link that shows a complete release on the site's own address to holders of the preview token
    (preview open NAME: a link to a branch or pull-request preview)."""
    session = session_of(ctx)
    if release_id == "open" and name is not None:
        from hosting_toolkit.cli.previews import open_link

        open_link(session, name, as_json, expires_minutes=expires)
        return
    if expires is not None:
        raise InvalidInputError("--expires signs a preview's link: preview open NAME --expires MINUTES")
    if name is not None:
        raise InvalidInputError("give one release to preview (preview ID), or a preview to open (preview open NAME)")
    engine = session.engine(progress=False)
    if release_id is None:
        if not rotate:
            raise InvalidInputError("give the release to preview (preview ID), or --rotate to replace the token")
        preview_token(engine.kvs, rotate=True)
        if as_json:
            emit_json({"rotated": True})
        else:
            err.print("preview token replaced; earlier preview links and cookies no longer work")
        return
    base = base_url or session.target.site_url or (LOCAL_SERVE_URL if session.local is not None else None)
    shown = make_preview(engine, release_id, base, rotate=rotate)
    if as_json:
        emit_json({"id": shown.id, "url": shown.url, "token": shown.token, "token_created": shown.token_created})
        return
    if rotate:
        err.print("preview token replaced; earlier preview links and cookies no longer work")
    elif shown.token_created:
        err.print("created the preview token (kept in the key-value store; replace it with: preview --rotate)")
    minutes = PREVIEW_COOKIE_MAX_AGE // 60
    err.print(f"preview of [bold]{shown.id}[/] for whoever opens this link (a cookie keeps it for {minutes} minutes)")
    if session.local is not None and not base_url:
        err.print(f"serve the local target while you look: hosting-toolkit --local {session.local} serve")
    elif base is None:
        err.print("the site address is unknown, so this is the path; add --base-url URL for a full link")
    emit_line(shown.url)


@contextlib.contextmanager
def _local_edge(session: Session) -> Iterator[str]:
    """A local edge on a free port serving the local target, for as long as the block runs."""
    from hosting_toolkit.edge.sandbox import FunctionSandbox
    from hosting_toolkit.local.edge import LocalEdge
    from hosting_toolkit.local.server import serving
    from hosting_toolkit.release.kvs import LocalKeyValueStore

    target = session.target
    if not isinstance(target.kvs, LocalKeyValueStore):
        raise InvalidInputError("a local edge needs a local key-value store")
    with FunctionSandbox() as sandbox:
        edge = LocalEdge(store=target.store, kvs=target.kvs, config=session.config, sandbox=sandbox)
        with serving(edge) as url:
            yield url


def _print_report(report: VerifyReport) -> None:
    for result in report.results:
        mark = "[green]ok[/]  " if result.ok else "[bold red]FAIL[/]"
        err.print(f"{mark} {result.name}: {result.detail}", highlight=False)


def verify(ctx: typer.Context, release_id: ReleaseId, base_url: BaseUrl = None, as_json: AsJson = False) -> None:
    """Run the [verify] checks of hosting.toml against a complete release through the preview path."""
    session = session_of(ctx)
    engine = session.engine(progress=False)
    engine.require_complete(release_id)
    if base_url:
        report = verify_release(engine, release_id, base_url)
    elif session.local is not None:
        with _local_edge(session) as url:
            report = verify_release(engine, release_id, url)
    elif session.target.site_url:
        report = verify_release(engine, release_id, session.target.site_url)
    else:
        raise InvalidInputError("the site address is unknown: give --base-url URL")
    if as_json:
        emit_json(
            {
                "id": report.release,
                "base_url": report.base_url,
                "ok": report.ok,
                "checks": [asdict(r) for r in report.results],
            }
        )
    else:
        _print_report(report)
    if not report.ok:
        failed = report.failures
        raise VerificationError(
            f"release {release_id} failed {len(failed)} of {len(report.results)} checks; "
            f"first: {failed[0].name}: {failed[0].detail}"
        )
    if not as_json:
        err.print(f"release [bold]{release_id}[/] passed {len(report.results)} checks")
        emit_line(release_id)


def _state_json(state: RoutingState) -> dict[str, Any]:
    # The rules marks are the router's bookkeeping, not part of what a switch reports.
    return {k: v for k, v in asdict(state).items() if k != "rules"}


def _change_json(change: RoutingChange) -> dict[str, Any]:
    return {"before": _state_json(change.before), "after": _state_json(change.after), "attempts": change.attempts}


def canary(
    ctx: typer.Context,
    release_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="The release a share of viewers gets.", show_default=False)
    ] = None,
    percent: Annotated[
        int | None, typer.Option("--percent", "-p", help="Share of viewers, 1-100; raising it keeps them in.")
    ] = None,
    promote: Annotated[bool, typer.Option("--promote", help="Make the canary live for every viewer.")] = False,
    abort: Annotated[bool, typer.Option("--abort", help="Send every viewer back to the live release.")] = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            envvar="HOSTING_TOOLKIT_NO_WAIT",
            help="Do not wait for the edge to serve the new state after a switch.",
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Send a share of viewers to a release by stable cohort (ID --percent N), then --promote or --abort it."""
    from hosting_toolkit.cli.rollouts import confirm_switch, edge_json, report_edge

    session = session_of(ctx)
    engine = session.engine(progress=False)
    if release_id is not None and percent is not None and not (promote or abort):
        change = engine.canary(release_id, percent)
        message = f"canary [bold]{release_id}[/] at {percent}% of viewers; live stays {change.after.live}"
        line = release_id
    elif promote and not (abort or release_id is not None or percent is not None):
        change = engine.promote()
        message = f"live: [bold]{change.after.live}[/] (was {change.before.live}) for every viewer"
        line = change.after.live or ""
    elif abort and not (promote or release_id is not None or percent is not None):
        change = engine.abort()
        if change.before.canary is None:
            message = "there is no canary; nothing changed"
        else:
            message = f"canary {change.before.canary} stopped; every viewer gets [bold]{change.after.live}[/]"
        line = change.after.live or ""
    else:
        raise InvalidInputError("use one of: canary ID --percent N, canary --promote, canary --abort")
    edge = confirm_switch(session, change.after, no_wait=no_wait) if change.before != change.after else None
    if as_json:
        emit_json({**_change_json(change), "edge": edge_json(edge)})
        return
    err.print(message)
    report_edge(edge)
    emit_line(line)
