"""``hosting-toolkit check``: verify, once after the first deploy, what the design assumes of AWS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hosting_toolkit.cli.output import emit_json, err
from hosting_toolkit.cli.session import session_of
from hosting_toolkit.contract import OUTPUT_BUCKET_NAME, OUTPUT_DISTRIBUTION_ID, OUTPUT_KVS_ARN
from hosting_toolkit.errors import BackendError, InvalidInputError, VerificationError
from hosting_toolkit.release.checks import FAIL, KVS_WAIT_SECONDS, PASS, CheckError, CheckReport, SiteChecks
from hosting_toolkit.release.kvs import kvs_client
from hosting_toolkit.target import stack_outputs


class ChecksFailed(VerificationError):
    """At least one check of ``check`` failed."""


def aws_session() -> Any:
    """A boto3 session with the usual AWS settings."""
    import boto3

    return boto3.Session()


#: Where ``check`` gets its AWS clients (tests replace it).
session_factory: Callable[[], Any] = aws_session

_MARKS = {PASS: "[green]pass[/]", FAIL: "[bold red]fail[/]"}


def _clients(aws: Any) -> Callable[[str], Any]:
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = kvs_client(session=aws) if service == "cloudfront-keyvaluestore" else aws.client(service)
        return made[service]

    return client


def _table(report: CheckReport) -> Table:
    table = Table(header_style="bold", show_lines=True)
    table.add_column("check")
    table.add_column("result")
    table.add_column("measured")
    table.add_column("what to do")
    for result in report.results:
        mark = _MARKS.get(result.status, "[yellow]skip[/]")
        table.add_row(escape(result.name), mark, escape(result.detail), escape(result.fix))
    return table


def check(
    ctx: typer.Context,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Address to request \\[default: the distribution's own https://<id>.cloudfront.net name].",
        ),
    ] = None,
    kvs_wait: Annotated[
        float,
        typer.Option("--kvs-wait", min=1.0, help="Seconds the KeyValueStore check waits for its write to read back."),
    ] = KVS_WAIT_SECONDS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Verify, on the deployed stack, the AWS behaviours the design depends on; exit 7 if one fails.

    Run it once after the first deploy. It requests the site, reads missing check- keys, simulates
    the pipeline roles' policies, runs the viewer-response function through TestFunction and times
    a KeyValueStore write. What it writes (a check- key, the DEVELOPMENT stage of the viewer-response
    function when its code differs) it puts back, also when a check fails.
    """
    session = session_of(ctx)
    if session.local is not None:
        raise InvalidInputError("check verifies the deployed stack in AWS; leave out --local")
    config = session.config
    aws = session_factory()
    outputs = stack_outputs(config.stack_name, session=aws)
    needed = (OUTPUT_BUCKET_NAME, OUTPUT_KVS_ARN, OUTPUT_DISTRIBUTION_ID)
    missing = [key for key in needed if key not in outputs]
    if missing:
        raise BackendError(f"stack {config.stack_name} has no output {', '.join(missing)}; redeploy it")
    distribution_id = outputs[OUTPUT_DISTRIBUTION_ID]
    checks = SiteChecks(
        config=config,
        clients=_clients(aws),
        base_url=base_url,
        bucket=outputs[OUTPUT_BUCKET_NAME],
        kvs_arn=outputs[OUTPUT_KVS_ARN],
        distribution_id=distribution_id,
        stack_name=config.stack_name,
        kvs_wait_seconds=kvs_wait,
    )
    report = checks.run()
    try:
        where = checks.base_url
    except CheckError:
        where = "(unknown: the distribution could not be read)"
    if as_json:
        emit_json({"stack": config.stack_name, "base_url": where, **report.to_json()})
    else:
        err.print(f"checked {config.stack_name} at {where}")
        err.print(_table(report))
    if not report.ok:
        names = ", ".join(r.name for r in report.failures)
        raise ChecksFailed(f"{len(report.failures)} of {len(report.results)} checks failed: {names}")
    if not as_json:
        err.print(f"[green]all {len(report.results)} checks passed or were skipped[/]")
