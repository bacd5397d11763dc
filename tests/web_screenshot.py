"""The README's screenshot of the page: `python -m tests.web_screenshot [docs/screenshot.png]`.

Starts the local API server with the small fleet of tests/browser.py, a real `nsscale serve`
with the real kubectl, and Debian's chromium (Playwright); puts one namespace to sleep, holds
another awake for 4 h, presses Sleep on a namespace whose StatefulSet cannot be written (the
answer shows its rollback), and saves the page as a PNG.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.apiserver.server import ApiServer
from tests.browser import FLEET, launch, seed_fleet
from tests.faultkit import nsscale_env
from tests.test_serve import ADMIN, Served, token_file

OUT = Path("docs/screenshot.png")
WIDTH, HEIGHT = 1200, 1100  # the first screen: under 200 KB for the README


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    kubectl = Path(sys.executable).parent / "kubectl"
    with ApiServer() as cluster, tempfile.TemporaryDirectory(prefix="nsscale-page-") as tmp:
        seed_fleet(cluster)
        home = Path(tmp)
        env = nsscale_env(
            cluster.write_kubeconfig(home / "kubeconfig"),
            kubectl,
            XDG_STATE_HOME=str(home / "state"),
        )
        # the on-call's token sees the team's namespaces (not `default`)
        team = " ".join(namespace for namespace, _, _ in FLEET)
        tokens = token_file(home / "tokens", f"{ADMIN} {team} # on-call\n")
        served = Served(env, "--token-file", str(tokens))
        try:
            served.post("preview-42", "deactivate")
            served.post("shop", "deactivate")
            served.request("POST", "/api/namespaces/shop/activate", '{"hold": "4h"}')
            cluster.fail("PUT", "statefulsets", "db", namespace="faulty", status=500, times=None)
            with sync_playwright() as playwright:
                browser = launch(playwright)
                page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
                page.goto(f"http://127.0.0.1:{served.port}/")
                page.fill("#token", ADMIN)
                page.press("#token", "Enter")
                faulty = 'section.ns[data-namespace="faulty"]'
                page.click(f'{faulty} button[data-action="sleep"]')
                page.click(f'{faulty} button[data-action="confirm"]')
                page.wait_for_selector(f"{faulty} .answer-failed")
                page.wait_for_selector(f'{faulty} button[data-action="sleep"]:not([disabled])')
                page.evaluate("document.activeElement.blur()")
                page.screenshot(path=str(out))
                browser.close()
        finally:
            served.stop()
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
