"""API errors, answered as ``Status`` objects with the real server's reasons and messages.

The constructors name an object the way the real server does (``deployments.apps "a" not
found``); :class:`FieldError` formats one field error as apimachinery's ``field.Error`` does
(``spec.replicas: Invalid value: -1: must be greater than or equal to 0``), Go quoting
included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.apiserver.wire import JSON

if TYPE_CHECKING:
    from tests.apiserver.kinds.base import ResourceType

__all__ = [
    "REASONS",
    "ApiError",
    "FieldError",
    "NoAnswer",
    "already_exists",
    "bad_request",
    "conflict",
    "details",
    "go_quote",
    "go_type",
    "invalid",
    "method_not_allowed",
    "not_found",
    "timeout_error",
    "unknown_path",
]


class ApiError(Exception):
    """An API error answered as a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        *,
        unhandled: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.unhandled = unhandled
        self.headers = dict(headers or {})

    def status(self) -> JSON:
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        body["details"] = self.details if self.details is not None else {}
        body["code"] = self.code
        return body


class NoAnswer(Exception):
    """The client hung up (or the server is stopping) before the answer: send none."""


_GO_ESCAPES = {c: "\\" + e for c, e in zip("\a\b\f\n\r\t\v", "abfnrtv", strict=True)}


def go_quote(text: str) -> str:
    """``text`` as Go's ``%q`` prints it (strconv.Quote)."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_type(value: Any) -> str:
    """The JSON type encoding/json names in ``cannot unmarshal <type> into Go struct field``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "value"


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error``: ``<field>: Invalid value: <value>: <detail>``; with ``reason``
    FieldValueRequired, ``<field>: Required value: <detail>``; FieldValueNotSupported,
    ``<field>: Unsupported value: "<value>": <detail>``."""

    field: str
    value: Any
    detail: str
    reason: str = "FieldValueInvalid"

    def body(self) -> str:
        """The message without the field, as ``field.Error.ErrorBody``."""
        if self.reason == "FieldValueRequired":
            return f"Required value: {self.detail}" if self.detail else "Required value"
        if self.reason == "FieldValueNotSupported":
            return f"Unsupported value: {go_quote(str(self.value))}: {self.detail}"
        value = self.value
        if isinstance(value, str):
            shown = go_quote(value)
        elif isinstance(value, bool):
            shown = "true" if value else "false"
        elif isinstance(value, int | float):
            shown = str(value)
        else:
            shown = json.dumps(value, separators=(",", ":"))
        return (
            f"Invalid value: {shown}: {self.detail}" if self.detail else f"Invalid value: {shown}"
        )

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def aggregate(errors: Sequence[object]) -> str:
    """Several errors as apimachinery's aggregate prints them: one alone, else ``[a, b]``;
    repeated messages once."""
    messages = list(dict.fromkeys(str(e) for e in errors))
    return messages[0] if len(messages) == 1 else f"[{', '.join(messages)}]"


def details(rt: ResourceType, name: str | None, **extra: Any) -> JSON:
    out: JSON = {}
    if name:
        out["name"] = name
    if rt.group:
        out["group"] = rt.group
    out["kind"] = rt.plural
    out.update(extra)
    return out


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', details(rt, name))


def conflict(rt: ResourceType, name: str, why: str | None = None) -> ApiError:
    why = why or (
        "the object has been modified; please apply your changes to the latest "
        "version and try again"
    )
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
        details(rt, name),
    )


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', details(rt, name)
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> ApiError:
    """422 Invalid, as ``errors.NewInvalid``: kubectl prints ``The <Kind> "<name>" is invalid:
    <field>: <body>`` from the causes."""
    qualified = f"{kind}.{group}" if group else kind
    out: JSON = {}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    out["kind"] = kind
    out["causes"] = [{"reason": e.reason, "message": e.body(), "field": e.field} for e in errors]
    message = f'{qualified} "{name}" is invalid: {aggregate(errors)}'
    return ApiError(422, "Invalid", message, out)


def timeout_error() -> ApiError:
    """The real server's answer when a request's ``?timeout=`` runs out (its write not done)."""
    return ApiError(504, "Timeout", "Timeout: request did not complete within the allotted timeout")


def unknown_path() -> ApiError:
    return ApiError(
        404, "NotFound", "the server could not find the requested resource", unhandled=True
    )


def method_not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        unhandled=True,
    )


# The reason and message of an injected failure of each status code.
REASONS = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "the resource version is too old"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected failure"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, "
        "but may still be processing the request",
    ),
}
