"""Label and field selectors, as the real server parses them (``?labelSelector=``,
``?fieldSelector=``) -- a port of k8s.io/apimachinery/pkg/labels' lexer and parser:

- equality: ``a=b``, ``a==b``, ``a!=b`` (``!=`` also matches objects without ``a``);
- sets: ``a in (x,y)``, ``a notin (x)`` (``notin`` also matches objects without ``a``);
- existence: ``a``, ``!a``; integer comparison: ``a>1``, ``a<1``;
- a comma is AND; whitespace separates tokens; ``in``/``notin`` are values after an operator.

A selector that does not parse is a 400 BadRequest with the real message, for example
``unable to parse requirement: found '', expected: ',' or ')'`` or ``unable to parse
requirement: <nil>: Invalid value: "-a": name part must consist of alphanumeric characters,
...``; kubectl prints it as ``Error from server (BadRequest): Unable to find "apps/v1,
Resource=deployments" that match label selector "...", field selector "": <message>``.

Field selectors (a port of k8s.io/apimachinery/pkg/fields): ``=``, ``==`` and ``!=`` terms joined
by commas, values with backslash escapes; each kind names the fields it may select on
(``Kind.selectable_fields``: ``metadata.name`` and ``metadata.namespace`` by default; for
Namespaces ``metadata.name`` and ``status.phase``; for Events ``involvedObject.*``, ``reason``,
``type``, ``source``... -- ``regarding.*`` through ``events.k8s.io``). Another field is the real
400: ``"spec.x" is not a known field selector: only "metadata.name", "metadata.namespace"``
(Namespaces and Events: ``field label not supported: spec.x``); kubectl prints it as ``Error
from server (BadRequest): Unable to find "coordination.k8s.io/v1, Resource=leases" that match
label selector "", field selector "spec.x=y": <message>``. Like a bad label selector, it is
answered as the real server does and not recorded in ``unhandled``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.apiserver.errors import FieldError, aggregate, bad_request
from tests.apiserver.wire import JSON

if TYPE_CHECKING:
    from tests.apiserver.kinds.base import Kind

__all__ = ["Requirement", "field_matcher", "format_selector", "label_matcher", "parse"]

# token kinds: the literal of a symbol or keyword, else these
_ID, _END, _ERROR = "identifier", "end of string", "error"
_TOKENS = frozenset({")", ",", "!", "==", "=", ">", "in", "<", "!=", "notin", "("})
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_BINARY = ("in", "notin", "=", "==", "!=", "gt", "lt")
_OPERATORS = {"in": "in", "notin": "notin", "=": "=", "==": "==", "!=": "!=", ">": "gt", "<": "lt"}

_KEY_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_KEY_NAME_RE = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_VALUE_RE = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_DNS_SUBDOMAIN_RE = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)
_INT = re.compile(r"[+-]?[0-9]+")


def _int64(text: str) -> int | None:
    """``text`` as Go's strconv.ParseInt(text, 10, 64) reads it; None if it does not."""
    if not _INT.fullmatch(text) or not -(2**63) <= int(text) < 2**63:
        return None
    return int(text)


def _regex_error(msg: str, regex: str, *examples: str) -> str:
    """content.RegexError, its double spaces included."""
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{regex}')"


def _label_key_errors(key: str) -> list[str]:
    """content.IsLabelKey: an optional DNS-subdomain prefix and '/', then a name."""
    errs: list[str] = []
    parts = key.split("/")
    if len(parts) > 2:
        return [
            "a valid label key "
            + _regex_error(_KEY_MSG, _KEY_NAME_RE, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix.encode()) > 253:
                errs.append("prefix part must be no more than 253 bytes")
            if not re.fullmatch(_DNS_SUBDOMAIN_RE, prefix):
                errs.append(
                    "prefix part " + _regex_error(_SUBDOMAIN_MSG, _DNS_SUBDOMAIN_RE, "example.com")
                )
    if not name:
        errs.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errs.append("name part must be no more than 63 bytes")
    if not _KEY_NAME.fullmatch(name):
        errs.append(
            "name part " + _regex_error(_KEY_MSG, _KEY_NAME_RE, "MyName", "my.name", "123-abc")
        )
    return errs


def _label_value_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value.encode()) > 63:
        errs.append("must be no more than 63 bytes")
    if value and not _KEY_NAME.fullmatch(value):
        errs.append(_regex_error(_VALUE_MSG, _VALUE_RE, "MyValue", "my_value", "12345"))
    return errs


class _SelectorError(Exception):
    pass


def _lex(selector: str) -> list[tuple[str, str]]:
    """The tokens of ``selector`` as (kind, literal), ending with the end of string. As the Go
    lexer reads bytes and reads a NUL as the end, so does this one."""
    items: list[tuple[str, str]] = []
    pos = 0

    def read() -> str:
        nonlocal pos
        if pos < len(selector):
            pos += 1
            return selector[pos - 1]
        return "\0"

    while True:
        ch = read()
        while ch in _WHITESPACE:
            ch = read()
        if ch == "\0":
            items.append((_END, ""))
            return items
        pos -= 1
        buffer, last = "", ""
        if ch in _SPECIAL:
            while (ch := read()) != "\0":
                if ch not in _SPECIAL:
                    pos -= 1
                    break
                buffer += ch
                if buffer in _TOKENS:
                    last = buffer
                elif last:
                    pos -= 1
                    break
            items.append(
                (last, last) if last else (_ERROR, f"error expected: keyword found '{buffer}'")
            )
            continue
        while (ch := read()) != "\0":
            if ch in _SPECIAL or ch in _WHITESPACE:
                pos -= 1
                break
            buffer += ch
        items.append((buffer, buffer) if buffer in _TOKENS else (_ID, buffer))


@dataclass(frozen=True)
class Requirement:
    """One requirement of a label selector: ``key``, an operator (``=``, ``==``, ``!=``,
    ``in``, ``notin``, ``exists``, ``!``, ``gt``, ``lt``) and sorted values."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op, has = self.operator, self.key in labels
        if op in ("in", "=", "=="):
            return has and labels[self.key] in self.values
        if op in ("notin", "!="):
            return not has or labels[self.key] not in self.values
        if op == "exists":
            return has
        if op == "!":
            return not has
        value = _int64(labels[self.key]) if has else None
        bound = _int64(self.values[0]) if len(self.values) == 1 else None
        if value is None or bound is None:
            return False
        return value > bound if op == "gt" else value < bound


def _requirement(key: str, op: str, values: list[str]) -> Requirement:
    """labels.NewRequirement: check the values (the key is checked as it is read)."""
    values = sorted(set(values))
    errs: list[FieldError] = []
    if op in ("gt", "lt"):
        if len(values) != 1:
            detail = "for 'Gt', 'Lt' operators, exactly one value is required"
            errs.append(FieldError("values", values, detail))
        for i, value in enumerate(values):
            if _int64(value) is None:
                detail = "for 'Gt', 'Lt' operators, the value must be an integer"
                errs.append(FieldError(f"values[{i}]", value, detail))
    for i, value in enumerate(values):
        for_value = _label_value_errors(value)
        if for_value:
            errs.append(FieldError(f"values[{i}][{key}]", value, "; ".join(for_value)))
    if errs:
        raise _SelectorError(aggregate(errs))
    return Requirement(key, op, tuple(values))


class _Parser:
    def __init__(self, selector: str) -> None:
        self.items = _lex(selector)
        self.position = 0

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        kind, literal = self.items[self.position]
        return (_ID if values and kind in ("in", "notin") else kind), literal

    def consume(self, values: bool = True) -> tuple[str, str]:
        token = self.lookahead(values)
        self.position += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.lookahead()
            if kind == _END:
                return requirements
            if kind not in (_ID, "!"):
                raise _SelectorError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )
            try:
                requirements.append(self.requirement())
            except _SelectorError as err:
                raise _SelectorError(f"unable to parse requirement: {err}") from None
            kind, literal = self.consume()
            if kind == _END:
                return requirements
            if kind != ",":
                raise _SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.lookahead()
            if kind not in (_ID, "!"):
                raise _SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        operator = ""
        kind, key = self.consume()
        if kind == "!":
            operator = "!"
            kind, key = self.consume()
        if kind != _ID:
            raise _SelectorError(f"found '{key}', expected: identifier")
        key_errors = _label_key_errors(key)
        if key_errors:
            raise _SelectorError(str(FieldError("<nil>", key, "; ".join(key_errors))))
        if self.lookahead()[0] in (_END, ","):
            return _requirement(key, operator or "exists", [])
        if operator:
            return _requirement(key, operator, [])
        kind, literal = self.consume(values=False)
        if kind not in _OPERATORS:
            raise _SelectorError(f"found '{literal}', expected: {', '.join(_BINARY)}")
        operator = _OPERATORS[kind]
        values = self.set_values() if operator in ("in", "notin") else self.exact_value()
        return _requirement(key, operator, values)

    def set_values(self) -> list[str]:
        kind, literal = self.consume()
        if kind != "(":
            raise _SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.lookahead()
        if kind == ")":
            self.consume()
            return [""]
        if kind not in (_ID, ","):
            raise _SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.consume()[0] != ")":
            raise _SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> list[str]:
        values: list[str] = []
        while True:
            kind, literal = self.consume()
            if kind == _ID:
                values.append(literal)
                kind2, literal2 = self.lookahead()
                if kind2 == ")":
                    return values
                if kind2 != ",":
                    raise _SelectorError(f"found '{literal2}', expected: ',' or ')'")
            elif kind == ",":
                if not values:
                    values.append("")  # "(,"
                kind2, _ = self.lookahead()
                if kind2 == ")":
                    values.append("")  # ",)"
                    return values
                if kind2 == ",":
                    self.consume()
                    values.append("")  # ",,"
            else:
                raise _SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> list[str]:
        if self.lookahead()[0] in (_END, ","):
            return [""]
        kind, literal = self.consume()
        if kind == _ID:
            return [literal]
        raise _SelectorError(f"found '{literal}', expected: identifier")


def parse(selector: str) -> list[Requirement]:
    """The requirements of a label selector; 400 BadRequest with the real message if it does
    not parse."""
    try:
        return _Parser(selector).parse()
    except _SelectorError as err:
        raise bad_request(str(err)) from None


def label_matcher(selector: str) -> Callable[[Mapping[str, str]], bool]:
    """Whether an object's labels match ``selector`` (every requirement: AND)."""
    requirements = parse(selector)
    return lambda labels: all(r.matches(labels) for r in requirements)


def _field_terms(selector: str) -> list[str]:
    """fields.splitTerms: split at commas a backslash does not escape."""
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(selector):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return terms


def _field_term(term: str) -> tuple[str, str, str] | None:
    """fields.splitTerm: the first operator (``!=``, ``==``, ``=``) from the left."""
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _field_value(value: str) -> str:
    """fields.UnescapeValue: a backslash escapes a backslash, a comma or an equals sign; a bare
    comma or equals sign is refused."""
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def field_matcher(selector: str, kind: Kind) -> Callable[[JSON], bool]:
    """Whether an object matches a field selector, as the real server reads one: terms
    ``field=value``, ``field==value``, ``field!=value`` joined by commas (AND), values with
    backslash escapes. A term without an operator is a 400 ``invalid selector: ...``; a field the
    kind cannot select on is a 400 with the kind's message (``kind.unsupported_field``)."""
    terms: list[tuple[str, bool, str]] = []  # (field, equal, value)
    for part in sorted(_field_terms(selector)):
        if not part:
            continue
        split = _field_term(part)
        if split is None:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        label, op, value = split
        terms.append((label, op != "!=", _field_value(value)))
    for label, _, _ in terms:
        if label not in kind.selectable_fields:
            raise bad_request(kind.unsupported_field(label))
    return lambda obj: all(
        (kind.field_value(obj, label) == value) == equal for label, equal, value in terms
    )


def format_selector(selector: object) -> str:
    """A LabelSelector's ``matchLabels`` as a selector string (``app=web``); "" without."""
    labels = selector.get("matchLabels") if isinstance(selector, dict) else None
    if not isinstance(labels, dict):
        return ""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
