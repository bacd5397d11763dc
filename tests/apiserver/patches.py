"""Patches, as the real server applies them to an object (or a Scale):

- ``application/merge-patch+json``: RFC 7386, ``null`` deletes;
- ``application/strategic-merge-patch+json``: the merge patch, plus: lists of objects are
  merged by their ``name`` key, ``$patch: replace|delete`` is honoured in maps, other ``$``
  directives are dropped (a simplification: no per-field patch strategies);
- ``application/json-patch+json``: RFC 6902 (add, remove, replace, move, copy, test).

A ``metadata.resourceVersion`` in a patch is a precondition, checked by the update it turns
into. Server-side apply (``application/apply-patch+yaml``) is not served: 415, recorded in
``unhandled``.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.apiserver.errors import ApiError
from tests.apiserver.request import Request, json_body
from tests.apiserver.wire import JSON, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH

__all__ = ["PatchError", "apply_patch", "json_patch", "merge_patch", "strategic_merge_patch"]


class PatchError(Exception):
    """A patch that does not apply (answered 422)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A strategic merge patch, simplified (see the module docstring)."""
    if isinstance(patch, list):
        if (
            isinstance(target, list)
            and patch
            and all(isinstance(p, dict) and "name" in p for p in patch)
            and all(isinstance(t, dict) for t in target)
        ):
            merged = [copy.deepcopy(t) for t in target]
            index = {t.get("name"): i for i, t in enumerate(merged)}
            for item in patch:
                if item.get("$patch") == "delete":
                    merged = [m for m in merged if m.get("name") != item["name"]]
                    index = {t.get("name"): i for i, t in enumerate(merged)}
                elif item["name"] in index:
                    merged[index[item["name"]]] = strategic_merge_patch(
                        merged[index[item["name"]]], item
                    )
                else:
                    merged.append(strategic_merge_patch({}, item))
                    index[item["name"]] = len(merged) - 1
            return merged
        return copy.deepcopy(patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(doc)

    def parent(d: Any, parts: list[str]) -> tuple[Any, str]:
        if not parts:
            raise PatchError("cannot operate on the document root")
        for p in parts[:-1]:
            if isinstance(d, dict) and p in d:
                d = d[p]
            elif isinstance(d, list) and p.isdigit() and int(p) < len(d):
                d = d[int(p)]
            else:
                raise PatchError(f"doc is missing path: /{'/'.join(parts)}")
        return d, parts[-1]

    def get(d: Any, parts: list[str]) -> Any:
        for p in parts:
            if isinstance(d, dict) and p in d:
                d = d[p]
            elif isinstance(d, list) and p.isdigit() and int(p) < len(d):
                d = d[int(p)]
            else:
                raise PatchError(f"doc is missing path: /{'/'.join(parts)}")
        return d

    def remove(d: Any, parts: list[str]) -> Any:
        container, key = parent(d, parts)
        if isinstance(container, dict) and key in container:
            return container.pop(key)
        if isinstance(container, list) and key.isdigit() and int(key) < len(container):
            return container.pop(int(key))
        raise PatchError(
            f"remove operation does not apply: doc is missing path: /{'/'.join(parts)}"
        )

    def add(d: Any, parts: list[str], value: Any) -> None:
        container, key = parent(d, parts)
        if isinstance(container, dict):
            container[key] = value
        elif isinstance(container, list):
            if key == "-":
                container.append(value)
            elif key.isdigit() and int(key) <= len(container):
                container.insert(int(key), value)
            else:
                raise PatchError(f"add operation does not apply: index out of range: {key}")
        else:
            raise PatchError(
                f"add operation does not apply: doc is missing path: /{'/'.join(parts)}"
            )

    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("invalid json patch operation")
        kind, parts = op["op"], _pointer(str(op["path"]))
        if kind == "add":
            add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            remove(doc, parts)
        elif kind == "replace":
            remove(doc, parts)
            add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "move":
            add(doc, parts, remove(doc, _pointer(str(op.get("from", "")))))
        elif kind == "copy":
            add(doc, parts, copy.deepcopy(get(doc, _pointer(str(op.get("from", ""))))))
        elif kind == "test":
            if get(doc, parts) != op.get("value"):
                raise PatchError(f"testing value {op['path']} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


def apply_patch(req: Request, doc: JSON) -> Any:
    """``doc`` patched with the request's body, by its Content-Type."""
    content_type = req.headers.get("Content-Type", "").split(";")[0].strip()
    patch = json_body(req)
    try:
        if content_type == MERGE_PATCH:
            return merge_patch(doc, patch)
        if content_type == STRATEGIC_PATCH:
            if req.subresource is None and not isinstance(patch, dict):
                raise PatchError("strategic merge patch must be a JSON object")
            return strategic_merge_patch(doc, patch)
        if content_type == JSON_PATCH:
            return json_patch(doc, patch)
    except PatchError as err:
        raise ApiError(422, "Invalid", str(err)) from None
    raise ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media "
        f"types include: {JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_PATCH}",
        unhandled=True,
    )
