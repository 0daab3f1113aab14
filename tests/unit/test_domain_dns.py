"""The DNS records ``deploy`` prints for a domain outside Route 53: ACM's validation records and the site's own."""

from __future__ import annotations

import threading
from typing import Any

import aws_cdk as cdk
import pytest
from botocore.stub import Stubber

from hosting_toolkit.component import build_stacks
from hosting_toolkit.config import DomainConfig, HostingConfig, SiteConfig
from hosting_toolkit.site import dns
from hosting_toolkit.site import domain as site_domain
from hosting_toolkit.site.dns import DnsRecord, ValidationWatcher, site_records, validation_records
from tests.cdk_helpers import cdk_context
from tests.fakes.aws import StubbedSession

CERTIFICATE_ARN = "arn:aws:acm:us-east-1:111111111111:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
EXTERNAL = HostingConfig(
    site=SiteConfig(name="docs"), domain=DomainConfig(names=("example.org",), www_redirect="www-to-apex")
)
APEX_RECORD = DnsRecord("_3f9a.example.org.", "CNAME", "_7c1e.acm-validations.aws.")
WWW_RECORD = DnsRecord("_8b2d.www.example.org.", "CNAME", "_0d4f.acm-validations.aws.")


def resources(stack: str, *summaries: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"StackResourceSummaries": list(summaries)}, {"StackName": stack}


def certificate_resource(physical_id: str = CERTIFICATE_ARN) -> dict[str, Any]:
    return {
        "LogicalResourceId": "SiteCertificate4E7ABB08",
        "PhysicalResourceId": physical_id,
        "ResourceType": "AWS::CertificateManager::Certificate",
        "LastUpdatedTimestamp": "2025-01-01T00:00:00Z",
        "ResourceStatus": "CREATE_IN_PROGRESS",
    }


def option(name: str, record: DnsRecord | None, status: str = "PENDING_VALIDATION") -> dict[str, Any]:
    entry: dict[str, Any] = {"DomainName": name, "ValidationStatus": status, "ValidationMethod": "DNS"}
    if record is not None:
        entry["ResourceRecord"] = {"Name": record.name, "Type": record.type, "Value": record.value}
    return entry


def described(*options: dict[str, Any]) -> dict[str, Any]:
    return {"Certificate": {"CertificateArn": CERTIFICATE_ARN, "DomainValidationOptions": list(options)}}


def missing_stack(stubber: Stubber, stack: str) -> None:
    stubber.add_client_error(
        "list_stack_resources",
        service_error_code="ValidationError",
        service_message=f"Stack with id {stack} does not exist",
        expected_params={"StackName": stack},
    )


def test_pending_validation_records_are_read_from_the_stacks_certificate() -> None:
    session = StubbedSession("cloudformation", "acm")
    cloudformation, acm = session.stubbers["cloudformation"], session.stubbers["acm"]
    cloudformation.add_response("list_stack_resources", *resources("hosting-docs-certificate", certificate_resource()))
    acm.add_response(
        "describe_certificate",
        described(
            option("example.org", APEX_RECORD),
            option("www.example.org", WWW_RECORD),
            option("docs.example.org", DnsRecord("_1.docs.example.org.", "CNAME", "_2."), status="SUCCESS"),
        ),
        {"CertificateArn": CERTIFICATE_ARN},
    )

    found = validation_records(session.clients["cloudformation"], session.clients["acm"], "hosting-docs-certificate")

    assert found == [APEX_RECORD, WWW_RECORD]
    session.verify()


def test_a_stack_not_created_yet_or_a_certificate_not_requested_yet_has_no_records() -> None:
    session = StubbedSession("cloudformation", "acm")
    cloudformation = session.stubbers["cloudformation"]
    missing_stack(cloudformation, "hosting-docs-certificate")
    cloudformation.add_response(
        "list_stack_resources", *resources("hosting-docs", certificate_resource(physical_id=""))
    )

    assert (
        validation_records(session.clients["cloudformation"], session.clients["acm"], "hosting-docs-certificate") == []
    )
    assert validation_records(session.clients["cloudformation"], session.clients["acm"], "hosting-docs") == []
    session.verify()


def test_the_watcher_prints_each_record_once_from_us_east_1() -> None:
    session = StubbedSession("cloudformation", "acm")
    cloudformation, acm = session.stubbers["cloudformation"], session.stubbers["acm"]
    lines: list[str] = []
    watcher = ValidationWatcher(session, EXTERNAL, lines.append)
    for answer in (
        described(option("example.org", APEX_RECORD)),
        described(option("example.org", APEX_RECORD), option("www.example.org", WWW_RECORD)),
    ):
        cloudformation.add_response(
            "list_stack_resources", *resources("hosting-docs-certificate", certificate_resource())
        )
        acm.add_response("describe_certificate", answer, {"CertificateArn": CERTIFICATE_ARN})
        missing_stack(cloudformation, "hosting-docs")

    assert watcher.poll() == [APEX_RECORD]
    assert watcher.poll() == [WWW_RECORD]

    first, second = (message.splitlines() for message in lines)
    assert first[0].startswith("the certificate waits for these DNS records: create them at your DNS provider")
    assert "keep them (ACM renews the certificate with them)" in first[0]
    assert first[1:] == [f"  {APEX_RECORD}"]
    assert second == ["the certificate also waits for:", f"  {WWW_RECORD}"]
    assert {region for _, region in session.regions} == {"us-east-1"}


def test_the_watcher_prints_nothing_once_stopped() -> None:
    session = StubbedSession("cloudformation", "acm")
    cloudformation, acm = session.stubbers["cloudformation"], session.stubbers["acm"]
    cloudformation.add_response("list_stack_resources", *resources("hosting-docs-certificate", certificate_resource()))
    acm.add_response(
        "describe_certificate", described(option("example.org", APEX_RECORD)), {"CertificateArn": CERTIFICATE_ARN}
    )
    missing_stack(cloudformation, "hosting-docs")
    lines: list[str] = []
    watcher = ValidationWatcher(session, EXTERNAL, lines.append)
    watcher.__exit__(None, None, None)

    assert watcher.poll() == [APEX_RECORD]
    assert lines == []


def test_the_watcher_runs_around_a_deploy_and_stops_with_it() -> None:
    session = StubbedSession("cloudformation", "acm")
    polled = threading.Event()

    class Watcher(ValidationWatcher):
        def poll(self) -> list[DnsRecord]:
            polled.set()
            return []

    with Watcher(session, EXTERNAL, print, interval=0.01) as watcher:
        assert polled.wait(5)
    assert watcher._thread is None
    assert "certificate-validation" not in {thread.name for thread in threading.enumerate()}


def test_the_watcher_stops_when_the_deploy_is_interrupted() -> None:
    polled = threading.Event()

    class Watcher(ValidationWatcher):
        def poll(self) -> list[DnsRecord]:
            polled.set()
            return []

    with pytest.raises(KeyboardInterrupt), Watcher(StubbedSession(), EXTERNAL, print, interval=0.01):
        assert polled.wait(5)
        raise KeyboardInterrupt
    assert "certificate-validation" not in {thread.name for thread in threading.enumerate()}


@pytest.mark.parametrize(
    "domain",
    [DomainConfig(), DomainConfig(names=("example.com",), hosted_zone_id="Z01", hosted_zone_name="example.com")],
    ids=["no-domain", "route53"],
)
def test_the_watcher_does_nothing_without_records_to_print(domain: DomainConfig) -> None:
    watcher = ValidationWatcher(StubbedSession(), HostingConfig(domain=domain), print)
    with watcher:
        assert not watcher.active
        assert watcher._thread is None


def test_site_records_point_every_name_at_the_distribution() -> None:
    assert [str(r) for r in site_records(EXTERNAL, "d111111abcdef8.cloudfront.net")] == [
        "example.org CNAME d111111abcdef8.cloudfront.net",
        "www.example.org CNAME d111111abcdef8.cloudfront.net",
    ]


# The CLI's side of the certificate stack (without the CDK) and the stacks the app builds.


def test_the_certificate_region_and_stack_name_are_the_stacks_own() -> None:
    assert dns.CERTIFICATE_REGION == site_domain.CERTIFICATE_REGION
    assert (
        dns.certificate_stack_name(EXTERNAL)
        == site_domain.certificate_stack_name(EXTERNAL)
        == "hosting-docs-certificate"
    )


@pytest.mark.parametrize(
    ("config", "region"),
    [(HostingConfig(), "eu-west-1"), (EXTERNAL, "eu-west-1"), (EXTERNAL, "us-east-1")],
    ids=["no-domain", "domain-elsewhere", "domain-in-us-east-1"],
)
def test_certificate_stack_is_the_one_build_stacks_adds(config: HostingConfig, region: str) -> None:
    app = cdk.App(context=cdk_context())

    build_stacks(app, config, env=cdk.Environment(account="111111111111", region=region))

    names = [child.stack_name for child in app.node.children if isinstance(child, cdk.Stack)]
    certificate = dns.certificate_stack(config, region)
    assert names == ([certificate] if certificate else []) + [config.stack_name]
