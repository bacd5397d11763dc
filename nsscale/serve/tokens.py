"""The token file of `nsscale serve --token-file`: static bearer tokens, each allowed some
namespaces.

One token per line, then the namespace globs it may act on (none: every namespace); a word
starting with `#` starts a comment, and a comment after a token names its holder in the access
log and the audit (else `line N`):

    # who may sleep what
    3f9c0a...e1   preview-* pr-*   # ci-pipeline
    8d21b7...4a                    # platform-team

Only a SHA-256 digest of each token is kept, and a token presented is compared with every
digest in constant time (hmac.compare_digest, no early exit): neither its content nor which
line it matches shows in the answer's timing. The file is read again when it changes (its
mtime, ctime, size or inode), checked at each request; a file that cannot be read, or one with
a bad line, lets nobody in until it is fixed (a revoked token must not live on).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
import threading
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from nsscale.errors import TokenFileError

log = logging.getLogger("nsscale")
notice = logging.getLogger("nsscale.serve")  # the server's own lines, always shown (accesslog.py)

SHORT_TOKEN = 16  # a token shorter than this is easy to guess: warned of
_GLOB = re.compile(r"[a-z0-9*?\[\]!-]+")  # what can match an RFC 1123 label


@dataclass(frozen=True)
class TokenEntry:
    digest: bytes  # SHA-256 of the token: the token itself is not kept
    globs: tuple[str, ...]  # () = every namespace
    holder: str  # the comment after the token, else "line N"

    def may(self, namespace: str) -> bool:
        return not self.globs or any(fnmatchcase(namespace, g) for g in self.globs)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def parse_tokens(text: str, source: str) -> tuple[TokenEntry, ...]:
    """The entries of a token file's text; TokenFileError naming the first bad line."""
    entries: list[TokenEntry] = []
    seen: dict[bytes, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words, comment = _split(line)
        if not words:
            continue
        token, globs = words[0], tuple(words[1:])
        where = f"{source} line {number}"
        for glob in globs:
            if not _GLOB.fullmatch(glob):
                raise TokenFileError(
                    f"{where}: {glob!r} is not a namespace glob",
                    "globs use lowercase letters, digits, '-' and * ? [ ]; for example preview-*",
                )
        hashed = digest(token)
        if hashed in seen:
            raise TokenFileError(f"{where}: the same token as line {seen[hashed]}")
        seen[hashed] = number
        if len(token) < SHORT_TOKEN:
            log.warning(
                "%s: a token of %d characters is easy to guess; use 32 random ones "
                "(openssl rand -hex 32)",
                where,
                len(token),
            )
        entries.append(TokenEntry(hashed, globs, comment or f"line {number}"))
    return tuple(entries)


def _split(line: str) -> tuple[list[str], str]:
    """The words before the comment, and the comment (stripped of its `#`)."""
    words = line.split()
    for i, word in enumerate(words):
        if word.startswith("#"):
            comment = " ".join(words[i:]).lstrip("#").strip()
            return words[:i], comment
    return words, ""


class TokenFile:
    """The tokens of a file as it is now: read at start (TokenFileError when it cannot be, or
    holds no token), then again whenever a request finds it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._key: tuple[int, ...] | None = self._stat_key()
        self._entries = self._read()
        if not self._entries:
            raise TokenFileError(
                f"the token file {path} holds no token",
                "one token per line, then the namespace globs it may act on",
            )
        self._warn_if_readable_by_others()

    def find(self, token: str) -> TokenEntry | None:
        """The entry of `token`, or None; every entry is compared, in constant time."""
        hashed = digest(token)
        found = None
        for entry in self.entries():
            if hmac.compare_digest(entry.digest, hashed):
                found = entry  # no break: the time taken does not say which line matched
        return found

    def entries(self) -> tuple[TokenEntry, ...]:
        """The entries as the file is now: read again when it changed since."""
        with self._lock:
            try:
                key = self._stat_key()
            except TokenFileError as err:
                return self._unusable(None, err)
            if key != self._key:
                try:
                    entries = self._read()
                except TokenFileError as err:
                    return self._unusable(key, err)
                self._key, self._entries = key, entries
                notice.info("token file %s changed: %d token(s) now", self.path, len(entries))
            return self._entries

    def _unusable(self, key: tuple[int, ...] | None, err: TokenFileError) -> tuple[()]:
        """Nobody gets in while the file cannot be used; said once per change of the file."""
        if self._entries or key != self._key:
            log.error("%s; every request is refused until it is fixed", err.message)
        self._key, self._entries = key, ()
        return ()

    def _stat_key(self) -> tuple[int, ...]:
        try:
            found = os.stat(self.path)
        except OSError as exc:
            raise TokenFileError(
                f"cannot read the token file {self.path}: {exc.strerror}",
                "check --token-file",
            ) from exc
        return (found.st_mtime_ns, found.st_ctime_ns, found.st_size, found.st_ino)

    def _read(self) -> tuple[TokenEntry, ...]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise TokenFileError(
                f"cannot read the token file {self.path}: {why}", "check --token-file"
            ) from exc
        return parse_tokens(text, str(self.path))

    def _warn_if_readable_by_others(self) -> None:
        mode = stat.S_IMODE(os.stat(self.path).st_mode)
        if mode & 0o077:
            log.warning(
                "the token file %s can be read by others (mode %04o): chmod 600 %s",
                self.path,
                mode,
                self.path,
            )
