"""What every command shares: the global options and the configuration and target they lead to.

Feature modules of the CLI define plain Typer command functions that take ``ctx`` and call
``session_of(ctx)``; ``cli/main.py`` registers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from hosting_toolkit.cli.output import BarProgress
from hosting_toolkit.config import HostingConfig, load_config
from hosting_toolkit.errors import InvalidInputError
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.target import Target, aws_target, local_target, named_aws_target


@dataclass
class Session:
    """Global options, and the configuration and target they lead to, loaded on first use."""

    config_path: Path | None
    local: Path | None
    bucket: str | None
    kvs_arn: str | None = None
    site_url: str | None = None
    #: A preview build: the engine may write ``preview:`` keys only, never the routing state.
    preview_only: bool = False
    _config: HostingConfig | None = None
    _target: Target | None = None

    @property
    def config(self) -> HostingConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def target(self) -> Target:
        if self._target is None:
            if self.local is not None:
                self._target = local_target(self.local, self.config, bucket=self.bucket, site_url=self.site_url)
            elif self.bucket and self.kvs_arn:
                self._target = named_aws_target(
                    self.config, bucket=self.bucket, kvs_arn=self.kvs_arn, site_url=self.site_url
                )
            elif self.bucket or self.kvs_arn:
                raise InvalidInputError(
                    "name both --bucket and --kvs-arn, or use --local DIR (the --bucket then holds the objects)"
                )
            else:
                self._target = aws_target(self.config)
        return self._target

    def engine(self, *, progress: bool = True) -> ReleaseEngine:
        target = self.target
        kvs = target.kvs
        if self.preview_only:
            from hosting_toolkit.release.previews import PreviewKeys

            kvs = PreviewKeys(kvs)
        return ReleaseEngine(target.store, kvs, self.config, progress=BarProgress() if progress else None)


def session_of(ctx: typer.Context) -> Session:
    """The session the global options made, for any command."""
    return ctx.find_object(Session) or ctx.ensure_object(Session)
