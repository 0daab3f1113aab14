"""The DNS records a custom domain needs when its zone is not in the configuration: what ``deploy`` prints.

Without a Route 53 hosted zone in ``[domain]``, CloudFormation creates the site's certificate and
then waits, up to its timeout, until ACM sees the validation records in DNS. Those records exist
only once ACM has been asked for the certificate, so they cannot be stack outputs (the stack is not
complete until they are in place): ``ValidationWatcher`` reads them from ACM while the deploy waits
and prints each one once. After the deploy, ``site_records`` are the records pointing the site's
names at the distribution.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.site.domain import CERTIFICATE_REGION, certificate_stack_name

#: How often the watcher asks ACM while a deploy waits for the certificate.
POLL_SECONDS = 15.0
_CERTIFICATE_TYPE = "AWS::CertificateManager::Certificate"


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
    return [DnsRecord(name, "CNAME", distribution_domain) for name in config.domain.all_names]


class ValidationWatcher:
    """While a deploy waits on CloudFormation, prints each DNS record ACM needs to issue the site's certificate.

    A context manager around the deploy. It watches the certificate stack and the hosting stack in
    us-east-1 (the certificate is in one of them) and does nothing for a configuration without a
    domain, or with a Route 53 hosted zone (CloudFormation then creates the records itself).
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
            if not self.printed:
                self.say(
                    "the certificate waits for these DNS records; create them at your DNS provider "
                    "(the deploy goes on once ACM sees them):"
                )
            for record in new:
                self.say(f"  {record}")
            self.printed.extend(new)
        return new

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except (BotoCoreError, ClientError) as exc:
                if not self._failed:
                    self._failed = True
                    self.say(f"cannot read the certificate's validation records ({exc}); see the stack's events")
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
            self._thread.join(timeout=self.interval + 5)
            self._thread = None
