"""Is there a kubeconfig kubectl can use? Told by reading the files, without running kubectl.

With no kubeconfig file, or one with no current context, or whose context's cluster has no
server, kubectl falls back to http://localhost:8080 and says only "The connection to the server
localhost:8080 was refused": nsscale would retry that as a passing failure. The executor asks
here when kubectl says so (never on a run that works: no cost then), and turns it into bad
input naming the file and the fix.

kubectl's rules: `--kubeconfig FILE`, else `$KUBECONFIG` (a list of files; those missing are
skipped; the first file that sets a value wins), else ~/.kube/config. Kubeconfigs are YAML as
kubectl writes it (block style) or JSON; one this reader cannot follow is left to kubectl.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from nsscale.errors import KubeconfigError

FIX = "point $KUBECONFIG or --kubeconfig at your cluster's kubeconfig"


def kubeconfig_problem(kubeconfig: str | None, context: str | None) -> KubeconfigError | None:
    """Why kubectl has no cluster to talk to with this --kubeconfig (or kubectl's default
    files) and --context, or None when the files name one (or cannot be read here)."""
    files, named = _files(kubeconfig)
    found = [f for f in files if f.is_file()]
    where = ", ".join(str(f) for f in files)
    if not found:
        what = "does not exist" if len(files) == 1 else "do not exist"
        return _problem(f"{named} {where}, which {what}", where)
    merged: dict[str, Any] = {"contexts": {}, "clusters": {}}
    for path in found:
        try:
            config = _parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None  # kubectl's own message says more
        merged["current"] = merged.get("current") or config.get("current-context") or ""
        for section in ("contexts", "clusters"):
            for entry in config.get(section) or []:
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    merged[section].setdefault(entry["name"], entry.get(section[:-1]) or {})
    where = ", ".join(str(f) for f in found)
    chosen = context or merged["current"]
    if not chosen:
        return _problem(
            f"{where} has no current context",
            where,
            "choose one: kubectl config use-context NAME, or --context NAME",
        )
    ctx = merged["contexts"].get(chosen)
    if not isinstance(ctx, dict):
        return None if context else _problem(f"its current context {chosen!r} is not in it", where)
    cluster_name = ctx.get("cluster")
    cluster = merged["clusters"].get(cluster_name)
    if not (isinstance(cluster, dict) and cluster.get("server")):
        return _problem(
            f"the cluster {cluster_name!r} of context {chosen!r} in {where} has no server",
            where,
            f"set it: kubectl config set-cluster {cluster_name} --server=https://HOST:PORT",
        )
    return None


def _problem(what: str, where: str, fix: str = FIX) -> KubeconfigError:
    return KubeconfigError(f"no usable kubeconfig: {what}; {fix}", kubeconfig=where)


def _files(kubeconfig: str | None) -> tuple[list[Path], str]:
    if kubeconfig:
        return [Path(kubeconfig)], "--kubeconfig names"
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return [Path(p) for p in listed], "$KUBECONFIG names"
    return [Path.home() / ".kube" / "config"], "there is no $KUBECONFIG, and"


def _parse(text: str) -> dict[str, Any]:
    """A kubeconfig as JSON or block-style YAML; ValueError for anything else."""
    if text.lstrip().startswith("{"):
        document = json.loads(text)
    else:
        lines = list(_lines(text))
        document, end = _block(lines, 0, 0) if lines else ({}, 0)
        if end != len(lines):
            raise ValueError(f"cannot read line {lines[end][2]}")
    if not isinstance(document, dict):
        raise ValueError("not a mapping")
    return document


Line = tuple[int, str, int]  # (indent, text, line number)


def _lines(text: str) -> Iterator[Line]:
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError("a tab in the indentation")
        yield len(raw) - len(raw.lstrip()), stripped, number


def _block(lines: Sequence[Line], i: int, indent: int) -> tuple[Any, int]:
    """The mapping or sequence starting at line i, whose lines are indented `indent`."""
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        items: list[Any] = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1][:1] == "-":
            rest = lines[i][1][1:].lstrip()
            inner = indent + len(lines[i][1]) - len(rest)
            if not rest:
                value, i = _nested(lines, i + 1, indent)
            elif ":" in _unquoted(rest) or rest.startswith('"'):
                # "- key: value": a mapping whose first line shares the dash's
                value, i = _block(
                    [*lines[:i], (inner, rest, lines[i][2]), *lines[i + 1 :]], i, inner
                )
            else:
                value, i = _scalar(rest), i + 1
            items.append(value)
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
        key, sep, rest = _split(lines[i][1])
        if not sep:
            raise ValueError(f"line {lines[i][2]} is not `key: value`")
        if rest:
            mapping[key], i = _scalar(rest), i + 1
        else:
            mapping[key], i = _nested(lines, i + 1, indent, sequence_here=True)
    return mapping, i


def _nested(
    lines: Sequence[Line], i: int, indent: int, sequence_here: bool = False
) -> tuple[Any, int]:
    """The value under a key (or dash) with nothing after it: a deeper block, or a sequence at
    the same indent (YAML allows `key:` then `- item` beneath it, as kubectl writes)."""
    if i < len(lines) and lines[i][0] > indent:
        return _block(lines, i, lines[i][0])
    if sequence_here and i < len(lines) and lines[i][0] == indent and lines[i][1][:1] == "-":
        return _block(lines, i, indent)
    return None, i


def _split(text: str) -> tuple[str, str, str]:
    """`key: value` (the key maybe quoted) into key, ':' and value; no ':' when not one."""
    if text[:1] in "\"'":
        end = text.index(text[0], 1)
        key, after = text[1:end], text[end + 1 :].lstrip()
        return (key, ":", after[1:].strip()) if after.startswith(":") else (key, "", "")
    position = _unquoted(text).find(": ")
    if position < 0:
        return (text[:-1], ":", "") if text.endswith(":") else (text, "", "")
    return text[:position], ":", text[position + 2 :].strip()


def _unquoted(text: str) -> str:
    """The text with a trailing comment cut (a plain scalar's ` #`)."""
    cut = text.find(" #")
    return text if cut < 0 else text[:cut]


def _scalar(text: str) -> Any:
    text = _unquoted(text).strip() if text[:1] not in "\"'" else text
    if text in ("{}", "[]"):
        return {} if text == "{}" else []
    if text[:1] == '"':
        return json.loads(text[: text.rindex('"') + 1])
    if text[:1] == "'":
        return text[1 : text.rindex("'")].replace("''", "'")
    if text[:1] in "{[&*!|>":
        raise ValueError(f"cannot read {text[:20]!r}")
    return "" if text in ("null", "~", '""') else text
