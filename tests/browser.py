"""The browser of the page's tests and screenshot: Debian's `chromium` (/usr/bin/chromium, from
apt; `.ci/run` installs it), driven by Playwright from PyPI. Never `playwright install`: it
downloads a browser, and the machines that run these tests have no such download.

Also the small fleet both of them show: a few namespaces with schedules, in the local API server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from playwright.sync_api import Browser, Playwright

from nsscale.kube.objects import LAST_RUN
from tests.apiserver.server import ApiServer
from tests.faultkit import Key, seed

CHROMIUM = Path(os.environ.get("NSSCALE_CHROMIUM", "/usr/bin/chromium"))
INSTALL = (
    "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive "
    "apt-get install -y --no-install-recommends chromium"
)
CHROMIUM_ARGS = (
    "--no-sandbox",  # CI runs as root in a container: Chromium's sandbox needs user namespaces
    "--disable-background-networking",  # no call home: the tests record every request
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
)

# A run the in-cluster scheduler made, as the Namespace's nsscale/last-run keeps it
SCHEDULER_RUN = {
    "run_id": "20261207T060002Z-4f1c",
    "operation": "down",
    "outcome": "success",
    "exit_code": 0,
    "at": "2026-12-07T06:00:02Z",
    "by": "system:serviceaccount:nsscale:scheduler",
}

# The fleet: (namespace, its annotations, its workloads)
FLEET: tuple[tuple[str, dict[str, str], dict[Key, int]], ...] = (
    (
        "shop",
        {"nsscale/uptime": "Mon-Fri 08:00-20:00 Europe/Berlin"},
        {("deployment", "web"): 3, ("deployment", "api"): 2, ("statefulset", "db"): 1},
    ),
    (
        "batch",  # a night shift: its window crosses midnight; its last run made elsewhere
        {"nsscale/uptime": "Mon-Fri 22:00-06:00 UTC", LAST_RUN: json.dumps(SCHEDULER_RUN)},
        {("deployment", "worker"): 2, ("deployment", "scheduler"): 1},
    ),
    (
        "preview-42",
        {
            "nsscale/downtime": (
                "Sun-Fri 19:00-07:00 America/New_York, Sat-Sun 00:00-24:00 America/New_York"
            )
        },
        {("deployment", "web"): 1, ("statefulset", "db"): 1},
    ),
    (
        "faulty",
        {},
        {("deployment", "web"): 2, ("statefulset", "db"): 1},
    ),
)


class BrowserMissing(AssertionError):
    """The browser is not installed: the tests fail (never skip) and say how to install it."""


def launch(playwright: Playwright) -> Browser:
    if not CHROMIUM.is_file():
        raise BrowserMissing(
            f"the page's browser tests need Debian's chromium at {CHROMIUM}, which is missing: "
            f"install it with `{INSTALL}` (.ci/run does), never with `playwright install`"
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
    )


def seed_fleet(server: ApiServer) -> None:
    for namespace, schedule, workloads in FLEET:
        seed(server, namespace, workloads)
        if schedule:
            server.add_namespace(namespace, annotations=schedule)
