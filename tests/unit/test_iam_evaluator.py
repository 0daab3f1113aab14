"""The policy evaluator the IAM agreement test decides by (``tests/fakes/iam.py``): a grid of allowed and denied
requests, the intrinsics it resolves, and the IAM requests it derives from S3 and KeyValueStore calls."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.iam import Call, Request, Resolver, RolePolicies, Statement, iam_requests, role_policies

BUCKET = "arn:aws:s3:::site"
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "SiteBucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Store": {"Type": "AWS::CloudFront::KeyValueStore", "Properties": {}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        "Policy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "Roles": [{"Ref": "Role"}],
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Sid": "Releases",
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:Put*"],
                            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["SiteBucket", "Arn"]}, "/releases/*"]]},
                        },
                        {
                            "Sid": "List",
                            "Effect": "Allow",
                            "Action": "s3:ListBucket",
                            "Resource": {"Fn::GetAtt": ["SiteBucket", "Arn"]},
                            "Condition": {"StringLike": {"s3:prefix": ["releases/*"]}},
                        },
                        {
                            "Sid": "NoSecrets",
                            "Effect": "Deny",
                            "Action": "s3:*",
                            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::site/releases/secret/*"},
                        },
                        {
                            "Sid": "Store",
                            "Effect": "Allow",
                            "Action": "cloudfront-keyvaluestore:Get*",
                            "Resource": {"Fn::GetAtt": ["Store", "Arn"]},
                        },
                    ]
                },
            },
        },
        "SitePolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": {"AWS": "*"},
                            "Action": "s3:*",
                            "Resource": [{"Fn::GetAtt": ["SiteBucket", "Arn"]}],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                }
            },
        },
    }
}
STORE = "arn:aws:cloudfront::123456789012:key-value-store/abc"


@pytest.fixture(scope="module")
def policies() -> RolePolicies:
    return role_policies(TEMPLATE, "Role", Resolver(TEMPLATE, {"SiteBucket": "site", "Store": STORE}))


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (Request("s3:GetObject", f"{BUCKET}/releases/a/index.html"), True),
        (Request("S3:getobject", f"{BUCKET}/releases/a/index.html"), True),  # actions ignore case
        (Request("s3:PutObject", f"{BUCKET}/releases/a/index.html"), True),  # action wildcard
        (Request("s3:DeleteObject", f"{BUCKET}/releases/a/index.html"), False),
        (Request("s3:GetObject", f"{BUCKET}/Releases/a/index.html"), False),  # resources keep case
        (Request("s3:GetObject", f"{BUCKET}/errors/404.html"), False),
        (Request("s3:GetObject", f"{BUCKET}/releases/secret/key"), False),  # an explicit deny wins
        (Request("s3:ListBucket", BUCKET, {"s3:prefix": "releases/a/"}), True),
        (Request("s3:ListBucket", BUCKET, {"s3:prefix": "errors/404.html"}), False),
        (Request("s3:ListBucket", BUCKET), False),  # a condition key the request lacks does not match
        (Request("s3:ListBucket", BUCKET, {"s3:prefix": "releases/a/", "aws:SecureTransport": False}), False),
        (Request("cloudfront-keyvaluestore:GetKey", STORE), True),
        (Request("cloudfront-keyvaluestore:PutKey", STORE), False),
    ],
)
def test_the_evaluator_decides_as_iam_does(policies: RolePolicies, request_: Request, allowed: bool) -> None:
    assert policies.evaluate(request_).allowed is allowed


def test_an_unknown_condition_operator_fails_rather_than_guessing() -> None:
    statement = Statement.parse(
        {
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
        "test",
    )
    with pytest.raises(ValueError, match="IpAddress"):
        statement.applies(Request("s3:GetObject", f"{BUCKET}/k", {"aws:SourceIp": "10.0.0.1"}))


def test_intrinsics_resolve_to_the_names_given_or_placeholders() -> None:
    resolve = Resolver(TEMPLATE, {"SiteBucket": "site"})

    assert resolve({"Fn::Join": ["", [{"Fn::GetAtt": ["SiteBucket", "Arn"]}, "/*"]]}) == f"{BUCKET}/*"
    assert resolve({"Fn::Sub": "cdk-${AWS::AccountId}-${AWS::Region}"}) == "cdk-123456789012-us-east-1"
    assert resolve({"Fn::Select": [1, {"Fn::Split": [":", "a:b:c"]}]}) == "b"
    assert resolve({"Ref": "Store"}) == "store"
    with pytest.raises(ValueError, match="Fn::If"):
        resolve({"Fn::If": ["C", 1, 2]})


def test_calls_become_the_requests_s3_authorizes_them_by() -> None:
    copy = Call(
        "r", "s3", "CopyObject", {"Bucket": "site", "Key": "b/x", "CopySource": {"Bucket": "site", "Key": "a/x"}}, 200
    )
    missing = Call("r", "s3", "GetObject", {"Bucket": "site", "Key": "_meta/r.json"}, 404)
    batch = Call(
        "r", "s3", "DeleteObjects", {"Bucket": "site", "Delete": {"Objects": [{"Key": "p/1"}, {"Key": "p/2"}]}}, 200
    )

    assert iam_requests(copy) == [Request("s3:GetObject", f"{BUCKET}/a/x"), Request("s3:PutObject", f"{BUCKET}/b/x")]
    assert iam_requests(missing) == [
        Request("s3:GetObject", f"{BUCKET}/_meta/r.json"),
        Request("s3:ListBucket", BUCKET, {"s3:prefix": "_meta/r.json"}),
    ]
    assert [r.resource for r in iam_requests(batch)] == [f"{BUCKET}/p/1", f"{BUCKET}/p/2"]
    assert iam_requests(Call("r", "cloudfront-keyvaluestore", "PutKey", {"KvsARN": STORE}, 200)) == [
        Request("cloudfront-keyvaluestore:PutKey", STORE)
    ]
