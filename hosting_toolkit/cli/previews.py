"""Branch and pull-request previews: list, stage, open, remove, and promote one through the production rollout."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hosting_toolkit.cli.output import emit_json, emit_line, err, render_table
from hosting_toolkit.cli.session import Session, session_of
from hosting_toolkit.contract import LOCAL_PREVIEW_DOMAIN, SOURCE_ACTION_NAME, PreviewState, signed_preview_token
from hosting_toolkit.errors import BackendError, InvalidInputError, ReleaseConflictError, VerificationError
from hosting_toolkit.pipeline.executions import PullRequestEvent, pull_request_of
from hosting_toolkit.release.preview import preview_token
from hosting_toolkit.release.previews import (
    Preview,
    branch_preview_name,
    branch_previewed,
    open_previews,
    preview_link,
    pull_request_preview_name,
    remove_preview,
    require_open,
    stage_preview,
)

app = typer.Typer(
    help="Branch and pull-request previews (without a command: list the open ones).",
    no_args_is_help=False,
    invoke_without_command=True,
    rich_markup_mode=None,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Branch = Annotated[str | None, typer.Option("--branch", help="The branch previewed (names the preview).")]
PullRequest = Annotated[int | None, typer.Option("--pull-request", "--pr", help="The pull request previewed.")]

LOCAL_SERVE_URL = "http://127.0.0.1:8080"


def _name(name: str | None, branch: str | None, pull_request: int | None) -> tuple[str, str]:
    """The preview's name and what it previews, from exactly one of NAME, --branch and --pull-request."""
    given = [v for v in (name, branch, pull_request) if v is not None]
    if len(given) != 1:
        raise InvalidInputError("name the preview: NAME, --branch BRANCH or --pull-request N (one of them)")
    if pull_request is not None:
        return pull_request_preview_name(pull_request), f"pr:{pull_request}"
    if branch is not None:
        return branch_preview_name(branch), f"branch:{branch}"
    assert name is not None
    return name, ""


def _domain(session: Session) -> str:
    """Where links lead: ``NAME.localhost`` for a local target (served by ``serve``), else the previews' domain."""
    return LOCAL_PREVIEW_DOMAIN if session.local is not None else session.config.previews.domain


def _base(session: Session) -> str | None:
    return session.target.site_url or (LOCAL_SERVE_URL if session.local is not None else None)


def _url(session: Session, preview: Preview, token: str | None = None) -> str:
    return preview_link(preview.name, domain=_domain(session), base_url=_base(session), token=token)


def _json(preview: Preview, url: str) -> dict[str, object]:
    return {
        "name": preview.name,
        "ref": preview.ref,
        "release": preview.release,
        "pins": list(preview.pins),
        "updated": preview.updated,
        "url": url,
    }


def _report_stage(session: Session, name: str, state: PreviewState, as_json: bool) -> None:
    shown = Preview(name, state.ref, state.live, state.at, state.pins)
    url = _url(session, shown)
    if as_json:
        emit_json(_json(shown, url))
        return
    err.print(f"preview [bold]{name}[/] serves {state.live}: {url}")
    emit_line(name)


def _require_enabled(session: Session) -> None:
    if not session.config.previews.enabled:
        raise InvalidInputError("previews are off: add a [previews] table to hosting.toml (see hosting.example.toml)")


@app.callback()
def previews(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List the open previews: name, branch or pull request, release, link and when it last moved."""
    if ctx.invoked_subcommand is not None:
        return
    session = session_of(ctx)
    found = open_previews(session.engine(progress=False).kvs)
    if as_json:
        emit_json([_json(p, _url(session, p)) for p in found])
        return
    if not found:
        err.print("no open previews")
        return
    table = Table("name", "previews", "release", "url", "updated", box=None)
    for p in found:
        table.add_row(p.name, p.ref or "-", p.release, _url(session, p), p.updated.replace("T", " ").rstrip("Z"))
    typer.echo(render_table(table))


@app.command()
def stage(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(metavar="ID", help="A complete release.", show_default=False)],
    name: Annotated[str | None, typer.Option("--name", help="The preview's name (pr-42, branch-x).")] = None,
    branch: Branch = None,
    pull_request: PullRequest = None,
    as_json: AsJson = False,
) -> None:
    """Move a preview to a complete release (creating it): one write of its own key, production untouched."""
    session = session_of(ctx)
    _require_enabled(session)
    preview_name, ref = _name(name, branch, pull_request)
    engine = session.engine(progress=False)
    _report_stage(session, preview_name, stage_preview(engine, preview_name, release_id, ref), as_json)


@app.command()
def build(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Build output folder or ZIP file.", show_default=False)],
    branch: Branch = None,
    pull_request: PullRequest = None,
    commit: Annotated[str, typer.Option("--commit", help="The commit built; its first 12 characters are the id.")] = "",
    closed: Annotated[
        bool, typer.Option("--closed", help="The pull request was closed or merged: remove its preview.")
    ] = False,
    pipeline: Annotated[
        str, typer.Option("--pipeline", help="The preview pipeline whose run this is (with --execution).")
    ] = "",
    execution: Annotated[
        str, typer.Option("--execution", help="Its execution id: a pull-request trigger names the preview.")
    ] = "",
    build_failed: Annotated[
        bool, typer.Option("--build-failed", help="The build failed: only a closed pull request's preview is removed.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """What the preview pipeline's build runs: stage the build as a release and move its preview to it
    (or, for a closed pull request, remove the preview). Production routing is never written."""
    session = session_of(ctx)
    _require_enabled(session)
    if pipeline and execution and pull_request is None:
        event = _pull_request_event(pipeline, execution)
        if event is not None:
            pull_request, closed, branch = event.number, closed or event.closed, None
    preview_name, ref = _name(None, branch, pull_request)
    engine = session.engine()
    if closed:
        removed = remove_preview(engine, preview_name)
        if as_json:
            emit_json({"name": preview_name, "removed": removed is not None})
        else:
            err.print(f"pull request closed: preview [bold]{preview_name}[/] removed")
            emit_line(preview_name)
        return
    if build_failed:
        raise InvalidInputError(f"the build failed, so preview {preview_name} stays where it was")
    previews_config = session.config.previews
    source = session.config.source
    production = getattr(source, "branch", None)
    if branch is not None and not branch_previewed(branch, previews_config.branches, production):
        err.print(f"branch {branch} gets no preview (previews.branches, or it is the production branch)")
        emit_line("")
        return
    if pull_request is not None and not previews_config.pull_requests:
        err.print("pull requests get no preview (previews.pull_requests = false)")
        emit_line("")
        return
    rid = commit[:12] or None
    try:
        result = engine.create(path, release_id=rid, revision=commit, message=f"preview {ref}", activate=False)
        release_id = result.id
    except ReleaseConflictError:
        if rid is None or engine.record(rid) is None:
            raise
        # The commit was released before from other bytes (a build that is not reproducible): preview that release.
        release_id = rid
    _report_stage(session, preview_name, stage_preview(engine, preview_name, release_id, ref), as_json)


def _pull_request_event(pipeline: str, execution: str) -> PullRequestEvent | None:
    """The pull request that started the preview pipeline's run ``execution``, or ``None`` (a push)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from hosting_toolkit.cli.project import session_factory

    try:
        run = (
            session_factory()
            .client("codepipeline")
            .get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution)
        )
    except (BotoCoreError, ClientError) as exc:
        raise BackendError(f"reading the trigger of {pipeline} run {execution} failed: {exc}") from exc
    return pull_request_of(run.get("pipelineExecution", {}).get("trigger") or {})


@app.command()
def remove(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="The preview.", show_default=False)] = None,
    branch: Branch = None,
    pull_request: PullRequest = None,
    as_json: AsJson = False,
) -> None:
    """Remove a preview: its key is deleted, and prune retires the releases only it reached."""
    session = session_of(ctx)
    preview_name, _ = _name(name, branch, pull_request)
    removed = remove_preview(session.engine(progress=False), preview_name)
    if as_json:
        emit_json({"name": preview_name, "removed": removed is not None, "release": removed.live if removed else None})
        return
    if removed is None:
        err.print(f"there is no open preview {preview_name}; nothing changed")
    else:
        err.print(f"preview [bold]{preview_name}[/] removed (it served {removed.live})")
    emit_line(preview_name)


#: The longest a signed preview link may last: a week.
MAX_SIGNED_MINUTES = 7 * 24 * 60


def open_link(session: Session, name: str, as_json: bool, *, expires_minutes: int | None = None) -> None:
    """``preview open NAME``: print a working link to an open preview (with the token when it is private,
    or a signed token that expires after ``expires_minutes``)."""
    _require_enabled(session)
    if expires_minutes is not None and not 1 <= expires_minutes <= MAX_SIGNED_MINUTES:
        raise InvalidInputError(f"--expires must be 1 to {MAX_SIGNED_MINUTES} minutes (a week)")
    engine = session.engine(progress=False)
    shown = require_open(engine, name)
    token = None if session.config.previews.public else preview_token(engine.kvs).value
    expires_at = None
    if token is not None and expires_minutes is not None:
        expires_at = int(time.time()) + expires_minutes * 60
        token = signed_preview_token(name, token, expires_at)
    url = _url(session, shown, token)
    if as_json:
        emit_json({**_json(shown, url), "expires": expires_at})
        return
    err.print(f"preview [bold]{name}[/] ({shown.ref or 'by name'}) serves {shown.release}")
    if expires_at is not None:
        err.print(f"the link stops working in {expires_minutes} minutes")
    if session.local is not None:
        err.print(f"serve the local target while you look: hosting-toolkit --local {session.local} serve")
    emit_line(url)


def start_production_run(client: Any, pipeline: str, revision: str) -> str:
    """Start the production pipeline on ``revision`` (its source action checks out that commit); the execution id."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        run = client.start_pipeline_execution(
            name=pipeline,
            sourceRevisions=[
                {"actionName": SOURCE_ACTION_NAME, "revisionType": "COMMIT_ID", "revisionValue": revision}
            ],
        )
    except (BotoCoreError, ClientError) as exc:
        raise BackendError(f"starting {pipeline} on {revision[:12]} failed: {exc}") from exc
    return str(run["pipelineExecutionId"])


def promote_preview(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="An open preview.", show_default=False)],
    as_json: AsJson = False,
) -> None:
    """Send a preview's release through the production rollout: verify and activate locally; on AWS, a run of
    the production pipeline on the preview's commit (build, verify, approval, rollout)."""
    from hosting_toolkit.cli.rollout import _local_edge
    from hosting_toolkit.release.verify import verify_release

    session = session_of(ctx)
    if session.preview_only:
        raise InvalidInputError("a preview build cannot promote a preview")
    engine = session.engine(progress=False)
    shown = require_open(engine, name)
    record = engine.require_complete(shown.release)
    if session.local is None:
        pipeline = session.target.pipeline_name
        if not pipeline or not record.revision:
            raise InvalidInputError(
                f"preview {name} ({shown.release}) can only reach production through the release pipeline, "
                "which needs the stack's pipeline and the release's commit"
            )
        from hosting_toolkit.cli.project import session_factory

        execution = start_production_run(session_factory().client("codepipeline"), pipeline, record.revision)
        if as_json:
            emit_json({"name": name, "release": shown.release, "pipeline": pipeline, "execution": execution})
            return
        err.print(
            f"the production pipeline {pipeline} runs on {record.revision[:12]} (preview {name}): build, verify, rollout"
        )
        emit_line(execution)
        return
    with _local_edge(session) as url:
        report = verify_release(engine, shown.release, url)
    if not report.ok:
        failed = report.failures
        raise VerificationError(
            f"preview {name} ({shown.release}) failed {len(failed)} of {len(report.results)} checks; "
            f"first: {failed[0].name}: {failed[0].detail}; production is unchanged"
        )
    change = engine.activate(shown.release)
    if as_json:
        emit_json(
            {"name": name, "release": shown.release, "before": asdict(change.before), "after": asdict(change.after)}
        )
        return
    err.print(
        f"preview {name} passed {len(report.results)} checks; live: [bold]{shown.release}[/] (was {change.before.live or 'nothing'})"
    )
    emit_line(shown.release)
