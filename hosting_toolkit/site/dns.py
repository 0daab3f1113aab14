"""The DNS records a custom domain needs when its zone is not in the configuration: what ``deploy`` prints.

Without a Route 53 hosted zone in ``[domain]``, CloudFormation creates the site's certificate and
then waits, up to its timeout, until ACM sees the validation records in DNS. Those records exist
only once ACM has been asked for the certificate, so they cannot be stack outputs (the stack is not
complete until they are in place): ``ValidationWatcher`` reads them from ACM while the deploy waits
and prints each one once. After the deploy, ``site_records`` are the records pointing the site's
names at the distribution.

The CLI imports this module, so it stays free of the CDK (importing ``aws_cdk`` starts a Node.js
process): the certificate's region and stack name the stacks use are defined here too, and a test
checks that they agree with ``hosting_toolkit.site.domain``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hosting_toolkit.config import HostingConfig

#: CloudFront only uses ACM certificates from this region (as ``hosting_toolkit.site.domain``).
CERTIFICATE_REGION = "us-east-1"
#: How often the watcher asks ACM while a deploy waits for the certificate.
POLL_SECONDS = 15.0
#: How long the end of a deploy waits for a poll under way to finish.
JOIN_SECONDS = 5.0
_CERTIFICATE_TYPE = "AWS::CertificateManager::Certificate"


def certificate_stack_name(config: HostingConfig) -> str:
    """Name of the us-east-1 stack holding the certificate of a hosting stack in another region."""
    return f"{config.stack_name}-certificate"


def certificate_stack(config: HostingConfig, region: str | None) -> str | None:
    """The certificate stack the app adds beside a hosting stack in ``region``, or ``None``.

    ``build_stacks`` decides by it: only a site with a domain has one, and only outside us-east-1
    (in us-east-1 the hosting stack holds its certificate itself).
    """
    if not config.domain.enabled or region == CERTIFICATE_REGION:
        return None
    return certificate_stack_name(config)


@dataclass(frozen=True)
class DnsRecord:
    """One DNS record to create at the domain's DNS provider."""

    name: str
    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.name} {self.type} {self.value}"


def certificate_arns(cloudformation: Any, stack_name: str) -> list[str]:
    """ARNs of the ACM certificates ``stack_name`` has requested so far (none if the stack does not exist yet)."""
    try:
        pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        resources = [r for page in pages for r in page.get("StackResourceSummaries", [])]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return []
        raise
    return [
        str(r["PhysicalResourceId"])
        for r in resources
        if r.get("ResourceType") == _CERTIFICATE_TYPE and str(r.get("PhysicalResourceId", "")).startswith("arn:")
    ]


def validation_records(cloudformation: Any, acm: Any, stack_name: str) -> list[DnsRecord]:
    """The DNS records ACM still waits for to validate the certificates of ``stack_name``."""
    records: list[DnsRecord] = []
    for arn in certificate_arns(cloudformation, stack_name):
        certificate = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        for option in certificate.get("DomainValidationOptions", []):
            record = option.get("ResourceRecord")
            if option.get("ValidationStatus") != "PENDING_VALIDATION" or not record:
                continue
            found = DnsRecord(record["Name"], record["Type"], record["Value"])
            if found not in records:
                records.append(found)
    return records


def site_records(config: HostingConfig, distribution_domain: str) -> list[DnsRecord]:
    """Records pointing every name of the site at its distribution, for DNS hosted outside Route 53.

    At a zone's apex, where DNS allows no CNAME, the provider's ALIAS, ANAME or CNAME flattening
    record does the same.
    """
    return [DnsRecord(name, "CNAME", distribution_domain) for name in config.served_domain.all_names]


class ValidationWatcher:
    """While a deploy waits on CloudFormation, prints each DNS record ACM needs to issue the site's certificate.

    A context manager around the deploy. It watches the certificate stack and the hosting stack in
    us-east-1 (the certificate is in one of them) and does nothing for a configuration without a
    domain, or with a Route 53 hosted zone (CloudFormation then creates the records itself).
    Leaving the block stops it, however the deploy ended; nothing is printed after that.
    """

    def __init__(
        self,
        session: Any,
        config: HostingConfig,
        say: Callable[[str], None],
        *,
        interval: float = POLL_SECONDS,
    ) -> None:
        self.config = config
        self.say = say
        self.interval = interval
        self.active = config.domain.enabled and not config.domain.hosted_zone_id
        self.printed: list[DnsRecord] = []
        self._session = session
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed = False
        self._lock = threading.Lock()
        self._closed = False

    def poll(self) -> list[DnsRecord]:
        """Ask ACM once; print and return the records not printed before."""
        cloudformation = self._session.client("cloudformation", region_name=CERTIFICATE_REGION)
        acm = self._session.client("acm", region_name=CERTIFICATE_REGION)
        new: list[DnsRecord] = []
        for stack_name in (certificate_stack_name(self.config), self.config.stack_name):
            for record in validation_records(cloudformation, acm, stack_name):
                if record not in self.printed and record not in new:
                    new.append(record)
        if new:
            heading = (
                "the certificate also waits for:"
                if self.printed
                else "the certificate waits for these DNS records: create them at your DNS provider (the deploy "
                "goes on once ACM sees them) and keep them (ACM renews the certificate with them):"
            )
            # One message per batch: a single write, so the lines stay together among the CDK CLI's own.
            self._say("\n".join([heading, *(f"  {record}" for record in new)]))
            self.printed.extend(new)
        return new

    def _say(self, message: str) -> None:
        with self._lock:
            if not self._closed:
                self.say(message)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except (BotoCoreError, ClientError) as exc:
                if not self._failed:
                    self._failed = True
                    self._say(f"cannot read the certificate's validation records ({exc}); see the stack's events")
            self._stop.wait(self.interval)

    def __enter__(self) -> ValidationWatcher:
        if self.active:
            self._thread = threading.Thread(target=self._run, name="certificate-validation", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            # A poll under way finishes and prints; one stuck on the network is left behind (a daemon
            # thread) and silenced, so nothing is printed after the deploy has moved on.
            self._thread.join(timeout=JOIN_SECONDS)
            self._thread = None
        with self._lock:
            self._closed = True
