"""The ``hosting-toolkit`` command line: thin commands over the release engine and the local edge."""

from __future__ import annotations

import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from hosting_toolkit import __version__
from hosting_toolkit.cli import functions, previews, project, rollout, rollouts
from hosting_toolkit.cli.check import check
from hosting_toolkit.cli.output import emit_json, emit_line, err, render_table
from hosting_toolkit.cli.session import Session, session_of
from hosting_toolkit.contract import RoutingState, is_release_id
from hosting_toolkit.errors import InvalidInputError, ToolkitError
from hosting_toolkit.release.routing import RoutingChange

#: Exit code of an interrupted command (128 + SIGINT), as shells report it.
INTERRUPTED = 130


class ToolkitGroup(TyperGroup):
    """Turns every ``ToolkitError`` into one line on stderr and its exit code, in one place."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ToolkitError as exc:
            err.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from exc
        except KeyboardInterrupt as exc:
            err.print("interrupted: nothing was switched; an unfinished release stays incomplete until re-run")
            raise typer.Exit(INTERRUPTED) from exc


app = typer.Typer(
    name="hosting-toolkit",
    cls=ToolkitGroup,
    no_args_is_help=True,
    # Help text is shown as written: Rich markup would swallow "[verify]", "[source]" and the like.
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Versioned, atomic releases of a static site on CloudFront, S3 and a KeyValueStore.",
)


def _version(value: bool) -> None:
    if value:
        emit_line(f"hosting-toolkit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", envvar="HOSTING_TOOLKIT_CONFIG", help="Configuration file [default: ./hosting.toml]."
        ),
    ] = None,
    local: Annotated[
        Path | None,
        typer.Option(
            "--local",
            envvar="HOSTING_TOOLKIT_LOCAL",
            help="Work on a local target in DIR (bucket as files, KVS as a file) instead of the deployed stack.",
            metavar="DIR",
        ),
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option(
            "--bucket",
            envvar="HOSTING_TOOLKIT_BUCKET",
            help="Site bucket. With --kvs-arn: skip the stack lookup. With --local: keep objects in this S3 "
            "bucket, at the endpoint of the usual AWS settings.",
        ),
    ] = None,
    kvs_arn: Annotated[
        str | None,
        typer.Option("--kvs-arn", envvar="HOSTING_TOOLKIT_KVS_ARN", help="KeyValueStore ARN, with --bucket."),
    ] = None,
    site_url: Annotated[
        str | None,
        typer.Option(
            "--site-url",
            envvar="HOSTING_TOOLKIT_SITE_URL",
            help="Site address: shown after a release, requested by verify and previews.",
        ),
    ] = None,
    preview_build: Annotated[
        bool,
        typer.Option(
            "--preview-build",
            envvar="HOSTING_TOOLKIT_PREVIEW",
            help="Run as a preview build: write preview keys only, never the production routing state.",
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Versioned, atomic releases of a static site on CloudFront, S3 and a KeyValueStore."""
    ctx.obj = Session(config, local, bucket, kvs_arn, site_url, preview_only=preview_build)


def _state_json(state: RoutingState) -> dict[str, Any]:
    return {"live": state.live, "canary": state.canary, "weight": state.weight, "pins": list(state.pins)}


def _report_switch(
    change: RoutingChange, verb: str, as_json: bool, *, session: Session | None = None, no_wait: bool = True
) -> None:
    edge = None
    if session is not None and change.before != change.after:
        edge = rollouts.confirm_switch(session, change.after, no_wait=no_wait)
    if as_json:
        emit_json(
            {
                "before": _state_json(change.before),
                "after": _state_json(change.after),
                "attempts": change.attempts,
                "edge": rollouts.edge_json(edge),
            }
        )
        return
    if change.before == change.after:
        err.print(f"{change.after.live} is already live; nothing changed")
    else:
        err.print(f"{verb} [bold]{change.after.live}[/] (was {change.before.live or 'nothing'})")
    rollouts.report_edge(edge)
    emit_line(change.after.live or "")


@app.command()
def release(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Build output folder or ZIP file.", show_default=False)],
    release_id: Annotated[
        str | None, typer.Option("--id", help="Release id [default: derived from the content].")
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="A note kept with the release.")] = "",
    revision: Annotated[
        str, typer.Option("--revision", help="Source revision kept with the release (e.g. the git commit).")
    ] = "",
    no_activate: Annotated[bool, typer.Option("--no-activate", help="Upload only; do not switch traffic.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Upload a build folder or ZIP as a new immutable release and (by default) make it live."""
    session = session_of(ctx)
    engine = session.engine()
    result = engine.create(path, release_id=release_id, message=message, revision=revision, activate=not no_activate)
    if as_json:
        data = asdict(result)
        emit_json(
            {
                "id": data["id"],
                "files": data["files"],
                "bytes": data["bytes"],
                "uploaded_files": data["uploaded_files"],
                "uploaded_bytes": data["uploaded_bytes"],
                "copied_files": data["copied_files"],
                "resumed_files": data["resumed_files"],
                "already_existed": data["already_existed"],
                "activated": data["activated"],
                "rules": data["rules"],
                "site_url": session.target.site_url,
            }
        )
        return
    err.print(
        f"release [bold]{result.id}[/]: {result.files} files, {result.bytes:,} bytes; "
        f"uploaded {result.uploaded_files} files ({result.uploaded_bytes:,} bytes), "
        f"copied {result.copied_files} unchanged"
    )
    if result.activated:
        where = f" at {session.target.site_url}" if session.target.site_url else ""
        err.print(f"[green]live[/]{where}")
    else:
        err.print(f"staged; make it live with: hosting-toolkit activate {result.id}")
    emit_line(result.id)


@app.command()
def activate(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(metavar="ID", help="A complete release.", show_default=False)],
    no_wait: rollouts.NoWait = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state change as JSON.")] = False,
) -> None:
    """Make a complete release live: one KeyValueStore write, no cache invalidation."""
    session = session_of(ctx)
    change = session.engine(progress=False).activate(release_id)
    _report_switch(change, "live:", as_json, session=session, no_wait=no_wait)


@app.command()
def rollback(
    ctx: typer.Context,
    to: Annotated[
        str | None, typer.Option("--to", metavar="ID", help="Release to return to [default: the previous live one].")
    ] = None,
    from_release: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="ID",
            help="Only if ID has viewers: abort it as a canary, or roll back from it if live; else change nothing.",
        ),
    ] = None,
    no_wait: rollouts.NoWait = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state change as JSON.")] = False,
) -> None:
    """Return traffic to the previous live release (or --to ID): one write, nothing rebuilt."""
    session = session_of(ctx)
    engine = session.engine(progress=False)
    if from_release is None:
        _report_switch(engine.rollback(to), "rolled back to", as_json, session=session, no_wait=no_wait)
        return
    if to is not None:
        raise InvalidInputError("use either --to ID or --from ID")
    if not is_release_id(from_release):
        raise InvalidInputError(f"{from_release!r} is not a valid release id")
    change = engine.retract(from_release)
    if change is None:
        state = engine.status()
        if as_json:
            emit_json({"before": _state_json(state), "after": _state_json(state), "attempts": 0})
            return
        err.print(f"{from_release} has no viewers (live: {state.live or 'nothing'}); nothing changed")
        emit_line(state.live or "")
        return
    if change.before.canary == from_release and change.after.canary is None:
        if as_json:
            emit_json(
                {"before": _state_json(change.before), "after": _state_json(change.after), "attempts": change.attempts}
            )
            return
        err.print(f"canary {from_release} stopped; every viewer gets [bold]{change.after.live}[/]")
        emit_line(change.after.live or "")
        return
    _report_switch(change, "rolled back to", as_json, session=session, no_wait=no_wait)


@app.command()
def prune(
    ctx: typer.Context,
    keep: Annotated[int | None, typer.Option("--keep", help="Newest releases to keep [default: release.keep].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was removed as JSON.")] = False,
) -> None:
    """Delete old releases; live, canary and pinned releases and the newest --keep always stay."""
    result = session_of(ctx).engine().prune(keep)
    if as_json:
        emit_json(asdict(result))
        return
    if result.removed:
        err.print(
            f"removed {len(result.removed)} releases ({result.objects_deleted} objects): {', '.join(result.removed)}"
        )
    else:
        err.print("nothing to remove")


@app.command()
def releases(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List releases, newest first, with their state (live, canary, previous, staged, retired, incomplete)."""
    infos = session_of(ctx).engine(progress=False).list_releases()
    if as_json:
        emit_json([asdict(i) for i in infos])
        return
    if not infos:
        err.print("no releases yet; create one with: hosting-toolkit release BUILD_DIR")
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "state", "created", "files", "bytes", "message"):
        table.add_column(column, justify="right" if column in ("files", "bytes") else "left")
    styles = {"live": "green", "canary": "yellow", "incomplete": "red"}
    for i in infos:
        table.add_row(
            i.id,
            i.state,
            i.created[:19].replace("T", " "),
            str(i.files),
            f"{i.bytes:,}",
            Text(i.message),
            style=styles.get(i.state),
        )
    typer.echo(_render(table))


def _render(table: Table) -> str:
    return render_table(table)


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the routing state as JSON.")] = False,
) -> None:
    """Show what serves traffic (live release, canary and weight, pins) and the pipeline's latest run."""
    session = session_of(ctx)
    state = session.engine(progress=False).status()
    pipeline = project.pipeline_status(session)
    if as_json:
        extra = {"pipeline": pipeline} if pipeline is not None else {}
        emit_json({**_state_json(state), "site_url": session.target.site_url, **extra})
        return
    lines = [f"live:    {state.live or '(nothing live yet)'}"]
    if state.canary:
        lines.append(f"canary:  {state.canary} at {state.weight}%")
    lines.append(f"pins:    {', '.join(state.pins) if state.pins else '-'}")
    if session.target.site_url:
        lines.append(f"url:     {session.target.site_url}")
    lines += project.pipeline_lines(pipeline)
    typer.echo("\n".join(lines))


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on (0 picks a free one).")] = 8080,
) -> None:
    """Serve the local target through the real router code, as CloudFront would."""
    from hosting_toolkit.edge.sandbox import FunctionSandbox
    from hosting_toolkit.local.edge import LocalEdge
    from hosting_toolkit.local.server import make_server, print_log
    from hosting_toolkit.release.kvs import LocalKeyValueStore

    session = session_of(ctx)
    if session.local is None:
        raise InvalidInputError("serve works on a local target: add --local DIR (or set HOSTING_TOOLKIT_LOCAL)")
    target = session.target
    if not isinstance(target.kvs, LocalKeyValueStore):
        raise InvalidInputError("serve needs a local key-value store")
    with FunctionSandbox() as sandbox:
        edge = LocalEdge(store=target.store, kvs=target.kvs, config=session.config, sandbox=sandbox)
        try:
            server = make_server(edge, host, port, log=print_log)
        except OSError as exc:
            raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        url = f"http://{host}:{server.server_address[1]}/"
        err.print(f"serving {target.description}")
        err.print(f"open [bold]{url}[/]  (Ctrl-C stops)")
        emit_line(url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            err.print("stopped")
        finally:
            server.server_close()


@app.command()
def demo(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its builds and local target.")] = Path(
        ".demo"
    ),
    port: Annotated[int, typer.Option("--port", "-p", help="Port of the local edge (0 picks a free one).")] = 8080,
    stay: Annotated[
        bool | None,
        typer.Option("--serve/--no-serve", help="Keep serving at the end until Ctrl-C [default: on a terminal]."),
    ] = None,
) -> None:
    """Release, serve, switch, roll back, preview and canary an example site locally: no AWS needed."""
    from hosting_toolkit.local.demo import run_demo

    session = session_of(ctx)
    keep_serving = sys.stdin.isatty() if stay is None else stay

    def wait(url: str) -> None:
        if not keep_serving:
            return
        err.print(f"\nopen [bold]{url}[/] (the second release) and {url}about; Ctrl-C stops")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            err.print("stopped")

    ids = run_demo(folder, session.config, port=port, say=lambda line: err.print(line, highlight=False), wait=wait)
    err.print(
        f"\ndone. Try it yourself:\n"
        f"  hosting-toolkit --local {folder / 'target'} serve\n"
        f"  hosting-toolkit --local {folder / 'target'} releases\n"
        f"  hosting-toolkit --local {folder / 'target'} rollback"
    )
    emit_line(ids[-1])


app.command()(rollout.preview)
app.command()(rollout.verify)
app.command()(rollout.canary)
app.command()(project.init)
app.command()(project.deploy)
app.command()(project.destroy)
app.command()(rollouts.history)
app.add_typer(functions.app, name="function")
app.add_typer(rollouts.app, name="rollout")
app.add_typer(previews.app, name="previews")
app.command(name="promote-preview")(previews.promote_preview)
app.command()(check)


def main() -> None:
    """Console entry point."""
    sys.exit(app(standalone_mode=True) or 0)
