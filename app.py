#!/usr/bin/env python3
"""Composition root of the CDK app: reads the configuration and the environment, builds the hosting stack."""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from hosting_toolkit.component import build_stacks
from hosting_toolkit.config import load_config
from hosting_toolkit.errors import ConfigError
from hosting_toolkit.pipeline.wheelhouse import (
    WHEELHOUSE_CONTEXT_KEY,
    WheelhouseError,
    default_cache_root,
    shipped_wheelhouse,
)

#: Context key (``cdk synth -c config=FILE``) naming the configuration file.
CONFIG_CONTEXT_KEY = "config"
#: Environment variable naming the configuration file when the context does not.
CONFIG_ENV_VAR = "HOSTING_TOOLKIT_CONFIG"
#: Exit code of a synthesis whose pipeline would ship no usable wheelhouse.
WHEELHOUSE_EXIT_CODE = 3


def main() -> int:
    """Synthesize the hosting stack; a configuration problem is reported on stderr with a non-zero exit."""
    app = cdk.App()
    path = app.node.try_get_context(CONFIG_CONTEXT_KEY) or os.environ.get(CONFIG_ENV_VAR) or None
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account or region else None
    try:
        config = load_config(path)
        wheelhouse = shipped_wheelhouse(
            app.node.try_get_context(WHEELHOUSE_CONTEXT_KEY),
            default_cache_root(os.environ),
            pipeline=config.source is not None,
        )
        build_stacks(app, config, env=env, wheelhouse=wheelhouse)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except WheelhouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return WHEELHOUSE_EXIT_CODE

    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
