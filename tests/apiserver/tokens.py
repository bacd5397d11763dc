"""Bearer tokens of the cluster's other clients: what a TokenReview answers.

kubectl itself is served as ``ApiServer.user`` (see server.py, Authentication); the tokens a test
registers with ``add_token`` are those of other users and service accounts, which a program
holding them (``nsscale serve --kubernetes-auth``) asks the cluster about with a TokenReview
(kinds/reviews.py). ``revoke_token`` makes a token unknown again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["TokenUser", "Tokens"]


@dataclass(frozen=True)
class TokenUser:
    """Who a token authenticates as."""

    user: str
    groups: tuple[str, ...] = ("system:authenticated",)
    uid: str = ""


class Tokens:
    """The registered tokens of :class:`~tests.apiserver.server.ApiServer` (a mixin)."""

    _lock: threading.RLock
    _tokens: dict[str, TokenUser]

    def add_token(
        self,
        token: str,
        user: str,
        groups: tuple[str, ...] = ("system:authenticated",),
        uid: str = "",
    ) -> TokenUser:
        """From now on a TokenReview of ``token`` answers: authenticated as ``user``."""
        found = TokenUser(user, groups, uid or f"uid-{user}")
        with self._lock:
            self._tokens[token] = found
        return found

    def revoke_token(self, token: str) -> None:
        """A TokenReview of ``token`` answers: not authenticated."""
        with self._lock:
            self._tokens.pop(token, None)

    def authenticate(self, token: str) -> TokenUser | None:
        """Who ``token`` authenticates as, or None."""
        with self._lock:
            return self._tokens.get(token)
