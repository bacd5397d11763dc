"""What an answer of `nsscale serve` may say of the server: nothing (redact.py). kubectl's own
error texts, as it prints them, with the server's addresses, files, host, pid and account."""

from __future__ import annotations

import socket

import pytest

from nsscale.serve.redact import redact, redacted

HOST = socket.gethostname()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "deployment/web: Unable to connect to the server: dial tcp 10.0.3.7:6443: connect: "
            "connection refused",
            "deployment/web: Unable to connect to the server: dial tcp <address>: connect: "
            "connection refused",
        ),
        (
            'Get "https://api.example.internal:6443/apis/apps/v1/namespaces/shop/deployments": EOF',
            'Get "<address>": EOF',
        ),
        (
            'error loading config file "/home/nsscale/.kube/config": permission denied',
            'error loading config file "<path>": permission denied',
        ),
        (
            'statefulsets.apps "db" is forbidden: User "system:serviceaccount:nsscale:nsscale" '
            'cannot update resource "statefulsets" in API group "apps"',
            'statefulsets.apps "db" is forbidden: User "<the server>" cannot update resource '
            '"statefulsets" in API group "apps"',
        ),
        (
            f"another nsscale run is working on shop: `down` by root@{HOST} pid 27442",
            "another nsscale run is working on shop: `down` by root@<host> pid <hidden>",
        ),
        (
            "The connection to the server localhost:8080 was refused",
            "The connection to the server <address> was refused",
        ),
        ("dial tcp [fd00::1]:6443: i/o timeout", "dial tcp <address>: i/o timeout"),
    ],
)
def test_kubectl_s_errors_lose_what_names_the_server(text: str, says: str) -> None:
    assert redact(text) == says


def test_what_names_a_workload_or_a_kind_stays() -> None:
    kept = [
        "deployment/web: scaled 3 -> 0",
        "kustomization/flux-system/apps: suspended",
        "not allowed to update apps/statefulsets in namespace shop",
        "started 2026-12-07 18:30:00 UTC",
    ]
    assert [redact(t) for t in kept] == kept
    assert redacted({"errors": [f"on {HOST}"], "count": 3}) == {"errors": ["on <host>"], "count": 3}
