"""Custom domains: the site's ACM certificate (in us-east-1, where CloudFront reads it) and its Route 53 records.

The certificate is validated by DNS. With a Route 53 hosted zone in the configuration, CloudFormation
creates the validation records in it and the stack adds A and AAAA alias records pointing every name
at the distribution. Without one, CloudFormation waits until the validation records exist;
``hosting_toolkit.site.dns`` reads them from ACM while it waits, so ``deploy`` can print them.

The www redirect (``domain.www_redirect``) only puts the redirecting name on the certificate, the
distribution and in DNS here; the 301 itself belongs to the router's redirect rules.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from constructs import Construct

from hosting_toolkit.config import DomainConfig

# Declared in the CDK-free module the CLI imports, so ``deploy`` and ``destroy`` never load the CDK.
from hosting_toolkit.site.dns import CERTIFICATE_REGION, certificate_stack_name

__all__ = [
    "CERTIFICATE_REGION",
    "CertificateStack",
    "SiteAliasRecords",
    "SiteCertificate",
    "certificate_stack_name",
    "hosted_zone",
]


def hosted_zone(scope: Construct, domain: DomainConfig) -> route53.IHostedZone | None:
    """The configured Route 53 hosted zone, or ``None`` when the site's DNS is elsewhere."""
    if not domain.hosted_zone_id:
        return None
    return route53.HostedZone.from_hosted_zone_attributes(
        scope, "HostedZone", hosted_zone_id=domain.hosted_zone_id, zone_name=domain.hosted_zone_name
    )


class SiteCertificate(Construct):
    """An ACM certificate for every name of the site, validated by DNS; it must be built in us-east-1.

    Props (keyword-only):

    domain: the site's names (the first is the certificate's subject) and, when given, the Route
      53 hosted zone that CloudFormation creates the validation records in.
    """

    def __init__(self, scope: Construct, construct_id: str, *, domain: DomainConfig) -> None:
        super().__init__(scope, construct_id)
        if not domain.enabled:
            raise ValueError("SiteCertificate: the domain configuration names no domain")
        names = domain.all_names
        self.certificate = acm.Certificate(
            self,
            "Certificate",
            domain_name=names[0],
            subject_alternative_names=list(names[1:]) or None,
            validation=acm.CertificateValidation.from_dns(hosted_zone(self, domain)),
        )


class CertificateStack(cdk.Stack):
    """The site's certificate in us-east-1, for a hosting stack in another region.

    The hosting stack reads the certificate's ARN through a cross-region reference, so the two
    stacks deploy in order (this one first) with one ``cdk deploy`` of the hosting stack.

    Props (keyword-only):

    domain: the site's names and hosted zone.
    account: the account of both stacks (default none: the deploying account).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, domain: DomainConfig, account: str | None = None
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=account, region=CERTIFICATE_REGION),
            cross_region_references=True,
            description=f"TLS certificate of {domain.names[0]} for CloudFront, which reads certificates from us-east-1.",
        )
        self.certificate = SiteCertificate(self, "Site", domain=domain).certificate


class SiteAliasRecords(Construct):
    """Route 53 A and AAAA alias records pointing each of the site's names at its distribution.

    Props (keyword-only):

    domain: the names and the hosted zone holding them (required here).
    distribution: the distribution serving them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain: DomainConfig,
        distribution: cloudfront.IDistribution,
    ) -> None:
        super().__init__(scope, construct_id)
        zone = hosted_zone(self, domain)
        if zone is None:
            raise ValueError("SiteAliasRecords: the domain configuration has no Route 53 hosted zone")
        target = route53.RecordTarget.from_alias(targets.CloudFrontTarget(distribution))
        self.records: list[route53.RecordSet] = []
        for name in domain.all_names:
            # Scoped by the name itself, so adding or removing a name leaves the other records alone.
            scope_of_name = Construct(self, name)
            self.records.append(route53.ARecord(scope_of_name, "A", zone=zone, record_name=name, target=target))
            self.records.append(route53.AaaaRecord(scope_of_name, "AAAA", zone=zone, record_name=name, target=target))
