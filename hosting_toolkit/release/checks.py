"""``hosting-toolkit check``: the AWS behaviours the design depends on, verified once against the deployed stack.

Offline tests cannot show these: they are properties of S3, IAM, CloudFront and the KeyValueStore
in the user's own account. Every check runs on its own (one failing or erring does not stop the
others) and says what it measured and, on a failure, what to do. Nothing is left changed: the only
writes are a ``check-`` key in the KeyValueStore and, when the deployed code differs, the
viewer-response function's DEVELOPMENT stage, and both are put back in ``finally`` blocks, also when
a check fails midway. Keys and paths the checks make up start with ``check-`` and a random nonce.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.contract import (
    CHECK_HEADER,
    COHORT_COOKIE,
    ERROR_PAGES_PREFIX,
    META_PREFIX,
    RELEASE_COOKIE,
    RELEASE_HEADER,
    RELEASES_PREFIX,
    ROUTING_KEY,
    RoutingState,
    error_responses,
    release_prefix,
)
from hosting_toolkit.edge.code import render_viewer_response
from hosting_toolkit.edge.events import viewer_request_event, viewer_response_event
from hosting_toolkit.edge.lifecycle import DEVELOPMENT, CloudFrontFunction
from hosting_toolkit.edge.rules import ONE_SEGMENT, REST, parse_pattern
from hosting_toolkit.local.edge import security_headers
from hosting_toolkit.release.manifest import FileEntry
from hosting_toolkit.release.records import manifest_key
from hosting_toolkit.release.verify import Fetch, Fetched, http_fetch

Status = Literal["pass", "fail", "skip"]
PASS: Status = "pass"
FAIL: Status = "fail"
SKIP: Status = "skip"

#: Every key, path and event id a check makes up starts with this.
CHECK_PREFIX = "check-"
#: How long the KeyValueStore check waits for its write to read back.
KVS_WAIT_SECONDS = 60.0
KVS_POLL_SECONDS = 0.25
#: Conditional KeyValueStore writes retried after a conflict (another writer changed the store).
KVS_ATTEMPTS = 5
VIEWER_RESPONSE_EVENT = "viewer-response"
CODEBUILD_PROJECT = "AWS::CodeBuild::Project"
_NOT_FOUND_CODES = ("404", "NoSuchKey", "NotFound")


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, pass/fail/skip, what was measured, and on a failure what to do."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    measured: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix or None,
            "measured": self.measured,
        }


@dataclass(frozen=True)
class CheckReport:
    """Every check of one run."""

    results: tuple[CheckResult, ...]

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        counts = {status: sum(r.status == status for r in self.results) for status in (PASS, FAIL, SKIP)}
        return {"ok": self.ok, "counts": counts, "checks": [r.to_json() for r in self.results]}


def new_nonce() -> str:
    """The random part of every name one run makes up."""
    return secrets.token_hex(6)


class CheckError(Exception):
    """A check could not measure what it looks at; the message says why."""


def matches(pattern: Sequence[str | int], path: str) -> bool:
    """Whether a compiled ``[rules]`` pattern matches ``path`` as the router compares them (segment by segment)."""
    segments = path.split("/")[1:]
    for i, part in enumerate(pattern):
        if part == REST:
            return True
        if i >= len(segments):
            return False
        if part == ONE_SEGMENT:
            if segments[i] == "":
                return False
        elif segments[i] != part:
            return False
    return len(segments) == len(pattern)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _normalized(value: str | None) -> str:
    return "".join((value or "").split()).lower()


class SiteChecks:
    """The checks of one deployed site.

    ``clients`` gives a boto3 client by service name (``s3``, ``cloudfront``, ``cloudfront-keyvaluestore``,
    ``iam``, ``cloudformation``, ``codebuild``); ``fetch`` requests the site (``verify``'s HTTP helper)
    at ``base_url`` (default: the distribution's own domain name).
    """

    def __init__(
        self,
        *,
        config: HostingConfig,
        clients: Callable[[str], Any],
        base_url: str | None,
        bucket: str,
        kvs_arn: str,
        distribution_id: str,
        stack_name: str,
        fetch: Fetch = http_fetch,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        kvs_wait_seconds: float = KVS_WAIT_SECONDS,
        nonce: str | None = None,
    ) -> None:
        self.config = config
        self.clients = clients
        self._base_url = base_url.rstrip("/") if base_url else None
        self.bucket = bucket
        self.kvs_arn = kvs_arn
        self.distribution_id = distribution_id
        self.stack_name = stack_name
        self.fetch_url = fetch
        self.sleep = sleep
        self.clock = clock
        self.kvs_wait_seconds = kvs_wait_seconds
        self.nonce = nonce or new_nonce()
        self._cache: dict[str, Any] = {}

    # -- shared readings (each read once; a failure fails only the checks that need it) -------

    def _once(self, name: str, read: Callable[[], Any]) -> Any:
        if name not in self._cache:
            try:
                self._cache[name] = read()
            except Exception as exc:
                self._cache[name] = CheckError(f"{name}: {exc}")
        value = self._cache[name]
        if isinstance(value, CheckError):
            raise value
        return value

    def routing(self) -> RoutingState:
        def read() -> RoutingState:
            client = self.clients("cloudfront-keyvaluestore")
            try:
                value = client.get_key(KvsARN=self.kvs_arn, Key=ROUTING_KEY)["Value"]
            except client.exceptions.ResourceNotFoundException:
                return RoutingState()
            return RoutingState.from_json(value)

        return self._once("reading the routing state", read)

    def distribution(self) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            answer = self.clients("cloudfront").get_distribution(Id=self.distribution_id)
            return dict(answer["Distribution"])

        return self._once(f"reading distribution {self.distribution_id}", read)

    @property
    def base_url(self) -> str:
        """The address requested: the one given, else the distribution's own name (it answers before DNS exists)."""
        if self._base_url is None:
            self._base_url = f"https://{self.distribution()['DomainName']}"
        return self._base_url

    def get(self, path: str, headers: dict[str, str] | None = None) -> Fetched:
        timeout = float(self.config.verify.timeout_seconds)
        key = f"GET {path} {sorted((headers or {}).items())}"
        if key not in self._cache:
            self._cache[key] = self.fetch_url(self.base_url + path, dict(headers or {}), timeout)
        response: Fetched = self._cache[key]
        if response.error:
            raise CheckError(response.error)
        return response

    @property
    def missing_path(self) -> str:
        """A path no release has; the query differs per run too, though the cache key is the URI only."""
        return f"/{CHECK_PREFIX}{self.nonce}.txt?{CHECK_PREFIX[:-1]}={self.nonce}"

    def _live(self) -> str | None:
        return self.routing().live

    # -- running -----------------------------------------------------------------------------

    def checks(self) -> list[tuple[str, Callable[[], Iterator[CheckResult]]]]:
        return [
            ("404 through CloudFront", self.check_origin_lists),
            ("404 for your credentials", self.check_engine_reads),
            ("404 for the pipeline roles", self.check_pipeline_roles),
            ("viewer-response sees", self.check_viewer_response_reading),
            ("viewer-response on CloudFront", self.check_viewer_response_runtime),
            ("security headers", self.check_security_headers),
            ("header rules", self.check_header_rules),
            ("KeyValueStore write", self.check_kvs_write),
            ("not-found page", self.check_not_found_page),
            ("server-error page", self.check_server_error_page),
            ("nothing-live page", self.check_nothing_live_page),
        ]

    def run(self) -> CheckReport:
        """Every check, each on its own: an error in one is that check's failure, never the run's."""
        results: list[CheckResult] = []
        for name, check in self.checks():
            try:
                results.extend(check())
            except (CheckError, BotoCoreError, ClientError) as exc:
                results.append(CheckResult(name, FAIL, f"could not check: {exc}", _fix_for(exc)))
            except Exception as exc:
                results.append(CheckResult(name, FAIL, f"could not check: {type(exc).__name__}: {exc}"))
        return CheckReport(tuple(results))

    # -- (a) a missing key answers 404, not 403 --------------------------------------------------

    def check_origin_lists(self) -> Iterator[CheckResult]:
        """The bucket policy lets the distribution list the bucket: S3 then answers a missing key with 404."""
        name = "404 through CloudFront"
        policy = json.loads(self.clients("s3").get_bucket_policy(Bucket=self.bucket)["Policy"])
        granted = _grants_list_to_distribution(policy, self.bucket, self.distribution_id)
        detail = [
            f"bucket policy lets distribution {self.distribution_id} list the bucket: {'yes' if granted else 'no'}"
        ]
        ok = granted
        if self._live():
            response = self.get(self.missing_path)
            xml = response.body.lstrip().startswith(b"<?xml") or b"<Error>" in response.body[:200]
            detail.append(
                f"GET {self.missing_path.split('?')[0]} answered {response.status}"
                + (" with an S3 XML error" if xml else " with the error page")
            )
            ok = ok and not xml
        detail.append("the viewer's status cannot show the origin's: CloudFront maps 403 and 404 to the same page")
        yield CheckResult(
            name,
            PASS if ok else FAIL,
            "; ".join(detail),
            ""
            if ok
            else "run 'hosting-toolkit deploy': the origin's Origin Access Control needs READ and LIST "
            "(a bucket-policy statement allowing cloudfront.amazonaws.com s3:ListBucket for this distribution)",
            {"list_granted": granted},
        )

    def check_engine_reads(self) -> Iterator[CheckResult]:
        """HeadObject and GetObject of missing keys under ``errors/`` and ``_meta/`` with the caller's credentials."""
        s3 = self.clients("s3")
        seen: list[str] = []
        denied: list[str] = []
        for key in self._missing_keys():
            for operation in ("head_object", "get_object"):
                try:
                    answer = getattr(s3, operation)(Bucket=self.bucket, Key=key)
                except ClientError as exc:
                    status, code = _http_status(exc), _error_code(exc)
                    seen.append(f"{operation} {key}: {status or code}")
                    if code not in _NOT_FOUND_CODES and status != 404:
                        denied.append(f"{operation} {key}")
                    continue
                body = answer.get("Body")
                if body is not None:
                    body.close()
                raise CheckError(f"s3://{self.bucket}/{key} exists; a check key must not")
        ok = not denied
        yield CheckResult(
            "404 for your credentials",
            PASS if ok else FAIL,
            "; ".join(seen),
            ""
            if ok
            else "let these credentials list the bucket (s3:ListBucket on it): without it S3 answers a "
            "missing key with 403, which the engine cannot tell from a refusal",
            {"answers": seen},
        )

    def _missing_keys(self) -> list[str]:
        return [f"{ERROR_PAGES_PREFIX}{CHECK_PREFIX}{self.nonce}.html", f"{META_PREFIX}{CHECK_PREFIX}{self.nonce}.json"]

    def pipeline_roles(self) -> dict[str, str]:
        """The service role of each CodeBuild project of the stack (the pipeline's build and operator steps)."""
        names: list[str] = []
        paginator = self.clients("cloudformation").get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=self.stack_name):
            names.extend(
                r["PhysicalResourceId"]
                for r in page.get("StackResourceSummaries", [])
                if r.get("ResourceType") == CODEBUILD_PROJECT and r.get("PhysicalResourceId")
            )
        if not names:
            return {}
        projects = self.clients("codebuild").batch_get_projects(names=names)["projects"]
        return {p["name"]: p["serviceRole"] for p in projects if p.get("serviceRole")}

    def check_pipeline_roles(self) -> Iterator[CheckResult]:
        """IAM's policy simulator: each role may read a missing key under ``_meta/`` and list it, as S3 evaluates it.

        ``_meta/`` is what every role reads a missing key of (a record not yet written); no role reads
        ``errors/``, where the engine only writes (conditionally), so it is not probed for the roles.
        """
        roles = self.pipeline_roles()
        if not roles:
            yield CheckResult("404 for the pipeline roles", SKIP, "the stack has no pipeline (no [source])")
            return
        bucket_arn = f"arn:aws:s3:::{self.bucket}"
        keys = [key for key in self._missing_keys() if key.startswith(META_PREFIX)]
        for project, role in sorted(roles.items()):
            lacking = []
            for key in keys:
                if not self._simulated(role, "s3:GetObject", f"{bucket_arn}/{key}", None):
                    lacking.append(f"s3:GetObject on {key}")
                if not self._simulated(role, "s3:ListBucket", bucket_arn, key):
                    lacking.append(f"s3:ListBucket with s3:prefix {key}")
            role_name = role.rsplit("/", 1)[-1]
            ok = not lacking
            yield CheckResult(
                f"404 for the {project} role",
                PASS if ok else FAIL,
                (
                    f"{role_name}: simulated s3:GetObject and s3:ListBucket (s3:prefix = the key, as S3 asks for "
                    f"a missing key) on {', '.join(keys)}: "
                    + ("allowed" if ok else "denied " + ", ".join(lacking) + " (a missing key answers 403)")
                ),
                "" if ok else f"grant {role_name} what is denied (redeploy with a version whose pipeline grants it)",
                {"role": role, "denied": lacking},
            )

    def _simulated(self, role: str, action: str, resource: str, prefix: str | None) -> bool:
        args: dict[str, Any] = {"PolicySourceArn": role, "ActionNames": [action], "ResourceArns": [resource]}
        if prefix is not None:
            args["ContextEntries"] = [
                {"ContextKeyName": "s3:prefix", "ContextKeyValues": [prefix], "ContextKeyType": "string"}
            ]
        results = self.clients("iam").simulate_principal_policy(**args)["EvaluationResults"]
        return bool(results) and all(r.get("EvalDecision") == "allowed" for r in results)

    # -- (b) what the viewer-response function sees of event.request -----------------------------

    def check_viewer_response_reading(self) -> Iterator[CheckResult]:
        """A real request whose ``x-hosting-check`` answer is the URI the viewer-response function was given."""
        name = "viewer-response sees"
        if not self._live():
            yield CheckResult(name, SKIP, "nothing is live: the router answers every path itself (503)")
            return
        response = self.get("/", {CHECK_HEADER: "1"})
        seen = response.headers.get(CHECK_HEADER)
        if seen is None:
            yield CheckResult(
                name,
                FAIL,
                f"GET / answered {response.status} without {CHECK_HEADER}: the deployed viewer-response function "
                "predates this check",
                "run 'hosting-toolkit deploy' to publish the current functions, then check again",
            )
            return
        uri, _, tag = seen.partition(" ")
        reading = "rewritten" if uri.startswith("/" + RELEASES_PREFIX) else "original"
        tagged = tag == "tagged"
        detail = f"the {reading} URI ({uri}); the router's {RELEASE_HEADER} request header " + (
            "reached it" if tagged else "did not reach it"
        )
        yield CheckResult(
            name,
            PASS if tagged else FAIL,
            detail,
            ""
            if tagged
            else "CloudFront passes this function the viewer's request headers, not the router's: header rules and "
            "the x-release of a 304 cannot work; please report this with the output of 'check --json'",
            {"uri": uri, "reading": reading, "router_headers_seen": tagged},
        )

    def viewer_response_name(self) -> str:
        associations = self.distribution()["DistributionConfig"]["DefaultCacheBehavior"]["FunctionAssociations"]
        for item in associations.get("Items") or []:
            if item.get("EventType") == VIEWER_RESPONSE_EVENT:
                return str(item["FunctionARN"]).rsplit("/", 1)[-1]
        raise CheckError(f"distribution {self.distribution_id} has no viewer-response function")

    def check_viewer_response_runtime(self) -> Iterator[CheckResult]:
        """TestFunction in the DEVELOPMENT stage: the same answer under either reading of ``event.request.uri``."""
        name = "viewer-response on CloudFront"
        client = self.clients("cloudfront")
        function = CloudFrontFunction(client, self.viewer_response_name())
        current = client.get_function(Name=function.name, Stage=DEVELOPMENT)
        before = _code(current["FunctionCode"])
        code = render_viewer_response(self.config)
        staged = before != code
        etag = function.stage(code) if staged else str(current["ETag"])
        try:
            differences, utilization = self._test_readings(function, etag)
        finally:
            if staged:
                self._restore(function, before)
        where = "the current code, staged in DEVELOPMENT and put back after" if staged else "the deployed code"
        ok = not differences
        yield CheckResult(
            name,
            PASS if ok else FAIL,
            f"TestFunction ({where}) on a 304 page and a 304 asset with the viewer's and the rewritten URI: "
            + ("the same answers" if ok else "; ".join(differences))
            + (f"; compute utilization up to {max(utilization)}%" if utilization else ""),
            "" if ok else "the viewer-response function depends on which URI it sees: please report this",
            {"function": function.name, "staged": staged, "differences": differences},
        )

    @staticmethod
    def _restore(function: CloudFrontFunction, code: str) -> None:
        try:
            function.stage(code)
        except Exception as exc:
            raise CheckError(
                f"putting the earlier code back in {function.name}'s DEVELOPMENT stage failed ({exc}); it holds "
                "the current code (LIVE is untouched): 'hosting-toolkit deploy' or the console can reset it"
            ) from exc

    def _test_readings(self, function: CloudFrontFunction, etag: str) -> tuple[list[str], list[int]]:
        release = f"{CHECK_PREFIX}{self.nonce}"
        issued = int(time.time()) - 60
        headers = [(RELEASE_HEADER, release), ("cookie", f"{COHORT_COOKIE}=42.{issued}")]
        cases = [("/docs/", "docs/index.html", True), ("/app.js", "app.js", False)]
        differences: list[str] = []
        utilization: list[int] = []
        for path, file, page in cases:
            answers = []
            for uri in (path, "/" + release_prefix(release) + file):
                request = viewer_request_event("GET", uri, headers)["request"]
                event = viewer_response_event(request, 304, [("etag", '"check"')], request_id=release)
                result = function.test(etag, json.dumps(event, separators=(",", ":")).encode())
                if result.get("ComputeUtilization"):
                    utilization.append(int(str(result["ComputeUtilization"])))
                if result.get("FunctionErrorMessage"):
                    differences.append(f"{uri}: {result['FunctionErrorMessage']}")
                    continue
                answers.append(_summary(json.loads(str(result.get("FunctionOutput") or "{}"))))
            expected = {RELEASE_HEADER: release, "cookies": [COHORT_COOKIE, RELEASE_COOKIE] if page else []}
            for uri, answer in zip((path, "/" + release_prefix(release) + file), answers, strict=False):
                if answer != expected:
                    differences.append(f"{uri}: {answer}, expected {expected}")
        return differences, utilization

    # -- (c) security headers and header rules reach responses -----------------------------------

    def check_security_headers(self) -> Iterator[CheckResult]:
        name = "security headers"
        if not self._live():
            yield CheckResult(name, SKIP, "nothing is live: the router's own 503 page answers every path")
            return
        response = self.get("/")
        expected = [*security_headers(self.config.headers)]
        wrong = [
            f"{header}: {response.headers.get(header)!r}, expected {value!r}"
            for header, value in expected
            if _normalized(response.headers.get(header)) != _normalized(value)
        ]
        state = self.routing()
        served = response.headers.get(RELEASE_HEADER)
        if served not in {state.live, state.canary}:
            wrong.append(f"{RELEASE_HEADER}: {served!r}, expected {state.live!r}")
        ok = not wrong and response.status < 400
        names = ", ".join(h for h, _ in expected)
        yield CheckResult(
            name,
            PASS if ok else FAIL,
            f"GET / answered {response.status} with {names} and {RELEASE_HEADER}"
            if ok
            else f"GET / answered {response.status}; " + "; ".join(wrong),
            ""
            if ok
            else "run 'hosting-toolkit deploy' with this hosting.toml: the response headers policy holds "
            "the [headers] it was deployed with",
            {"status": response.status, "wrong": wrong},
        )

    def check_header_rules(self) -> Iterator[CheckResult]:
        name = "header rules"
        rules = self.config.rules.headers
        if not rules:
            yield CheckResult(name, SKIP, "hosting.toml has no [[rules.headers]]")
            return
        live = self._live()
        if not live:
            yield CheckResult(name, SKIP, "nothing is live: no file to request")
            return
        paths = ["/" + entry.path for entry in self._manifest(live)]
        compiled = [parse_pattern(rule.path)[0] for rule in rules]
        for number, rule in enumerate(rules):
            path = next((p for p in paths if matches(compiled[number], p) and _plain(p)), None)
            label = f"header rule {number + 1} ({rule.path})"
            if path is None:
                yield CheckResult(label, SKIP, f"no file of the live release {live} matches {rule.path}")
                continue
            final: dict[str, str] = {}
            for other, pattern in enumerate(compiled):
                if matches(pattern, path):
                    final.update(rules[other].headers)
            # A later matching rule may replace this rule's value of a header.
            expected = {header: final[header] for header, _ in rule.headers}
            response = self.get(path)
            wrong = [
                f"{header}: {response.headers.get(header)!r}, expected {value!r}"
                for header, value in expected.items()
                if response.headers.get(header) != value
            ]
            ok = not wrong and response.status < 400
            yield CheckResult(
                label,
                PASS if ok else FAIL,
                f"GET {path} answered {response.status}"
                + (f" with {', '.join(expected)}" if ok else "; ")
                + "; ".join(wrong),
                ""
                if ok
                else "run 'hosting-toolkit deploy': the deployed functions hold the rules of the hosting.toml "
                "they were synthesized from",
                {"path": path, "wrong": wrong},
            )

    def _manifest(self, release_id: str) -> list[FileEntry]:
        body = self.clients("s3").get_object(Bucket=self.bucket, Key=manifest_key(release_id))["Body"].read()
        return [FileEntry.from_record(row) for row in json.loads(body)]

    # -- (d) KeyValueStore write propagation --------------------------------------------------------

    def check_kvs_write(self) -> Iterator[CheckResult]:
        """Put a ``check-`` key, time until the API reads it back, and delete it (also when anything fails)."""
        client = self.clients("cloudfront-keyvaluestore")
        key = f"{CHECK_PREFIX}{self.nonce}"
        value = json.dumps({"check": self.nonce}, separators=(",", ":"))
        attempted = False
        try:
            started = self.clock()
            attempted = True
            before = self._kvs_put(client, key, value)
            seconds = self._kvs_wait(client, key, value, before, started)
        finally:
            # Also after a failed PutKey: its answer may have been lost after the write.
            if attempted:
                self._kvs_delete(client, key)
        scope = (
            "measured: PutKey until GetKey and DescribeKeyValueStore return the write (the API's read-after-write); "
            "the router reads only the routing and preview-token keys, so a new key's arrival at the edge "
            "locations cannot be seen without changing what viewers see"
        )
        if seconds is None:
            yield CheckResult(
                "KeyValueStore write",
                FAIL,
                f"{key} did not read back within {self.kvs_wait_seconds:.0f} s ({scope}); it was deleted again",
                "look for KeyValueStore errors in the AWS Health Dashboard and run check again",
                {"seconds": None, "measured": "api_read_after_write"},
            )
            return
        yield CheckResult(
            "KeyValueStore write",
            PASS,
            f"{key} read back after {seconds:.2f} s and was deleted again ({scope})",
            measured={"seconds": round(seconds, 3), "measured": "api_read_after_write"},
        )

    def _kvs_etag(self, client: Any) -> str:
        return str(client.describe_key_value_store(KvsARN=self.kvs_arn)["ETag"])

    def _kvs_put(self, client: Any, key: str, value: str) -> str:
        """Write the check key; the store's ETag it was written over."""
        for attempt in range(KVS_ATTEMPTS):
            before = self._kvs_etag(client)
            try:
                client.put_key(KvsARN=self.kvs_arn, Key=key, Value=value, IfMatch=before)
                return before
            except client.exceptions.ConflictException:
                if attempt == KVS_ATTEMPTS - 1:
                    raise
        raise CheckError("unreachable")

    def _kvs_wait(self, client: Any, key: str, value: str, before: str, started: float) -> float | None:
        """Seconds until GetKey returns the value and DescribeKeyValueStore an ETag past ``before``."""
        deadline = started + self.kvs_wait_seconds
        while True:
            try:
                read = client.get_key(KvsARN=self.kvs_arn, Key=key)["Value"]
            except client.exceptions.ResourceNotFoundException:
                read = None
            if read == value and self._kvs_etag(client) != before:
                return self.clock() - started
            if self.clock() + KVS_POLL_SECONDS > deadline:
                return None
            self.sleep(KVS_POLL_SECONDS)

    def _kvs_delete(self, client: Any, key: str) -> None:
        for attempt in range(KVS_ATTEMPTS):
            try:
                client.delete_key(KvsARN=self.kvs_arn, Key=key, IfMatch=self._kvs_etag(client))
                return
            except client.exceptions.ResourceNotFoundException:
                return
            except client.exceptions.ConflictException:
                if attempt < KVS_ATTEMPTS - 1:
                    continue
                raise self._undeleted(key, "the store kept changing") from None
            except (BotoCoreError, ClientError) as exc:
                raise self._undeleted(key, str(exc)) from exc

    def _undeleted(self, key: str, why: str) -> CheckError:
        return CheckError(
            f"the check key {key} could not be deleted ({why}); the router never reads it, delete it with "
            f"'aws cloudfront-keyvaluestore delete-key --kvs-arn {self.kvs_arn} --key {key} --if-match <ETag>'"
        )

    # -- (e) the error pages answer with the right status -------------------------------------------

    def check_not_found_page(self) -> Iterator[CheckResult]:
        name = "not-found page"
        expected_status = self.config.errors.not_found_status(self.config.site.mode)
        configured = {
            int(item["ErrorCode"]): (str(item.get("ResponsePagePath", "")), int(item.get("ResponseCode") or 0))
            for item in self.distribution()["DistributionConfig"]["CustomErrorResponses"].get("Items") or []
        }
        wanted = {status: (f"/{key}", code) for status, (key, code) in error_responses(expected_status).items()}
        drift = [
            f"{status} -> {configured.get(status)}, expected {page}"
            for status, page in wanted.items()
            if configured.get(status) != page
        ]
        if not self._live():
            yield CheckResult(
                name,
                PASS if not drift else FAIL,
                "nothing is live, so no missing path reaches the origin; the distribution's error responses "
                + ("match hosting.toml" if not drift else "differ: " + "; ".join(drift)),
                "" if not drift else "run 'hosting-toolkit deploy' with this hosting.toml",
            )
            return
        response = self.get(self.missing_path)
        content_type = response.headers.get("content-type", "")
        problems = list(drift)
        if response.status != expected_status:
            problems.append(f"status {response.status}, expected {expected_status}")
        if not content_type.startswith("text/html"):
            problems.append(f"content type {content_type!r}, expected text/html")
        ok = not problems
        mode = f"site.mode {self.config.site.mode}" + (
            f", errors.spa_status {self.config.errors.spa_status}" if self.config.site.mode == "spa" else ""
        )
        yield CheckResult(
            name,
            PASS if ok else FAIL,
            f"GET {self.missing_path.split('?')[0]} answered {response.status} {content_type} ({mode})"
            + ("" if ok else ": " + "; ".join(problems)),
            ""
            if ok
            else "run 'hosting-toolkit deploy' with this hosting.toml, then 'hosting-toolkit activate <live id>' to "
            "publish the error pages again",
            {"status": response.status, "expected": expected_status, "problems": problems},
        )

    def check_server_error_page(self) -> Iterator[CheckResult]:
        yield CheckResult(
            "server-error page",
            SKIP,
            "not testable on a live site: it needs an origin failure (500-504); its custom error responses are "
            "compared with hosting.toml by the not-found check",
        )

    def check_nothing_live_page(self) -> Iterator[CheckResult]:
        name = "nothing-live page"
        if self._live():
            yield CheckResult(
                name, SKIP, "not testable while a release is live (the router's test cases cover it offline)"
            )
            return
        response = self.get("/")
        ok = response.status == 503 and response.headers.get("content-type", "").startswith("text/html")
        yield CheckResult(
            name,
            PASS if ok else FAIL,
            f"nothing is live and GET / answered {response.status} {response.headers.get('content-type', '')}",
            "" if ok else "run 'hosting-toolkit deploy' to publish the current router",
        )


def _code(body: Any) -> str:
    data = body.read() if hasattr(body, "read") else body
    return data.decode() if isinstance(data, bytes) else str(data)


def _summary(output: dict[str, Any]) -> dict[str, Any]:
    """What the viewer-response check compares: the release named and the cookies set."""
    response = output.get("response") or {}
    release = (response.get("headers") or {}).get(RELEASE_HEADER, {}).get("value")
    return {RELEASE_HEADER: release, "cookies": sorted((response.get("cookies") or {}).keys())}


def _plain(path: str) -> bool:
    """A path that needs no percent-encoding, so the router compares it exactly as written."""
    return all(c.isalnum() or c in "/-._~" for c in path)


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _grants_list_to_distribution(policy: dict[str, Any], bucket: str, distribution_id: str) -> bool:
    """Whether a bucket policy allows CloudFront's service principal ``s3:ListBucket`` for this distribution."""
    for statement in _listify(policy.get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal") or {}
        services = _listify(principal.get("Service", [])) if isinstance(principal, dict) else []
        actions = _listify(statement.get("Action", []))
        resources = _listify(statement.get("Resource", []))
        if "cloudfront.amazonaws.com" not in services:
            continue
        if not any(a in ("s3:ListBucket", "s3:List*", "s3:*") for a in actions):
            continue
        if f"arn:aws:s3:::{bucket}" not in resources:
            continue
        conditions = json.dumps(statement.get("Condition", {}))
        if f":distribution/{distribution_id}" in conditions:
            return True
    return False


def _fix_for(exc: Exception) -> str:
    if isinstance(exc, ClientError) and _error_code(exc) in ("AccessDenied", "AccessDeniedException"):
        operation = exc.operation_name
        return f"allow the credentials running check to call {operation}"
    return ""
