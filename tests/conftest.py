"""Fixtures shared across the test suite."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from hosting_toolkit.edge.sandbox import FunctionSandbox


@pytest.fixture(scope="module")
def function_sandbox() -> Iterator[FunctionSandbox]:
    """One Node function sandbox per test module (starting the worker costs ~50 ms)."""
    if not shutil.which("node"):
        pytest.skip("Node.js is not installed")
    with FunctionSandbox() as sandbox:
        yield sandbox
