"""The one error hierarchy of the toolkit; the CLI turns each class into an exit code."""

from __future__ import annotations


class ToolkitError(Exception):
    """Base of every error the toolkit reports to a person as one clear line."""

    exit_code = 1


class ConfigError(ToolkitError):
    """The configuration file is missing, unreadable or invalid."""

    exit_code = 2

    def __init__(self, problems: list[str], path: str | None = None) -> None:
        self.problems = problems
        self.path = path
        where = f"{path}: " if path else ""
        if len(problems) == 1:
            message = f"{where}{problems[0]}"
        else:
            message = f"{where}{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(message)


class InvalidInputError(ToolkitError):
    """A build folder, archive, release id or argument the toolkit refuses."""

    exit_code = 3


class ReleaseConflictError(ToolkitError):
    """A release id already exists with other content, or a state change lost a race."""

    exit_code = 4


class NotFoundError(ToolkitError):
    """A release, store or stack the command needs does not exist."""

    exit_code = 5


class BackendError(ToolkitError):
    """The storage or key-value backend failed in a way a retry did not fix."""

    exit_code = 6


class VerificationError(ToolkitError):
    """A staged release failed a check of ``verify``."""

    exit_code = 7
