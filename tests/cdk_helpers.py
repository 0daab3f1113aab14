"""Build the CDK app as ``cdk synth`` does (cdk.json's context and feature flags), for the stack tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from constructs import IConstruct

from hosting_toolkit.component import HostingStack, build_stacks
from hosting_toolkit.config import HostingConfig

ROOT = Path(__file__).resolve().parents[1]
CDK_JSON = ROOT / "cdk.json"
APP_PY = ROOT / "app.py"

#: Environment of a subprocess running the CDK app: quiet jsii, no account or region of the caller.
SUBPROCESS_ENV_OVERRIDES = {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_VERSION_CHECK": "1"}
SUBPROCESS_ENV_REMOVED = ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "CDK_CONTEXT_JSON", "HOSTING_TOOLKIT_CONFIG")


def cdk_json() -> dict[str, Any]:
    """The parsed cdk.json."""
    data: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))
    return data


def cdk_context() -> dict[str, Any]:
    """The context (feature flags, offline settings) cdk.json gives the app."""
    context: dict[str, Any] = cdk_json()["context"]
    return context


@dataclass(frozen=True)
class SynthesizedStack:
    """One synthesized hosting stack with the app and configuration it came from."""

    app: cdk.App
    stack: HostingStack
    template: Template
    config: HostingConfig
    outdir: Path

    @property
    def template_json(self) -> dict[str, Any]:
        """The template as CloudFormation reads it."""
        return dict(self.template.to_json())

    def logical_id(self, construct: IConstruct) -> str:
        """Logical id of ``construct`` (an L1 element, or an L2 construct with a default child)."""
        element = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
        assert isinstance(element, cdk.CfnElement), f"{construct.node.path} has no CloudFormation element"
        return str(self.stack.resolve(element.logical_id))


def synth_hosting_stack(
    config: HostingConfig, outdir: Path, *, env: cdk.Environment | None = None, wheelhouse: Path | None = None
) -> SynthesizedStack:
    """Synthesize the hosting stack for ``config`` into ``outdir`` with cdk.json's context, as app.py builds it
    (with its us-east-1 certificate stack in the same app when it has a domain and ``env`` is elsewhere), its
    pipeline shipping ``wheelhouse`` (default none)."""
    app = cdk.App(context=cdk_context(), outdir=str(outdir))
    stack = build_stacks(app, config, env=env, wheelhouse=wheelhouse)
    template = Template.from_stack(stack)
    return SynthesizedStack(app=app, stack=stack, template=template, config=config, outdir=outdir)


def subprocess_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """``base`` (usually ``os.environ``) prepared for running app.py in a subprocess."""
    env = {k: v for k, v in base.items() if k not in SUBPROCESS_ENV_REMOVED}
    env.update(SUBPROCESS_ENV_OVERRIDES)
    env.update(extra)
    return env


FUNCTION_CODE_PLACEHOLDER = "<rendered function code>"
_VOLATILE_METADATA = ("aws:cdk:path", "aws:asset:path", "aws:asset:property", "aws:asset:is-bundled", "cdk_nag")


def normalized_template(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` without what changes between CDK versions and machines, for snapshots.

    Drops the bootstrap version parameter and rule, the CDK metadata resource and its condition,
    construct paths, asset and cdk-nag metadata, and replaces asset hashes with a placeholder.
    CloudFront Function code becomes a placeholder too: the stack tests compare it exactly with
    the rendered ``functions/`` source, so editing a function does not churn the snapshot.
    """
    data: dict[str, Any] = json.loads(json.dumps(template))
    data.get("Parameters", {}).pop("BootstrapVersion", None)
    data.get("Rules", {}).pop("CheckBootstrapVersion", None)
    data.get("Conditions", {}).pop("CDKMetadataAvailable", None)
    resources = data.get("Resources", {})
    for logical_id in [k for k, v in resources.items() if v.get("Type") == "AWS::CDK::Metadata"]:
        del resources[logical_id]
    for resource in resources.values():
        if resource.get("Type") == "AWS::CloudFront::Function":
            resource["Properties"]["FunctionCode"] = FUNCTION_CODE_PLACEHOLDER
        metadata = resource.get("Metadata", {})
        for key in _VOLATILE_METADATA:
            metadata.pop(key, None)
        if not metadata:
            resource.pop("Metadata", None)
    for section in ("Parameters", "Rules", "Conditions"):
        if section in data and not data[section]:
            del data[section]
    text = json.dumps(data, sort_keys=True)
    for asset_hash in _asset_hashes(template):
        text = text.replace(asset_hash, "<asset-hash>")
    normalized: dict[str, Any] = json.loads(text)
    return normalized


def _asset_hashes(template: dict[str, Any]) -> set[str]:
    hashes: set[str] = set()
    for resource in template.get("Resources", {}).values():
        path = resource.get("Metadata", {}).get("aws:asset:path", "")
        if path.startswith("asset."):
            hashes.add(path.removeprefix("asset.").split(".")[0])
    return hashes
