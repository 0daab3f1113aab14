"""Release records and history in ``_meta/``: the engine's memory of what was released and switched."""

from __future__ import annotations

import builtins
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from hosting_toolkit.contract import META_PREFIX

RECORDS_PREFIX = f"{META_PREFIX}releases/"
PENDING_PREFIX = f"{META_PREFIX}pending/"
HISTORY_PREFIX = f"{META_PREFIX}history/"
ROLLOUTS_PREFIX = f"{META_PREFIX}rollouts/"
MANIFESTS_PREFIX = f"{META_PREFIX}manifests/"
JSON_TYPE = "application/json"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_key(release_id: str) -> str:
    return f"{RECORDS_PREFIX}{release_id}.json"


def manifest_key(release_id: str) -> str:
    return f"{MANIFESTS_PREFIX}{release_id}.json"


def pending_key(release_id: str) -> str:
    return f"{PENDING_PREFIX}{release_id}.json"


@dataclass(frozen=True)
class ReleaseRecord:
    """A complete release: written once, after its last file."""

    id: str
    content_hash: str
    created: str
    files: int
    bytes: int
    source: str = ""
    revision: str = ""
    message: str = ""
    actor: str = ""
    #: The compiled ``_redirects``/``_headers`` rules (``release_rules``), ``""`` without any.
    rules: str = ""

    def to_json(self) -> builtins.bytes:
        data = asdict(self)
        if not self.rules:
            del data["rules"]
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: builtins.bytes) -> ReleaseRecord:
        raw = json.loads(data)
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


@dataclass(frozen=True)
class PendingMarker:
    """A release being uploaded: claims the id for one content before any file is written."""

    id: str
    content_hash: str
    started: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> PendingMarker:
        raw = json.loads(data)
        return cls(raw["id"], raw["content_hash"], raw["started"])


@dataclass(frozen=True)
class HistoryEntry:
    """One switch of the routing; each is its own object, so concurrent writers never collide.

    ``automatic`` marks a switch no person asked for (a rollout's steps, its automatic rollback), with
    the ``reason`` (the alarm that fired, the step that failed) and the ``rollout`` that made it.
    """

    time: str
    action: str
    actor: str
    from_release: str | None
    to_release: str | None
    automatic: bool = False
    reason: str = ""
    rollout: str = ""

    def key(self) -> str:
        """Object key carrying the whole entry, so listing the history needs no reads."""
        parts = [self.time, self.action, self.from_release or "-", self.to_release or "-", secrets.token_hex(4)]
        return f"{HISTORY_PREFIX}{'~'.join(parts)}.json"

    @classmethod
    def from_key(cls, key: str) -> HistoryEntry | None:
        name = key[len(HISTORY_PREFIX) :].removesuffix(".json")
        parts = name.split("~")
        if len(parts) != 5:
            return None
        time, action, source, target, _ = parts
        return cls(time, action, "", None if source == "-" else source, None if target == "-" else target)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "time": self.time,
                "action": self.action,
                "actor": self.actor,
                "from": self.from_release,
                "to": self.to_release,
                "automatic": self.automatic,
                "reason": self.reason,
                "rollout": self.rollout,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> HistoryEntry:
        raw = json.loads(data)
        return cls(
            raw["time"],
            raw["action"],
            raw.get("actor", ""),
            raw.get("from"),
            raw.get("to"),
            bool(raw.get("automatic", False)),
            str(raw.get("reason") or ""),
            str(raw.get("rollout") or ""),
        )
