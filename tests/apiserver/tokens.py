"""Bearer tokens of the cluster's other clients: what a TokenReview answers.

kubectl itself is served as ``ApiServer.user`` (see server.py, Authentication); the tokens a test
registers with ``add_token`` are those of other users and service accounts, which a program
holding them (``nsscale serve --kubernetes-auth``) asks the cluster about with a TokenReview
(kinds/reviews.py). ``revoke_token`` makes a token unknown again.

A token is minted for audiences (``kubectl create token SA --audience AUD``): by default the API
server's own, API_AUDIENCES, as a service account's token or a static token is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["API_AUDIENCES", "TokenUser", "Tokens"]

API_AUDIENCES = ("https://kubernetes.default.svc.cluster.local",)  # the API server's own


@dataclass(frozen=True)
class TokenUser:
    """Who a token authenticates as."""

    user: str
    groups: tuple[str, ...] = ("system:authenticated",)
    uid: str = ""
    audiences: tuple[str, ...] = API_AUDIENCES


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
        audiences: tuple[str, ...] = API_AUDIENCES,
    ) -> TokenUser:
        """From now on a TokenReview of ``token`` answers: authenticated as ``user``, for a
        review asking one of ``audiences`` (or none)."""
        found = TokenUser(user, groups, uid or f"uid-{user}", tuple(audiences))
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
