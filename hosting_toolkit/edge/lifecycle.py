"""The router function's lifecycle: test cases run in the local sandbox, or staged in CloudFront's DEVELOPMENT stage.

A case is one JSON file (``functions/tests/*.json``): the viewer-request event exactly as CloudFront
passes it to the function (the same bytes go to CloudFront's TestFunction), the KeyValueStore
contents it runs with, optional site settings (``mode``, ``entry``) the router is rendered with,
and the expected result in TestFunction's output shape, ``{"request": {...}}`` or
``{"response": {...}}``. The expectation is a subset: objects list only the fields that matter,
other values must be equal, and ``null`` means the field must be absent. A response ``body``
compares as text, whether given as a string or as ``{"data": ..., "encoding": ...}``.

``--remote`` stages the code rendered from the configuration in the deployed function's DEVELOPMENT
stage (DescribeFunction for the ETag, UpdateFunction with ``IfMatch``) and runs every case's event
through TestFunction. TestFunction reads the function's own KeyValueStore, not a case's, so each
remote result is compared with the sandbox's result for the same event and code with the deployed
store's current values: a mismatch means CloudFront's runtime and the sandbox disagree. Only
``deploy`` publishes to LIVE, so the live function always runs the code CloudFormation holds.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from hosting_toolkit.config import SITE_MODES, HostingConfig, SiteMode
from hosting_toolkit.contract import ROUTING_KEY
from hosting_toolkit.edge.code import FUNCTIONS_DIR, render_router
from hosting_toolkit.edge.events import is_response
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.errors import BackendError, InvalidInputError, VerificationError

#: Where the router's cases live.
CASES_DIR = FUNCTIONS_DIR / "tests"
#: The stage ``--remote`` writes and tests; LIVE changes only through ``deploy``.
DEVELOPMENT = "DEVELOPMENT"
LIVE = "LIVE"
#: TestFunction takes an event object of at most this many bytes.
MAX_EVENT_BYTES = 40960
#: The event type the router runs on.
ROUTER_EVENT_TYPE = "viewer-request"

_CASE_KEYS = ("description", "site", "kvs", "event", "expect")
_SITE_KEYS = ("mode", "entry")
_REQUEST_FIELDS = ("method", "uri", "querystring", "headers", "cookies")


class FunctionTestFailure(VerificationError):
    """A function test case failed, in the sandbox or on CloudFront."""


@dataclass(frozen=True)
class FunctionCase:
    """One test case of the router: an event, the store it runs with, and the expected output."""

    name: str
    description: str
    event: dict[str, Any]
    expect: dict[str, Any]
    kvs: dict[str, str] = field(default_factory=dict)
    site: dict[str, str] = field(default_factory=dict)

    @property
    def event_bytes(self) -> bytes:
        """The event as sent to TestFunction."""
        return json.dumps(self.event, separators=(",", ":")).encode()


@dataclass(frozen=True)
class CaseResult:
    """What one case gave: its output in TestFunction's shape, and how it differs from what was expected."""

    name: str
    description: str
    output: dict[str, Any] | None
    mismatches: tuple[str, ...] = ()
    error: str | None = None
    duration_us: float | None = None
    compute_utilization: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.mismatches

    @property
    def summary(self) -> str:
        """What the function did, in a few words: the rewritten URI, or the response status."""
        if self.output is None:
            return "no output"
        if "response" in self.output:
            return f"response {self.output['response'].get('statusCode')}"
        return f"request {self.output.get('request', {}).get('uri')}"

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.name,
            "description": self.description,
            "ok": self.ok,
            "summary": self.summary,
            "mismatches": list(self.mismatches),
            "error": self.error,
            "duration_us": self.duration_us,
            "compute_utilization": self.compute_utilization,
            "output": self.output,
        }


# -- loading cases --------------------------------------------------------------------------------


def _kvs_value(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return None


def _check_event(problems: list[str], where: str, event: Any) -> None:
    if not isinstance(event, dict):
        problems.append(f"{where}: 'event' must be a CloudFront event object")
        return
    context = event.get("context")
    if event.get("version") != "1.0":
        problems.append(f'{where}: event.version must be "1.0"')
    if not isinstance(context, dict) or context.get("eventType") != ROUTER_EVENT_TYPE:
        problems.append(f'{where}: event.context.eventType must be "{ROUTER_EVENT_TYPE}" (the router\'s event)')
    if not isinstance(event.get("viewer"), dict) or not isinstance(event["viewer"].get("ip"), str):
        problems.append(f"{where}: event.viewer.ip must be the viewer's address")
    request = event.get("request")
    if not isinstance(request, dict):
        problems.append(f"{where}: event.request must be an object")
        return
    for name in ("method", "uri"):
        if not isinstance(request.get(name), str):
            problems.append(f"{where}: event.request.{name} must be a string")
    for name in ("querystring", "headers", "cookies"):
        fields = request.get(name)
        if not isinstance(fields, dict) or not all(
            isinstance(entry, dict) and isinstance(entry.get("value"), str) for entry in fields.values()
        ):
            problems.append(f'{where}: event.request.{name} must map names to {{"value": "..."}}')
    if len(json.dumps(event, separators=(",", ":")).encode()) > MAX_EVENT_BYTES:
        problems.append(f"{where}: the event is over TestFunction's limit of {MAX_EVENT_BYTES} bytes")


def _check_expect(problems: list[str], where: str, expect: Any) -> None:
    if not isinstance(expect, dict) or len(expect) != 1 or next(iter(expect)) not in ("request", "response"):
        problems.append(f'{where}: \'expect\' must be {{"request": {{...}}}} or {{"response": {{...}}}}')
    elif not isinstance(next(iter(expect.values())), dict):
        problems.append(f"{where}: expect.{next(iter(expect))} must be an object")


def _parse_case(problems: list[str], path: Path) -> FunctionCase | None:
    where = path.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problems.append(f"{where}: not readable JSON ({exc})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{where}: a case is a JSON object with {', '.join(_CASE_KEYS)}")
        return None
    count = len(problems)
    for key in data:
        if key not in _CASE_KEYS:
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(_CASE_KEYS)})")
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{where}: 'description' must be a string")
    site = data.get("site", {})
    if not isinstance(site, dict) or any(k not in _SITE_KEYS or not isinstance(v, str) for k, v in site.items()):
        problems.append(f"{where}: 'site' may set only {' and '.join(_SITE_KEYS)}, as strings")
    elif site.get("mode", "spa") not in SITE_MODES:
        problems.append(f"{where}: site.mode must be one of {', '.join(SITE_MODES)}")
    raw_kvs = data.get("kvs", {})
    kvs: dict[str, str] = {}
    if not isinstance(raw_kvs, dict):
        problems.append(f"{where}: 'kvs' must map keys to values (strings, or JSON stored compact)")
    else:
        for key, value in raw_kvs.items():
            text = _kvs_value(value)
            if text is None:
                problems.append(f"{where}: kvs.{key} must be a string or a JSON object or list")
            else:
                kvs[key] = text
    _check_event(problems, where, data.get("event"))
    _check_expect(problems, where, data.get("expect"))
    if len(problems) > count:
        return None
    return FunctionCase(
        name=path.stem, description=description, event=data["event"], expect=data["expect"], kvs=kvs, site=site
    )


def load_cases(folder: Path, names: Sequence[str] = ()) -> list[FunctionCase]:
    """The cases in ``folder`` (every ``*.json``, by name), or only those named; every problem is reported at once."""
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: no such folder of function test cases")
    paths = sorted(folder.glob("*.json"))
    if names:
        known = {p.stem: p for p in paths}
        missing = [n for n in names if n not in known]
        if missing:
            raise InvalidInputError(f"no case named {', '.join(missing)} in {folder}")
        paths = [known[n] for n in names]
    if not paths:
        raise InvalidInputError(f"{folder}: no function test cases (*.json)")
    problems: list[str] = []
    cases = [case for path in paths if (case := _parse_case(problems, path)) is not None]
    if problems:
        raise InvalidInputError(
            f"{folder}: {len(problems)} problems in the cases:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return cases


# -- comparing outputs -----------------------------------------------------------------------------


def _body_text(body: Any) -> Any:
    if isinstance(body, Mapping) and "data" in body:
        data = str(body.get("data", ""))
        if body.get("encoding") == "base64":
            return base64.b64decode(data).decode("utf-8", "replace")
        return data
    return body


def mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """How ``actual`` differs from ``expected``: objects are compared as subsets, ``None`` means absent."""
    where = path or "output"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{where}: expected an object, got {json.dumps(actual)}"]
        found: list[str] = []
        for key, want in expected.items():
            key_path = f"{path}.{key}" if path else str(key)
            if want is None:
                if key in actual:
                    found.append(f"{key_path}: expected absent, got {json.dumps(actual[key])}")
            elif key not in actual:
                found.append(f"{key_path}: missing (expected {json.dumps(want)})")
            elif key == "body" and path.endswith("response"):
                if _body_text(want) != _body_text(actual[key]):
                    found.append(
                        f"{key_path}: expected {json.dumps(_body_text(want))}, got {json.dumps(_body_text(actual[key]))}"
                    )
            else:
                found.extend(mismatches(want, actual[key], key_path))
        return found
    if expected != actual:
        return [f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)}"]
    return []


def function_output(result: Mapping[str, Any]) -> dict[str, Any]:
    """A function's return value in TestFunction's output shape: ``{"request": ...}`` or ``{"response": ...}``."""
    return {"response" if is_response(result) else "request": dict(result)}


# -- the sandbox -----------------------------------------------------------------------------------


def _site_config(config: HostingConfig, case: FunctionCase) -> HostingConfig:
    if not case.site:
        return config
    mode = cast(SiteMode, case.site.get("mode", config.site.mode))
    return replace(config, site=replace(config.site, mode=mode, entry=case.site.get("entry", config.site.entry)))


class LocalRunner:
    """Runs cases in the sandbox with the router rendered for each case's site settings."""

    def __init__(self, sandbox: FunctionSandbox, config: HostingConfig) -> None:
        self.sandbox = sandbox
        self.config = config
        self._loaded: dict[str, str] = {}

    def load(self, config: HostingConfig) -> str:
        """Load the router rendered for ``config`` (once per distinct code); the name it is loaded under."""
        code = render_router(config)
        for name, loaded in self._loaded.items():
            if loaded == code:
                return name
        name = f"router-{len(self._loaded)}"
        self.sandbox.load(name, code)
        self._loaded[name] = code
        return name

    def output(
        self, name: str, case: FunctionCase, kvs: Mapping[str, str]
    ) -> tuple[dict[str, Any] | None, str | None, float]:
        """The output of the function loaded as ``name`` for the case's event, its error, and its duration (µs)."""
        invocation = self.sandbox.invoke(name, case.event, kvs)
        if not invocation.ok or invocation.result is None:
            return None, invocation.error or "the handler returned nothing", invocation.duration_us
        return function_output(invocation.result), None, invocation.duration_us

    def run(self, case: FunctionCase) -> CaseResult:
        """Run one case with its own store and site settings and compare with its expectation."""
        name = self.load(_site_config(self.config, case))
        output, error, duration = self.output(name, case, case.kvs)
        found = tuple(mismatches(case.expect, output)) if output is not None else ()
        return CaseResult(case.name, case.description, output, found, error, duration)


def run_local(cases: Sequence[FunctionCase], config: HostingConfig, sandbox: FunctionSandbox) -> list[CaseResult]:
    """Run every case in the sandbox."""
    runner = LocalRunner(sandbox, config)
    return [runner.run(case) for case in cases]


# -- CloudFront --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteReport:
    """What ``--remote`` did: the function, the ETag it staged, the case results and whether LIVE runs the same code."""

    function_name: str
    etag: str
    results: list[CaseResult]
    live_matches: bool | None
    store: dict[str, str]


class CloudFrontFunction:
    """One deployed CloudFront Function, through the CloudFront control-plane API."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def _call(self, what: str, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(self.client, method)(Name=self.name, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise BackendError(f"{what} of the function {self.name} failed: {exc}") from exc
        return answer

    def stage(self, code: str) -> str:
        """Write ``code`` to the DEVELOPMENT stage, keeping its configuration; the new ETag."""
        described = self._call("DescribeFunction", "describe_function", Stage=DEVELOPMENT)
        current = described["FunctionSummary"]["FunctionConfig"]
        function_config: dict[str, Any] = {"Comment": current.get("Comment", ""), "Runtime": current["Runtime"]}
        # Without its store association the staged code could not read the routing state.
        if current.get("KeyValueStoreAssociations"):
            function_config["KeyValueStoreAssociations"] = current["KeyValueStoreAssociations"]
        updated = self._call(
            "UpdateFunction",
            "update_function",
            IfMatch=described["ETag"],
            FunctionConfig=function_config,
            FunctionCode=code.encode(),
        )
        return str(updated["ETag"])

    def test(self, etag: str, event: bytes) -> dict[str, Any]:
        """TestFunction on the DEVELOPMENT stage: the ``TestResult``."""
        answer = self._call("TestFunction", "test_function", IfMatch=etag, Stage=DEVELOPMENT, EventObject=event)
        result: dict[str, Any] = answer["TestResult"]
        return result

    def live_code(self) -> str | None:
        """The code the LIVE stage runs, or ``None`` if it cannot be read."""
        try:
            body = self.client.get_function(Name=self.name, Stage=LIVE)["FunctionCode"]
        except (BotoCoreError, ClientError):
            return None
        data = body.read() if hasattr(body, "read") else body
        return data.decode() if isinstance(data, bytes) else str(data)


def _utilization(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def remote_result(case: FunctionCase, test_result: Mapping[str, Any], expected: dict[str, Any] | None) -> CaseResult:
    """One case's TestFunction result compared with the sandbox's output ``expected`` for the same event and store."""
    utilization = _utilization(test_result.get("ComputeUtilization"))
    error = test_result.get("FunctionErrorMessage") or None
    if error:
        return CaseResult(case.name, case.description, None, error=str(error), compute_utilization=utilization)
    try:
        output = json.loads(str(test_result.get("FunctionOutput") or ""))
    except ValueError:
        output = None
    if not isinstance(output, dict) or not ({"request", "response"} & output.keys()):
        return CaseResult(
            case.name,
            case.description,
            None,
            error=f"TestFunction returned no event object: {test_result.get('FunctionOutput')!r}",
            compute_utilization=utilization,
        )
    found = mismatches(expected, output) if expected is not None else ["the sandbox gave no output to compare with"]
    return CaseResult(case.name, case.description, output, tuple(found), compute_utilization=utilization)


def store_keys(cases: Sequence[FunctionCase]) -> list[str]:
    """The KeyValueStore keys the cases name, and the routing key: what the remote run reads from the deployed store."""
    keys = {ROUTING_KEY}
    for case in cases:
        keys.update(case.kvs)
    return sorted(keys)


def run_remote(
    cases: Sequence[FunctionCase],
    config: HostingConfig,
    *,
    function: CloudFrontFunction,
    store: Mapping[str, str],
    sandbox: FunctionSandbox,
) -> RemoteReport:
    """Stage the router rendered from ``config`` in DEVELOPMENT and run every case through TestFunction.

    ``store`` holds the deployed KeyValueStore's values of ``store_keys(cases)``: the sandbox runs
    each event with them to get the output CloudFront must give.
    """
    code = render_router(config)
    runner = LocalRunner(sandbox, config)
    name = runner.load(config)
    etag = function.stage(code)
    results = []
    for case in cases:
        expected, _, _ = runner.output(name, case, store)
        results.append(remote_result(case, function.test(etag, case.event_bytes), expected))
    live = function.live_code()
    return RemoteReport(function.name, etag, results, None if live is None else live == code, dict(store))
