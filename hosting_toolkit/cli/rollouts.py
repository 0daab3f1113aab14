"""Commands for automated rollouts and the switch history: ``rollout step|undo|stop|status`` and ``history``.

``rollout step`` and ``rollout undo`` are what the pipeline's rollout state machine runs, one per
operator build; a person uses ``rollout status`` and ``rollout stop``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hosting_toolkit.cli.output import emit_json, emit_line, err, render_table
from hosting_toolkit.cli.session import Session, session_of
from hosting_toolkit.contract import RoutingState
from hosting_toolkit.errors import BackendError, InvalidInputError
from hosting_toolkit.release.edge_wait import EDGE_WAIT_SECONDS, EdgeWait, wait_for_edge
from hosting_toolkit.release.rollout import RolloutRecord, Rollouts, minutes_left

app = typer.Typer(
    name="rollout",
    no_args_is_help=True,
    help="Automated rollouts: the pipeline's steps, and their status and stop for a person.",
)

AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
NoWait = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        envvar="HOSTING_TOOLKIT_NO_WAIT",
        help="Do not wait for the edge to serve the new state after a switch.",
    ),
]
RolloutId = Annotated[
    str,
    typer.Option(
        "--rollout", envvar="HOSTING_TOOLKIT_ROLLOUT", metavar="NAME", help="The rollout (its execution name)."
    ),
]


def edge_waiter(session: Session, *, no_wait: bool, timeout: float = EDGE_WAIT_SECONDS) -> Any:
    """A function waiting for the site to serve a routing state, or ``None`` when there is nothing to wait for."""
    site_url = session.target.site_url
    if no_wait or not site_url:
        return None

    def wait(state: RoutingState) -> EdgeWait | None:
        return wait_for_edge(site_url, state, timeout=timeout)

    return wait


def report_edge(edge: EdgeWait | None) -> None:
    if edge is None:
        return
    if edge.ok:
        err.print(escape(edge.describe()))
    else:
        err.print(f"[yellow]warning:[/] {escape(edge.describe())}")


def edge_json(edge: EdgeWait | None) -> dict[str, Any] | None:
    return None if edge is None else asdict(edge)


def confirm_switch(session: Session, state: RoutingState, *, no_wait: bool) -> EdgeWait | None:
    """Wait for the edge to serve ``state`` after a person's switch, and say how long it took."""
    waiter = edge_waiter(session, no_wait=no_wait)
    edge = waiter(state) if waiter is not None else None
    return edge


def _record_json(record: RolloutRecord | None) -> dict[str, Any] | None:
    return None if record is None else asdict(record)


@app.command("step")
def step(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(metavar="ID", help="The release rolled out.", show_default=False)],
    percent: Annotated[int, typer.Option("--percent", "-p", help="Share of viewers after this step, 1-100.")],
    index: Annotated[int, typer.Option("--index", help="The step's place in the rollout, from 0.")],
    rollout_id: RolloutId,
    steps: Annotated[int, typer.Option("--of", help="How many steps the rollout has (for rollout status).")] = 0,
    watch: Annotated[
        int, typer.Option("--watch", help="Minutes the alarms are watched after this step (for rollout status).")
    ] = 0,
    no_wait: NoWait = False,
    as_json: AsJson = False,
) -> None:
    """Run one step of a rollout: give ID its share, unless a person changed the routing since the last step.

    Prints what it did on stdout: shifted, live (nothing was live), unchanged (the release already has
    the share) or stopped (the rollout was stopped, or the routing is no longer what it left).
    """
    session = session_of(ctx)
    engine = session.engine(progress=False)
    result = Rollouts(engine).step(
        rollout_id,
        release_id,
        percent,
        index,
        steps=steps,
        watch_minutes=watch,
        wait=edge_waiter(session, no_wait=no_wait),
    )
    if as_json:
        emit_json(
            {
                "outcome": result.outcome,
                "message": result.message,
                "rollout": _record_json(result.record),
                "edge": edge_json(result.edge),
            }
        )
        return
    err.print(escape(result.message))
    report_edge(result.edge)
    emit_line(result.outcome)


@app.command("undo")
def undo(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(metavar="ID", help="The release rolled out.", show_default=False)],
    rollout_id: RolloutId,
    reason: Annotated[
        str, typer.Option("--reason", envvar="HOSTING_TOOLKIT_REASON", help="Why (kept in the history).")
    ] = "",
    as_json: AsJson = False,
) -> None:
    """Take back the viewers a rollout gave ID, only if the routing is still as the rollout left it."""
    result = Rollouts(session_of(ctx).engine(progress=False)).undo(rollout_id, release_id, reason)
    if as_json:
        emit_json({"outcome": result.outcome, "message": result.message, "rollout": _record_json(result.record)})
        return
    err.print(escape(result.message))
    emit_line(result.outcome)


@app.command("stop")
def stop(
    ctx: typer.Context,
    rollout_id: Annotated[
        str | None, typer.Option("--rollout", metavar="NAME", help="The rollout \\[default: the latest].")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Stop the running rollout: its execution ends, its canary is aborted, and no later step moves a viewer."""
    session = session_of(ctx)
    rollouts = Rollouts(session.engine(progress=False))
    record = rollouts.load(rollout_id) if rollout_id else rollouts.latest()
    stopped_execution = _stop_execution(session, record.id) if record is not None else None
    result = rollouts.stop(rollout_id)
    if as_json:
        emit_json(
            {
                "outcome": result.outcome,
                "message": result.message,
                "execution_stopped": stopped_execution,
                "rollout": _record_json(result.record),
            }
        )
        return
    if stopped_execution:
        err.print(f"stopped the execution {escape(stopped_execution)}")
    err.print(escape(result.message))
    emit_line(result.record.id if result.record else "")


def _stop_execution(session: Session, rollout_id: str) -> str | None:
    """Stop the deployed rollout state machine's execution named ``rollout_id``, when it runs in AWS."""
    arn = session.target.rollout_state_machine_arn if session.local is None else None
    if not arn:
        return None
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    execution = arn.replace(":stateMachine:", ":execution:", 1) + f":{rollout_id}"
    try:
        client = boto3.client("stepfunctions", region_name=arn.split(":")[3])
        described = client.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return None
        client.stop_execution(executionArn=execution, error="RolloutStopped", cause="stopped with: rollout stop")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return None
        raise BackendError(f"could not stop the rollout execution {rollout_id}: {exc}") from exc
    except BotoCoreError as exc:
        raise BackendError(f"could not stop the rollout execution {rollout_id}: {exc}") from exc
    return execution


@app.command("status")
def status(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Show the latest rollout: its release, step, share of viewers, time left in the step and alarms watched."""
    session = session_of(ctx)
    engine = session.engine(progress=False)
    record = Rollouts(engine).latest()
    rollout = session.config.rollout
    alarms = list(rollout.alarms)
    if session.local is None and rollout.error_rate_percent > 0:
        alarms.insert(0, f"{session.config.stack_name}-5xx-error-rate (if the stack is in us-east-1)")
    if record is None:
        if as_json:
            emit_json({"rollout": None, "alarms": alarms})
            return
        err.print("no rollout has run on this site")
        return
    left = minutes_left(record, record.watch_minutes) if record.state == "running" else None
    finished = record.state == "running" and record.step == record.steps - 1 and left == 0
    label = "rolled out" if finished else record.state
    if as_json:
        emit_json(
            {
                "rollout": _record_json(record),
                "status": label,
                "step": record.step + 1,
                "steps": record.steps or None,
                "minutes_left": None if left is None else round(left, 1),
                "alarms": alarms,
            }
        )
        return
    lines = [
        f"rollout: {record.id} ({label})",
        f"release: {record.release}",
        f"step:    {record.step + 1} of {record.steps or '?'}, {record.percent}% of viewers",
    ]
    if left is not None:
        lines.append(f"watch:   {left:.1f} of {record.watch_minutes} minutes left")
    lines.append(f"before:  {record.before.describe()}")
    if record.reason:
        lines.append(f"reason:  {record.reason}")
    lines.append(f"alarms:  {', '.join(alarms) if alarms else '(none)'}")
    typer.echo("\n".join(lines))


def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many switches, newest first.")] = 20,
    as_json: AsJson = False,
) -> None:
    """List the routing switches, newest first: time, actor, action, from -> to, and whether it was automatic."""
    if limit < 1:
        raise InvalidInputError("--limit must be 1 or more")
    entries = session_of(ctx).engine(progress=False).switches(limit)
    if as_json:
        emit_json(
            [
                {
                    "time": e.time,
                    "actor": e.actor,
                    "action": e.action,
                    "from": e.from_release,
                    "to": e.to_release,
                    "automatic": e.automatic,
                    "reason": e.reason,
                    "rollout": e.rollout,
                }
                for e in entries
            ]
        )
        return
    if not entries:
        err.print("no switches yet")
        return
    table = Table(box=None, header_style="bold")
    for column in ("time", "action", "from", "to", "by", "reason"):
        table.add_column(column)
    for e in entries:
        by = f"automatic ({e.rollout})" if e.automatic else e.actor
        table.add_row(
            e.time[:19].replace("T", " "),
            e.action,
            e.from_release or "-",
            e.to_release or "-",
            escape(by),
            escape(e.reason),
            style="yellow" if e.automatic and e.action in ("rollback", "abort") else None,
        )
    typer.echo(render_table(table))
