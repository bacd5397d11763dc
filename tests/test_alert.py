"""--on-failure: the alert hook runs when a run ends badly, with the report on its stdin, and its
own failure is only a warning."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

import pytest

from nsscale.commands.alert import alert
from tests.apiserver.server import ApiServer
from tests.faultkit import observe, run, untouched

NS = "shop"
SPEC = {("deployment", "web"): 3, ("statefulset", "db"): 1}

# The hook: stdin and its environment into a file, something on stdout, then exit $1.
HOOK = """
import json, os, sys
with open(sys.argv[1], "w") as out:
    json.dump({"stdin": json.load(sys.stdin), "exit": os.environ["NSSCALE_EXIT_CODE"],
               "namespace": os.environ["NSSCALE_NAMESPACE"]}, out)
print("paged the on-call engineer")
sys.exit(int(sys.argv[2]))
"""


def hook(tmp_path: Path, exit_code: int = 0) -> tuple[str, Path]:
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    seen = tmp_path / "seen.json"
    return shlex.join([sys.executable, str(script), str(seen), str(exit_code)]), seen


@pytest.mark.e2e
def test_a_failed_run_calls_the_hook_with_its_report(
    shop: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    shop.fail("PUT", "statefulsets", "db", status=500, times=None)
    command, seen = hook(tmp_path)

    done = run(env, "down", NS, "--retries", "0", "--on-failure", command, "-o", "json")

    assert done.code == 1, str(done)
    report = json.loads(done.stdout)  # the hook's own output went to stderr
    assert "paged the on-call engineer" in done.stderr
    called = json.loads(seen.read_text())
    assert (called["exit"], called["namespace"]) == ("1", NS)
    assert called["stdin"] == report
    assert observe(shop, NS) == untouched(SPEC)


@pytest.mark.e2e
def test_a_successful_run_calls_no_hook(
    shop: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    command, seen = hook(tmp_path)
    done = run(env, "down", NS, "--on-failure", command)
    assert done.code == 0, str(done)
    assert not seen.exists()


@pytest.mark.e2e
def test_a_failing_hook_is_a_warning_and_keeps_the_exit_code(
    shop: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    shop.fail("PUT", "statefulsets", "db", status=500, times=None)
    command, _ = hook(tmp_path, exit_code=5)
    done = run(env, "down", NS, "--retries", "0", "--on-failure", command)
    assert done.code == 1, str(done)
    assert f"the --on-failure command `{command}` exited 5" in done.stderr


@pytest.mark.e2e
def test_an_unreadable_hook_is_bad_input_and_changes_nothing(
    shop: ApiServer, env: dict[str, str]
) -> None:
    done = run(env, "down", NS, "--on-failure", "page 'on-call")
    assert done.code == 2, str(done)
    assert "cannot read --on-failure" in done.stderr
    assert observe(shop, NS) == untouched(SPEC)


def test_a_hook_that_hangs_is_stopped_and_one_that_is_missing_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="nsscale")
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    alert(sleeper, {"success": False}, 3, [NS], timeout_s=0.3)
    alert(["/nonexistent/page"], {"success": False}, 1, [NS])
    alert(["/nonexistent/never"], {"success": True}, 0, [NS])  # exit 0: not called at all
    assert "ran over 0.3s: stopped" in caplog.text
    assert "`/nonexistent/page` could not run: No such file or directory" in caplog.text
    assert "never" not in caplog.text
