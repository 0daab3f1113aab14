"""What the package asset holds: the release engine's files from the checkout and, once prepared, its wheels."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii

from hosting_toolkit.pipeline.buildspec import WHEELHOUSE_DIR

#: Never shipped from the allowlisted folders: what running or installing the package leaves there.
LEFT_BY_PYTHON = ("__pycache__", "*.py[cod]", "*.egg-info")


@jsii.implements(cdk.ILocalBundling)
class PackageBundle:
    """Copies the allowlisted ``files`` of ``root`` into the asset, and the wheelhouse as ``WHEELHOUSE_DIR``."""

    def __init__(self, *, root: Path, files: Sequence[str], wheelhouse: Path | None) -> None:
        self.root = root
        self.files = tuple(files)
        self.wheelhouse = wheelhouse

    def try_bundle(self, output_dir: str, *_options: Any, **_named: Any) -> bool:
        out = Path(output_dir)
        ignore = shutil.ignore_patterns(*LEFT_BY_PYTHON)
        for name in self.files:
            source = self.root / name.rstrip("/")
            if name.endswith("/"):
                shutil.copytree(source, out / source.name, ignore=ignore, dirs_exist_ok=True)
            else:
                shutil.copy2(source, out / source.name)
        if self.wheelhouse is not None:
            shutil.copytree(self.wheelhouse, out / WHEELHOUSE_DIR, dirs_exist_ok=True)
        return True


def bundling(*, root: Path, files: Sequence[str], wheelhouse: Path | None) -> cdk.BundlingOptions:
    """Bundling options that build the asset locally with ``PackageBundle``; no container is ever started."""
    return cdk.BundlingOptions(
        # Required by the options, never run: the local bundling always succeeds.
        image=cdk.DockerImage.from_registry("hosting-toolkit-local-bundling"),
        local=PackageBundle(root=root, files=files, wheelhouse=wheelhouse),
    )
