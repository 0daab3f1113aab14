"""A boto3 session stand-in whose clients are answered by botocore's Stubber."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber


class StubbedSession:
    """Hands out one stubbed client per service, and records the region each was asked for."""

    def __init__(self, *services: str, region: str = "us-east-1") -> None:
        self.clients: dict[str, Any] = {}
        self.stubbers: dict[str, Stubber] = {}
        self.regions: list[tuple[str, str | None]] = []
        for service in services:
            client = boto3.client(service, region_name=region)  # type: ignore[call-overload]
            self.clients[service] = client
            self.stubbers[service] = Stubber(client)
            self.stubbers[service].activate()

    def client(self, service: str, region_name: str | None = None, **_: Any) -> Any:
        self.regions.append((service, region_name))
        return self.clients[service]

    def verify(self) -> None:
        """Every queued answer was asked for."""
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()
