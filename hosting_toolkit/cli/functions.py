"""The ``function`` commands: test the router function in the local sandbox, or staged on CloudFront."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from hosting_toolkit.cli.output import emit_json, err
from hosting_toolkit.cli.session import Session, session_of
from hosting_toolkit.contract import OUTPUT_KVS_ARN, OUTPUT_ROUTER_FUNCTION_NAME
from hosting_toolkit.edge.lifecycle import (
    CASES_DIR,
    CaseResult,
    CloudFrontFunction,
    FunctionCase,
    FunctionTestFailure,
    RemoteReport,
    load_cases,
    run_local,
    run_remote,
    store_keys,
)
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.errors import BackendError, InvalidInputError
from hosting_toolkit.release.kvs import AwsKeyValueStore, kvs_client
from hosting_toolkit.target import stack_outputs


def aws_session() -> Any:
    """A boto3 session with the usual AWS settings."""
    import boto3

    return boto3.Session()


#: Where ``--remote`` gets its AWS clients (tests replace it).
session_factory: Callable[[], Any] = aws_session

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Test the router function: in the local sandbox, or staged in its DEVELOPMENT stage on CloudFront.",
)


def _line(result: CaseResult, *, remote: bool) -> str:
    mark = "[green]ok  [/]" if result.ok else "[bold red]FAIL[/]"
    if remote:
        cost = f"compute {result.compute_utilization}%" if result.compute_utilization is not None else "compute ?"
    else:
        cost = f"{result.duration_us:.0f} µs" if result.duration_us is not None else ""
    return f"{mark} {escape(f'{result.name:<34}')} {escape(f'{result.summary:<52}')} {cost}"


def _report(results: list[CaseResult], *, remote: bool) -> None:
    for result in results:
        err.print(_line(result, remote=remote), highlight=False)
        if result.description and not result.ok:
            err.print(f"       {escape(result.description)}", highlight=False)
        if result.error:
            err.print(f"       error: {escape(result.error)}", highlight=False)
        for mismatch in result.mismatches:
            err.print(f"       {escape(mismatch)}", highlight=False)


def _failed(results: list[CaseResult], where: str) -> FunctionTestFailure:
    failed = [r.name for r in results if not r.ok]
    return FunctionTestFailure(
        f"{len(failed)} of {len(results)} function test cases failed {where}: {', '.join(failed)}"
    )


def _deployed_function(session: Session, aws: Any) -> tuple[str, str]:
    """The router function's name and the store's ARN, from the deployed stack's outputs."""
    config = session.config
    outputs = stack_outputs(config.stack_name, session=aws)
    missing = [key for key in (OUTPUT_ROUTER_FUNCTION_NAME, OUTPUT_KVS_ARN) if key not in outputs]
    if missing:
        raise BackendError(
            f"stack {config.stack_name} has no output {', '.join(missing)}; deploy it with this version first"
        )
    return outputs[OUTPUT_ROUTER_FUNCTION_NAME], outputs[OUTPUT_KVS_ARN]


def _remote(session: Session, cases: list[FunctionCase], sandbox: FunctionSandbox) -> RemoteReport:
    aws = session_factory()
    name, kvs_arn = _deployed_function(session, aws)
    store = AwsKeyValueStore(kvs_client(session=aws), kvs_arn)
    values = {key: value for key in store_keys(cases) if (value := store.read(key)[0]) is not None}
    client = aws.client("cloudfront")
    return run_remote(cases, session.config, function=CloudFrontFunction(client, name), store=values, sandbox=sandbox)


@app.command("test")
def test(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="CASE", help="Cases to run, by file name without .json (default: every case).", show_default=False
        ),
    ] = None,
    cases_dir: Annotated[
        Path, typer.Option("--cases", help="Folder of the JSON test cases.", metavar="DIR")
    ] = CASES_DIR,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Also stage the code in the deployed function's DEVELOPMENT stage and run the cases through "
            "CloudFront's TestFunction.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Run the router's test cases in the local sandbox; exit 7 if any fails.

    With --remote, the cases must pass locally first; then the current code is staged in the
    DEVELOPMENT stage of the deployed router (its LIVE stage is not touched) and every case's event
    runs through CloudFront's TestFunction, which reads the deployed KeyValueStore: each answer must
    equal the sandbox's for the same event and store. Each case's compute utilization is printed.
    Publishing to LIVE happens only through 'hosting-toolkit deploy', so the live function always
    runs the code CloudFormation holds.
    """
    session = session_of(ctx)
    if remote and session.local is not None:
        raise InvalidInputError("--remote tests the deployed function; leave out --local")
    cases = load_cases(cases_dir, names or ())
    with FunctionSandbox() as sandbox:
        results = run_local(cases, session.config, sandbox)
        report = None
        if remote and all(r.ok for r in results):
            report = _remote(session, cases, sandbox)
    if as_json:
        data: dict[str, Any] = {"local": [r.to_json() for r in results]}
        if report is not None:
            data["remote"] = {
                "function": report.function_name,
                "stage": "DEVELOPMENT",
                "etag": report.etag,
                "live_runs_this_code": report.live_matches,
                "results": [r.to_json() for r in report.results],
            }
        emit_json(data)
    else:
        err.print(f"sandbox: {len(cases)} cases from {cases_dir}")
        _report(results, remote=False)
    if not all(r.ok for r in results):
        suffix = "; nothing was staged" if remote else ""
        raise _failed(results, f"in the sandbox{suffix}")
    if report is None:
        return
    if not as_json:
        err.print(f"CloudFront: staged in {report.function_name} (DEVELOPMENT, ETag {report.etag}); TestFunction:")
        _report(report.results, remote=True)
        if report.live_matches is False:
            err.print("LIVE runs other code; 'hosting-toolkit deploy' publishes this code to LIVE")
        elif report.live_matches:
            err.print("LIVE runs this same code")
    if not all(r.ok for r in report.results):
        raise _failed(report.results, "on CloudFront")
