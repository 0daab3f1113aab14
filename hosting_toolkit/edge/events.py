"""CloudFront Functions event objects built from plain HTTP data, and HTTP data built from what a function returns.

The shapes follow CloudFront's event structure (version ``1.0``): header names lowercase, the
``cookie`` header parsed into ``request.cookies`` (and ``set-cookie`` into ``response.cookies``)
instead of appearing among the headers, the ``uri`` and query string values exactly as the viewer
sent them (still URI-encoded), and repeated names as ``{"value": first, "multiValue": [...]}``.
"""

from __future__ import annotations

import base64
import http
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Header data as a mapping or as (name, value) pairs; pairs keep repeated headers.
Headers = Mapping[str, str] | Iterable[tuple[str, str]]

LOCAL_DOMAIN_NAME = "localhost"
LOCAL_DISTRIBUTION_ID = "LOCAL"


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), str(value)) for name, value in items]


def _field(values: list[str]) -> dict[str, Any]:
    """One header, query string or cookie field: the first value, and all of them when repeated."""
    entry: dict[str, Any] = {"value": values[0]}
    if len(values) > 1:
        entry["multiValue"] = [{"value": value} for value in values]
    return entry


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return {name: _field(values) for name, values in grouped.items()}


def parse_querystring(query: str) -> dict[str, dict[str, Any]]:
    """The ``querystring`` object of a raw query string (without ``?``); names and values stay encoded."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return _group(pairs)


def parse_cookies(header_values: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The ``cookies`` object of one or more ``Cookie`` header values."""
    pairs = []
    for header in header_values:
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name:
                pairs.append((name.strip(), value.strip()))
    return _group(pairs)


def _context(event_type: str, domain_name: str, distribution_id: str, request_id: str | None) -> dict[str, str]:
    return {
        "distributionDomainName": domain_name,
        "distributionId": distribution_id,
        "eventType": event_type,
        "requestId": request_id or secrets.token_urlsafe(42),
    }


def viewer_request_event(
    method: str,
    path_with_query: str,
    headers: Headers = (),
    client_ip: str = "127.0.0.1",
    *,
    domain_name: str = LOCAL_DOMAIN_NAME,
    distribution_id: str = LOCAL_DISTRIBUTION_ID,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The event CloudFront passes to a viewer-request function for this HTTP request."""
    uri, _, query = path_with_query.partition("?")
    pairs = [(name.lower(), value) for name, value in _pairs(headers)]
    cookie_headers = [value for name, value in pairs if name == "cookie"]
    return {
        "version": "1.0",
        "context": _context("viewer-request", domain_name, distribution_id, request_id),
        "viewer": {"ip": client_ip},
        "request": {
            "method": method.upper(),
            "uri": uri,
            "querystring": parse_querystring(query),
            "headers": _group((name, value) for name, value in pairs if name != "cookie"),
            "cookies": parse_cookies(cookie_headers),
        },
    }


def _response_cookies(set_cookie_values: Iterable[str]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[dict[str, str]]] = {}
    for header in set_cookie_values:
        pair, _, attributes = header.partition(";")
        name, _, value = pair.strip().partition("=")
        if name:
            grouped.setdefault(name.strip(), []).append({"value": value.strip(), "attributes": attributes.strip()})
    cookies: dict[str, dict[str, Any]] = {}
    for name, entries in grouped.items():
        cookies[name] = dict(entries[0])
        if len(entries) > 1:
            cookies[name]["multiValue"] = entries
    return cookies


def viewer_response_event(
    request: Mapping[str, Any],
    status: int,
    headers: Headers = (),
    *,
    status_description: str | None = None,
    client_ip: str = "127.0.0.1",
    domain_name: str = LOCAL_DOMAIN_NAME,
    distribution_id: str = LOCAL_DISTRIBUTION_ID,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The event CloudFront passes to a viewer-response function: ``request`` as routed, the origin's response.

    The response carries no body: viewer-response functions cannot read it.
    """
    pairs = [(name.lower(), value) for name, value in _pairs(headers)]
    return {
        "version": "1.0",
        "context": _context("viewer-response", domain_name, distribution_id, request_id),
        "viewer": {"ip": client_ip},
        "request": dict(request),
        "response": {
            "statusCode": status,
            "statusDescription": status_description if status_description is not None else _reason(status),
            "headers": _group((name, value) for name, value in pairs if name != "set-cookie"),
            "cookies": _response_cookies(value for name, value in pairs if name == "set-cookie"),
        },
    }


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _values(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    multi = entry.get("multiValue")
    return list(multi) if multi else [entry]


def is_response(result: Mapping[str, Any]) -> bool:
    """Whether a viewer-request function answered itself (a response) rather than returning the request."""
    return "statusCode" in result


@dataclass(frozen=True)
class HttpResponse:
    """A function's response as HTTP: ``body`` is ``None`` when the function set none (keep the origin's)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes | None


def http_response(response: Mapping[str, Any]) -> HttpResponse:
    """HTTP status, headers (cookies as ``Set-Cookie``) and body of a response object a function returned."""
    status = int(response.get("statusCode", 200))
    headers: list[tuple[str, str]] = []
    for name, entry in (response.get("headers") or {}).items():
        headers.extend((name, str(item.get("value", ""))) for item in _values(entry))
    for name, entry in (response.get("cookies") or {}).items():
        for item in _values(entry):
            attributes = item.get("attributes")
            cookie = f"{name}={item.get('value', '')}"
            headers.append(("set-cookie", f"{cookie}; {attributes}" if attributes else cookie))
    return HttpResponse(
        status=status,
        reason=str(response.get("statusDescription") or _reason(status)),
        headers=headers,
        body=_body(response.get("body")),
    )


def _body(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, Mapping):
        data = str(body.get("data", ""))
        if body.get("encoding") == "base64":
            return base64.b64decode(data)
        return data.encode()
    raise ValueError(f"a function response body must be a string or {{data, encoding}}, not {type(body).__name__}")


def request_target(request: Mapping[str, Any]) -> str:
    """Path and query string of a request object a function returned, as sent on to the origin."""
    query = request.get("querystring") or {}
    if isinstance(query, str):
        text = query
    else:
        parts = []
        for name, entry in query.items():
            for item in _values(entry):
                value = str(item.get("value", ""))
                parts.append(f"{name}={value}" if value else name)
        text = "&".join(parts)
    uri = str(request.get("uri", "/"))
    return f"{uri}?{text}" if text else uri


def request_headers(request: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Headers of a request object a function returned, with its cookies joined back into one ``Cookie`` header."""
    headers: list[tuple[str, str]] = []
    for name, entry in (request.get("headers") or {}).items():
        headers.extend((name, str(item.get("value", ""))) for item in _values(entry))
    cookies = [
        f"{name}={item.get('value', '')}"
        for name, entry in (request.get("cookies") or {}).items()
        for item in _values(entry)
    ]
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    return headers
