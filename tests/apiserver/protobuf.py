"""The little protobuf the server reads and writes, by hand (no schema, no dependency).

``kubectl auth can-i`` sends its SelfSubjectAccessReview as
``application/vnd.kubernetes.protobuf`` (typed client): :func:`access_review` decodes the few
fields needed. ``/openapi/v2`` is answered as protobuf (see discovery.py): :func:`encode_field`
encodes it. Every other body must be JSON.
"""

from __future__ import annotations

from tests.apiserver.wire import JSON

__all__ = ["Fields", "access_review", "decode", "encode_field", "submessage", "text"]

Fields = dict[int, list[bytes | int]]


def encode_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    out = bytearray([number << 3 | 2])
    n = len(payload)
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + payload


def decode(data: bytes) -> Fields:
    """Decode one protobuf message into {field number: [values]} (no schema needed)."""
    fields: Fields = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            if i >= len(data):
                raise ValueError("truncated protobuf varint")
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        value: bytes | int
        if wire == 0:
            value = varint()
        elif wire == 2:
            length = varint()
            value, i = data[i : i + length], i + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = data[i : i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def submessage(fields: Fields, number: int) -> Fields:
    values = fields.get(number) or [b""]
    value = values[-1]
    return decode(value) if isinstance(value, bytes) else {}


def text(fields: Fields, number: int) -> str:
    values = fields.get(number) or [b""]
    value = values[-1]
    return value.decode() if isinstance(value, bytes) else str(value)


def access_review(data: bytes) -> JSON:
    """A SelfSubjectAccessReview sent as ``application/vnd.kubernetes.protobuf`` (kubectl auth
    can-i uses the typed client, which sends protobuf): the ``k8s\\0`` magic, a
    ``runtime.Unknown`` envelope whose field 2 is the object; spec = 2, resourceAttributes = 1
    (namespace 1, verb 2, group 3, version 4, resource 5, subresource 6, name 7),
    nonResourceAttributes = 2 (path 1, verb 2)."""
    if not data.startswith(b"k8s\x00"):
        raise ValueError("missing the k8s protobuf magic")
    raw = submessage(decode(data[4:]), 2)
    spec = submessage(raw, 2)
    out: JSON = {}
    if 1 in spec:
        attrs = submessage(spec, 1)
        keys = ("namespace", "verb", "group", "version", "resource", "subresource", "name")
        out["resourceAttributes"] = {
            k: text(attrs, n) for n, k in enumerate(keys, 1) if text(attrs, n)
        }
    if 2 in spec:
        attrs = submessage(spec, 2)
        out["nonResourceAttributes"] = {"path": text(attrs, 1), "verb": text(attrs, 2)}
    return {"spec": out}
