"""A small IAM policy evaluator over a synthesized template, and a recorder of the AWS calls a process makes.

The evaluator reads a role's identity policies (``AWS::IAM::Policy`` resources attached to it and the role's
inline policies) and the bucket policies' statements that name every principal, with CloudFormation's
``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select`` and ``Fn::Split`` resolved to placeholder
ARNs (or to the names a test gives). It decides as IAM does within one account: an explicit Deny wins, then an
Allow of any policy, else the request is implicitly denied. Actions match case-insensitively with ``*`` and
``?``; resources match case-sensitively with the same wildcards; the condition operators the stack uses are
evaluated against the request's context, and any other operator fails the test rather than being guessed.

The recorder hooks every botocore client a process creates (``before-parameter-build`` and ``after-call``
events) and the CRT's S3 client, and appends one JSON line per call to a log: the service, the operation,
its parameters and the HTTP status. ``iam_requests`` turns a call into the IAM requests S3 or the
KeyValueStore authorizes it by (a CopyObject reads its source and writes its target; a missing key answers
404 only to a caller who may list it, so a read answered 404 also needs ``s3:ListBucket`` on that key).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "stack",
}
#: What the engine's requests carry: HTTPS with TLS 1.3, as botocore sends them to AWS.
REQUEST_CONTEXT: dict[str, Any] = {"aws:SecureTransport": True, "s3:TlsVersion": 1.3}


# -- CloudFormation intrinsics ------------------------------------------------------------------


class Resolver:
    """Resolves intrinsic functions of one template; ``names`` gives physical names (or ARNs) by logical id."""

    def __init__(self, template: dict[str, Any], names: dict[str, str] | None = None) -> None:
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.names = names or {}

    def ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name not in self.resources:
            raise KeyError(f"Ref to {name}, which is not a resource of the template")
        return self.names.get(name, name.lower())

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.resources[name]["Type"]
        if attribute == "Arn" and kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{self.ref(name)}"
        if attribute == "Arn" and name in self.names and self.names[name].startswith("arn:"):
            return self.names[name]
        return f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{name}/{attribute}"

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(name, attribute)
        if key == "Fn::Join":
            separator, parts = arg
            return str(separator).join(str(self(p)) for p in self(parts))
        if key == "Fn::Select":
            index, items = arg
            return self(items)[int(self(index))]
        if key == "Fn::Split":
            separator, text = arg
            return str(self(text)).split(separator)
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))

            def sub(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in extra:
                    return str(extra[name])
                if "." in name:
                    return self.get_att(*name.split(".", 1))
                return self.ref(name)

            return re.sub(r"\$\{([^}!][^}]*)\}", sub, text)
        if key.startswith("Fn::"):
            raise ValueError(f"the evaluator does not resolve {key}")
        return {key: self(arg)}


# -- policies --------------------------------------------------------------------------------


def _pattern(text: str, *, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Request:
    """One IAM authorization: an action on a resource ARN, with the request's condition keys."""

    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)
    #: Why the request is made, when it is not the call itself (shown in reports, not compared).
    note: str = field(default="", compare=False)

    def key(self) -> str:
        return self.context.get("s3:prefix", "")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Statement:
    """One resolved policy statement; ``source`` names the policy and its Sid for reports."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: dict[str, dict[str, Any]]
    source: str
    sid: str = ""
    not_actions: bool = False
    principals: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any], source: str) -> Statement:
        if "NotResource" in raw:
            raise ValueError(f"{source}: NotResource is not evaluated here")
        principals = None
        if "Principal" in raw:
            principal = raw["Principal"]
            principals = (
                ("*",) if principal == "*" else tuple(f"{k}:{v}" for k, vs in principal.items() for v in _listed(vs))
            )
        return cls(
            effect=raw["Effect"],
            actions=tuple(_listed(raw.get("Action", raw.get("NotAction")))),
            resources=tuple(_listed(raw["Resource"])),
            conditions=raw.get("Condition", {}),
            source=source,
            sid=raw.get("Sid", ""),
            not_actions="NotAction" in raw,
            principals=principals,
        )

    def matches_action(self, action: str) -> bool:
        hit = any(_pattern(a, ignore_case=True).match(action) for a in self.actions)
        return hit != self.not_actions

    def matches_resource(self, resource: str) -> bool:
        return any(_pattern(r, ignore_case=False).match(resource) for r in self.resources)

    def matches_conditions(self, context: dict[str, Any]) -> bool:
        return all(
            _condition(op, key, expected, context)
            for op, pairs in self.conditions.items()
            for key, expected in pairs.items()
        )

    def applies(self, request: Request) -> bool:
        if self.principals is not None and "*" not in self.principals and "AWS:*" not in self.principals:
            return False
        context = {**REQUEST_CONTEXT, **request.context}
        return (
            self.matches_action(request.action)
            and self.matches_resource(request.resource)
            and self.matches_conditions(context)
        )


def _condition(operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool:
    values = [str(v) for v in _listed(expected)]
    if key not in context:
        return operator.endswith("IfExists")
    actual = context[key]
    base = operator.removesuffix("IfExists")
    if base == "StringEquals":
        return str(actual) in values
    if base == "StringLike":
        return any(_pattern(v, ignore_case=False).match(str(actual)) for v in values)
    if base == "StringNotLike":
        return not any(_pattern(v, ignore_case=False).match(str(actual)) for v in values)
    if base == "Bool":
        return str(actual).lower() in [v.lower() for v in values]
    if base == "NumericLessThan":
        return any(float(actual) < float(v) for v in values)
    raise ValueError(f"the evaluator does not know the condition operator {operator}")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    allowed_by: tuple[Statement, ...] = ()


@dataclass(frozen=True)
class RolePolicies:
    """What one role may do: its identity statements and the bucket policies' statements for every principal."""

    role: str
    identity: tuple[Statement, ...]
    resource: tuple[Statement, ...]

    def evaluate(self, request: Request) -> Decision:
        denied = [s for s in (*self.identity, *self.resource) if s.effect == "Deny" and s.applies(request)]
        if denied:
            return Decision(False, f"explicit deny by {denied[0].source}")
        allowed = tuple(s for s in (*self.identity, *self.resource) if s.effect == "Allow" and s.applies(request))
        if allowed:
            return Decision(True, "allowed", allowed)
        return Decision(False, "implicit deny")


def role_policies(template: dict[str, Any], role: str, resolve: Resolver) -> RolePolicies:
    """The resolved statements that decide the requests of the role with logical id ``role``."""
    resources = template["Resources"]
    identity: list[Statement] = []
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in properties.get("Roles", []):
            for raw in resolve(properties["PolicyDocument"]["Statement"]):
                identity.append(Statement.parse(raw, f"{logical_id}/{raw.get('Sid', '')}"))
    role_properties = resources[role]["Properties"]
    if role_properties.get("ManagedPolicyArns"):
        raise ValueError(f"{role} has managed policies, which the evaluator cannot read")
    for policy in role_properties.get("Policies", []):
        for raw in resolve(policy["PolicyDocument"]["Statement"]):
            identity.append(Statement.parse(raw, f"{role}/{policy['PolicyName']}"))
    bucket: list[Statement] = []
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::S3::BucketPolicy":
            for raw in resolve(resource["Properties"]["PolicyDocument"]["Statement"]):
                bucket.append(Statement.parse(raw, f"{logical_id}/{raw.get('Sid', '')}"))
    return RolePolicies(role, tuple(identity), tuple(bucket))


# -- calls -> IAM requests ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One recorded AWS call of a process running as ``role``."""

    role: str
    service: str
    operation: str
    params: dict[str, Any]
    status: int | None
    journey: str = ""


def _object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def iam_requests(call: Call) -> list[Request]:
    """The authorizations S3 or the KeyValueStore makes for ``call``."""
    p = call.params
    if call.service == "cloudfront-keyvaluestore":
        return [Request(f"cloudfront-keyvaluestore:{call.operation}", p["KvsARN"])]
    if call.service != "s3":
        return [Request(f"{call.service}:{call.operation}", "*")]
    op = call.operation
    if op in ("GetObject", "HeadObject"):
        requests = [Request("s3:GetObject", _object(p["Bucket"], p["Key"]))]
        if call.status == 404:
            requests.append(
                Request(
                    "s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", {"s3:prefix": p["Key"]}, "a missing key answers 404"
                )
            )
        return requests
    if op in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        return [Request("s3:PutObject", _object(p["Bucket"], p["Key"]))]
    if op == "AbortMultipartUpload":
        return [Request("s3:AbortMultipartUpload", _object(p["Bucket"], p["Key"]))]
    if op == "CopyObject":
        source = p["CopySource"]
        return [
            Request("s3:GetObject", _object(source["Bucket"], source["Key"])),
            Request("s3:PutObject", _object(p["Bucket"], p["Key"])),
        ]
    if op in ("ListObjectsV2", "ListObjects"):
        return [Request("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", {"s3:prefix": p.get("Prefix", "")})]
    if op == "DeleteObject":
        return [Request("s3:DeleteObject", _object(p["Bucket"], p["Key"]))]
    if op == "DeleteObjects":
        return [Request("s3:DeleteObject", _object(p["Bucket"], o["Key"])) for o in p["Delete"]["Objects"]]
    return [Request(f"s3:{op}", f"arn:aws:s3:::{p.get('Bucket', '*')}")]


def read_calls(log: str | os.PathLike[str], *, journey: str = "") -> list[Call]:
    """The calls a recorder appended to ``log``."""
    calls = []
    with open(log, encoding="utf-8") as handle:
        for line in handle:
            raw = json.loads(line)
            calls.append(Call(raw["role"], raw["service"], raw["operation"], raw["params"], raw["status"], journey))
    return calls


# -- the recorder (runs inside the process under test) ------------------------------------------

#: The log the recorder appends to, and the role the process acts as.
LOG_VARIABLE = "IAM_AGREEMENT_LOG"
ROLE_VARIABLE = "IAM_AGREEMENT_ROLE"
_RECORDED_PARAMS = ("Bucket", "Key", "Prefix", "CopySource", "Delete", "KvsARN")


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name in _RECORDED_PARAMS:
        if name not in params:
            continue
        value = params[name]
        if name == "CopySource" and isinstance(value, str):
            bucket, _, key = value.lstrip("/").partition("/")
            value = {"Bucket": bucket, "Key": key}
        if name == "Delete":
            value = {"Objects": [{"Key": o["Key"]} for o in value["Objects"]]}
        kept[name] = value
    return kept


def record_calls(log: str, role: str) -> None:
    """Hook every botocore client and the CRT's S3 client this process creates; append each call to ``log``."""
    import botocore.session

    lock = threading.Lock()

    def write(service: str, operation: str, params: dict[str, Any], status: int | None) -> None:
        line = json.dumps(
            {"role": role, "service": service, "operation": operation, "params": params, "status": status}
        )
        with lock, open(log, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def before(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["iam_agreement"] = _json_params(params)

    def after(http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        write(service, model.name, context.get("iam_agreement", {}), http_response.status_code)

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", before)
        client.meta.events.register("after-call", after)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]

    try:
        from awscrt import s3 as crt_s3
    except ImportError:
        return
    crt_make_request = crt_s3.S3Client.make_request

    def make_request(self: Any, *, request: Any, **kwargs: Any) -> Any:
        # Path-style addresses: /<bucket>/<key>. Each file is one PutObject (or the parts of one upload).
        from urllib.parse import unquote

        bucket, _, key = unquote(request.path).lstrip("/").partition("/")
        write("s3", "PutObject", {"Bucket": bucket, "Key": key}, None)
        return crt_make_request(self, request=request, **kwargs)

    crt_s3.S3Client.make_request = make_request  # type: ignore[method-assign]


def iter_statement_grants(statement: Statement) -> Iterator[tuple[str, str]]:
    """Every (action, resource) pair a statement writes out."""
    for action in statement.actions:
        for resource in statement.resources:
            yield action, resource


def used_grants(policies: RolePolicies, requests: Iterable[Request]) -> set[tuple[str, str, str]]:
    """(Sid, action, resource) of the role's statements that allowed at least one of ``requests``."""
    used: set[tuple[str, str, str]] = set()
    for request in requests:
        for statement in policies.evaluate(request).allowed_by:
            for action, resource in iter_statement_grants(statement):
                if _pattern(action, ignore_case=True).match(request.action) and _pattern(
                    resource, ignore_case=False
                ).match(request.resource):
                    used.add((statement.sid, action, resource))
    return used
