"""cfn-lint on the synthesized templates: no errors; warnings are reported, not hidden."""

from __future__ import annotations

import json
import warnings

import pytest
from cfnlint.api import ManualArgs, lint

from hosting_toolkit.config import HeadersConfig, HostingConfig, SiteConfig
from tests.cdk_helpers import SynthesizedStack, synth_hosting_stack

pytestmark = pytest.mark.synth

#: The stack is environment-agnostic; lint it where sites are commonly deployed.
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


@pytest.fixture(
    scope="module",
    params=[
        HostingConfig(),
        HostingConfig(
            site=SiteConfig(name="docs", mode="static"),
            headers=HeadersConfig(content_security_policy="default-src 'self'"),
        ),
    ],
    ids=["default", "static-with-csp"],
)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return synth_hosting_stack(request.param, tmp_path_factory.mktemp("lint"))


def test_template_has_no_cfn_lint_errors(site: SynthesizedStack) -> None:
    template = json.dumps(site.template_json, indent=1)
    matches = lint(template, config=ManualArgs(regions=REGIONS))
    for match in matches:
        if match.rule.severity != "error":
            warnings.warn(f"cfn-lint {match.rule.id} line {match.linenumber}: {match.message}", stacklevel=1)
    errors = [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches if m.rule.severity == "error"]
    assert errors == []


def test_cfn_lint_catches_an_invalid_property(site: SynthesizedStack) -> None:
    template = json.dumps(site.template_json, indent=1).replace('"http2and3"', '"http9"')
    matches = lint(template, config=ManualArgs(regions=REGIONS))
    assert [m.rule.id for m in matches if m.rule.severity == "error"] == ["E3030"]
