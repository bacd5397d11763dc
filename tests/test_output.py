"""What nsscale prints, as a person or a pipe sees it (issue 20): the installed `nsscale` on the
real kubectl and the local API server, its stdout a terminal of 40, 60, 80 or 120 columns (a
pseudo-terminal) or a pipe; every line compared whole."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.server import ApiServer
from tests.faultkit import NSSCALE, Key, live_mark, observe, run, seed, untouched
from tests.kube import NS

SPEC: dict[Key, int] = {
    ("deployment", "web"): 2,
    ("statefulset", "nightly-report-generator"): 1,
    ("deployment", "idle"): 0,
}
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # bold headers: NO_COLOR keeps them


def on_terminal(env: Mapping[str, str], width: int, *args: str) -> tuple[int, list[str], str]:
    """`nsscale ARGS` with stdout a terminal `width` columns wide: exit code, the lines it
    showed (escapes taken out), its stderr."""
    env = {k: v for k, v in env.items() if k != "COLUMNS"} | {"TERM": "xterm", "NO_COLOR": "1"}
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, width, 0, 0))
    proc = subprocess.Popen(
        [str(NSSCALE), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(child)
    shown = b""
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not chunk:
            break
        shown += chunk
    os.close(parent)
    _, stderr = proc.communicate(timeout=120)
    text = ESCAPE.sub("", shown.decode().replace("\r\n", "\n"))
    return proc.returncode, text.splitlines(), stderr


def piped(env: Mapping[str, str], *args: str) -> tuple[int, list[str], str]:
    """`nsscale ARGS` with stdout a pipe, in a 40-column environment (COLUMNS): exit code,
    stdout's lines, stderr."""
    done = run({**env, "COLUMNS": "40"}, *args)
    return done.code, done.stdout.splitlines(), done.stderr


# ------------------------------------------------------------------------ tables, by width

DOWN = {
    40: [
        "nsscale down shop",
        "┏━━━━━━━┳━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┓",
        "┃ kind  ┃ name ┃ repl… ┃ stat… ┃ deta… ┃",
        "┡━━━━━━━╇━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━┩",
        "│ depl… │ web  │ 2 → 0 │ scal… │       │",
        "│ stat… │ nig… │ 1 → 0 │ scal… │       │",
        "│ depl… │ idle │ 0     │ skip… │ alre… │",
        "└───────┴──────┴───────┴───────┴───────┘",
        "shop: 2 scaled, 1 skipped.",
    ],
    60: [
        "nsscale down shop",
        "┏━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━┓",
        "┃ kind        ┃ name         ┃ replicas ┃ status  ┃ detail ┃",
        "┡━━━━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━┩",
        "│ deployment  │ web          │ 2 → 0    │ scaled  │        │",
        "│ statefulset │ nightly-rep… │ 1 → 0    │ scaled  │        │",
        "│ deployment  │ idle         │ 0        │ skipped │ alrea… │",
        "└─────────────┴──────────────┴──────────┴─────────┴────────┘",
        "shop: 2 scaled, 1 skipped.",
    ],
    80: [
        "nsscale down shop",
        "┏━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━┓",
        "┃ kind        ┃ name                     ┃ replicas ┃ status  ┃ detail       ┃",
        "┡━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━┩",
        "│ deployment  │ web                      │ 2 → 0    │ scaled  │              │",
        "│ statefulset │ nightly-report-generator │ 1 → 0    │ scaled  │              │",
        "│ deployment  │ idle                     │ 0        │ skipped │ already at 0 │",
        "└─────────────┴──────────────────────────┴──────────┴─────────┴──────────────┘",
        "shop: 2 scaled, 1 skipped.",
    ],
}
DOWN[120] = DOWN[80]  # it fits: as it is


@pytest.mark.e2e
@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_a_terminal_shows_the_box_its_cells_cut_with_an_ellipsis(
    shop: ApiServer, env: dict[str, str], width: int
) -> None:
    code, lines, stderr = on_terminal(env, width, "down", NS)
    assert (code, stderr) == (0, "")
    assert lines == DOWN[width]


@pytest.mark.e2e
def test_a_pipe_gets_kubectls_columns_never_wrapped(shop: ApiServer, env: dict[str, str]) -> None:
    code, lines, stderr = piped(env, "down", NS)
    assert (code, stderr) == (0, "")
    assert lines == [
        "nsscale down shop",
        "KIND          NAME                       REPLICAS   STATUS    DETAIL",
        "deployment    web                        2 → 0      scaled",
        "statefulset   nightly-report-generator   1 → 0      scaled",
        "deployment    idle                       0          skipped   already at 0",
        "shop: 2 scaled, 1 skipped.",
    ]
    code, lines, stderr = piped(env, "status", NS)
    assert (code, stderr) == (0, "")
    assert lines == [
        "nsscale status shop",
        "KIND          NAME                       REPLICAS   READY   ORIGINAL   SET BY NSSCALE",
        "deployment    idle                       0          0       -          -",
        "deployment    web                        0          0       2          0",
        "statefulset   nightly-report-generator   0          0       1          0",
    ]


STATUS = {
    40: [
        "nsscale status shop",
        "┏━━━━━┳━━━━━┳━━━━━┳━━━━━━┳━━━━━━┳━━━━━━┓",
        "┃ ki… ┃ na… ┃ re… ┃ rea… ┃ ori… ┃ set… ┃",
        "┡━━━━━╇━━━━━╇━━━━━╇━━━━━━╇━━━━━━╇━━━━━━┩",
        "│ de… │ id… │ 0   │ 0    │ -    │ -    │",
        "│ de… │ web │ 2   │ 2    │ -    │ -    │",
        "│ st… │ ni… │ 1   │ 1    │ -    │ -    │",
        "└─────┴─────┴─────┴──────┴──────┴──────┘",
    ],
    60: [
        "nsscale status shop",
        "┏━━━━━━━━━━┳━━━━━━┳━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┓",
        "┃ kind     ┃ name ┃ replicas ┃ ready ┃ original ┃ set by … ┃",
        "┡━━━━━━━━━━╇━━━━━━╇━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━┩",
        "│ deploym… │ idle │ 0        │ 0     │ -        │ -        │",
        "│ deploym… │ web  │ 2        │ 2     │ -        │ -        │",
        "│ statefu… │ nig… │ 1        │ 1     │ -        │ -        │",
        "└──────────┴──────┴──────────┴───────┴──────────┴──────────┘",
    ],
    80: [
        "nsscale status shop",
        "┏━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━━━┓",
        "┃ kind        ┃ name            ┃ replicas ┃ ready ┃ original ┃ set by nsscale ┃",
        "┡━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━━┩",
        "│ deployment  │ idle            │ 0        │ 0     │ -        │ -              │",
        "│ deployment  │ web             │ 2        │ 2     │ -        │ -              │",
        "│ statefulset │ nightly-report… │ 1        │ 1     │ -        │ -              │",
        "└─────────────┴─────────────────┴──────────┴───────┴──────────┴────────────────┘",
    ],
    120: [
        "nsscale status shop",
        "┏━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━━━┓",
        "┃ kind        ┃ name                     ┃ replicas ┃ ready ┃ original ┃ set by nsscale ┃",
        "┡━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━━┩",
        "│ deployment  │ idle                     │ 0        │ 0     │ -        │ -              │",
        "│ deployment  │ web                      │ 2        │ 2     │ -        │ -              │",
        "│ statefulset │ nightly-report-generator │ 1        │ 1     │ -        │ -              │",
        "└─────────────┴──────────────────────────┴──────────┴───────┴──────────┴────────────────┘",
    ],
}


@pytest.mark.e2e
@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_status_on_a_terminal_of_each_width(
    shop: ApiServer, env: dict[str, str], width: int
) -> None:
    code, lines, stderr = on_terminal(env, width, "status", NS)
    assert (code, stderr) == (0, "")
    assert lines == STATUS[width]


@pytest.mark.e2e
@pytest.mark.parametrize("width", [40, 60, 80, 120, None])
def test_a_rolled_back_run_keeps_a_line_a_workload(
    shop: ApiServer, env: dict[str, str], width: int | None
) -> None:
    """The run table and the rollback's: on a terminal, kubectl's long message is cut to the
    box; piped, it is whole, on its workload's line."""
    shop.fail("PUT", "statefulsets", "nightly-report-generator", status=403, times=None)
    args = ("down", NS, "--retries", "0")
    code, lines, _ = piped(env, *args) if width is None else on_terminal(env, width, *args)
    assert code == 1
    if width is None:
        message = (
            'Error from server (Forbidden): error when replacing "STDIN": statefulsets.apps '
            '"nightly-report-generator" is forbidden: User "tester" cannot update resource '
            '"statefulsets" in API group "apps" in the namespace "shop"'
        )
        assert lines == [
            "nsscale down shop",
            "KIND          NAME                       REPLICAS   STATUS        DETAIL",
            "deployment    web                        2 → 0      rolled back",
            f"statefulset   nightly-report-generator   1 → 0      failed        {message}",
            "deployment    idle                       0          skipped       already at 0",
            "rollback",
            "KIND         NAME   RESTORED TO   STATUS     DETAIL",
            "deployment   web    2             restored",
            "shop: failed; 1 change(s) rolled back: the namespace is as it was.",
        ]
        return
    assert all(len(line) <= width for line in lines)
    failed = next(line for line in lines if "│ 1 → 0" in line)
    assert failed.endswith("… │")  # the message, cut
    shown = " ".join(lines)
    assert "rolled back" in shown if width >= 60 else "roll…" in shown
    assert lines.count("rollback") == 1


@pytest.mark.e2e
def test_history_piped_is_a_line_a_run(shop: ApiServer, env: dict[str, str]) -> None:
    assert run(env, "down", NS).code == 0
    assert run(env, "up", NS).code == 0
    code, lines, stderr = piped(env, "history", NS)
    assert (code, stderr) == (0, "")
    assert lines[:2] == [
        "nsscale history shop (faults)",
        "TIME (UTC)            OP     OUTCOME   SCALED   FAILED   SKIPPED   BY",
    ]
    row = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d   OP   success   2        0        1         \S+@\S+"
    assert re.fullmatch(row.replace("OP", "up  "), lines[2]), lines
    assert re.fullmatch(row.replace("OP", "down"), lines[3]), lines
    assert len(lines) == 4


@pytest.mark.e2e
def test_several_namespaces_piped_one_refused_shows_no_empty_table(
    shop: ApiServer, env: dict[str, str], kubectl: KubectlFixture
) -> None:
    seed(shop, "other", {("deployment", "api"): 1})
    live_mark(kubectl, "other")
    code, lines, _ = piped(env, "down", NS, "other")
    assert code == 1
    assert lines[-5:] == [
        "nsscale down: 2 namespaces",
        "NAMESPACE   OUTCOME   SCALED   FAILED   SKIPPED   ROLLED BACK   EXIT",
        "shop        done      2        0        1         0             0",
        "other       failed    0        0        0         0             1",
        "2 namespaces: 1 done, 1 failed and left as they were (other).",
    ]
    assert lines[-6].startswith("other: failed; nothing was changed: another nsscale run is")
    assert "nsscale down other" not in lines


# ------------------------------------------------------------------------ refused: no table


def unreachable(env: Mapping[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment with a kubeconfig whose API server does not answer."""
    config = Path(env["KUBECONFIG"]).read_text()
    down = tmp_path / "down.kubeconfig"
    down.write_text(re.sub(r'server: "[^"]+"', 'server: "http://127.0.0.1:1"', config))
    return {**env, "KUBECONFIG": str(down)}


@pytest.mark.e2e
@pytest.mark.parametrize("refusal", ["lock held", "cluster down", "audit required"])
def test_a_run_refused_before_any_change_prints_only_the_refusal(
    shop: ApiServer,
    env: dict[str, str],
    kubectl: KubectlFixture,
    tmp_path: Path,
    refusal: str,
) -> None:
    args: tuple[str, ...] = ("down", NS, "--retries", "0", "--timeout", "5")
    if refusal == "lock held":
        live_mark(kubectl, NS)
    elif refusal == "cluster down":
        env = unreachable(env, tmp_path)
    else:
        (tmp_path / "a-file").write_text("")
        args += ("--audit-required", "--audit-file", str(tmp_path / "a-file" / "audit.jsonl"))
    code, lines, stderr = piped(env, *args)
    assert code != 0
    assert lines == []  # no empty table, no "failed; nothing was changed"
    assert re.search("^error: ", stderr, re.MULTILINE), stderr  # the refusal, said once
    code, shown, _ = on_terminal(env, 80, *args)
    assert code != 0
    assert shown == []
    done = run(env, *args, "-o", "json")
    document = json.loads(done.stdout)  # exactly one document
    assert (document["success"], document["exit_code"]) == (False, done.code)
    assert document["errors"]
    assert observe(shop, NS) == untouched(SPEC)


# ------------------------------------------------------------------------ up


@pytest.mark.e2e
def test_up_on_a_namespace_already_up_says_so(shop: ApiServer, env: dict[str, str]) -> None:
    for show in (piped, lambda env, *args: on_terminal(env, 60, *args)):
        code, lines, stderr = show(env, "up", NS)
        assert (code, lines, stderr) == (0, ["shop: already up: nothing recorded to restore."], "")


@pytest.mark.e2e
def test_up_rows_say_restored_and_a_workload_never_scaled_keeps_a_plain_note(
    shop: ApiServer, env: dict[str, str]
) -> None:
    assert run(env, "down", NS).code == 0
    shop.add_deployment(NS, "late", replicas=1)  # created since: nsscale never scaled it
    code, lines, stderr = piped(env, "up", NS)
    assert (code, stderr) == (0, "")
    note = "no recorded original: nsscale has not scaled it"
    assert lines == [
        "nsscale up shop",
        "KIND          NAME                       REPLICAS   STATUS     DETAIL",
        "deployment    web                        0 → 2      restored",
        "statefulset   nightly-report-generator   0 → 1      restored",
        "deployment    idle                       0          skipped    " + note,
        "deployment    late                       1          skipped    " + note,
        "shop: 2 restored, 2 skipped.",
    ]


# ------------------------------------------------------------------------ usage errors


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["down", NS, "--dryrun", "-o", "json"], "No such option: --dryrun"),
        (
            ["down", NS, "--output=json", "--parallel", "many"],
            "Invalid value for '--parallel': 'many'",
        ),
        (["status", "-ojson", NS, "--bogus"], "No such option: --bogus"),
        (["scale", NS, "-o", "json", "--replicas"], "Option '--replicas' requires an argument"),
    ],
)
def test_a_usage_error_with_json_output_is_one_json_document(
    shop: ApiServer, env: dict[str, str], args: list[str], message: str
) -> None:
    done = run(env, *args)
    assert done.code == 2, str(done)
    document = json.loads(done.stdout)  # exactly one document
    assert (document["success"], document["exit_code"]) == (False, 2)
    assert message in document["errors"][0]
    assert f"Error: {message}" in done.stderr  # click's usage text, as ever
    without = run(env, *(a for a in args if a not in ("-o", "json", "--output=json", "-ojson")))
    assert (without.code, without.stdout) == (2, "")
    assert without.stderr == done.stderr


@pytest.mark.e2e
def test_no_namespace_with_json_output_is_a_failure(shop: ApiServer, env: dict[str, str]) -> None:
    done = run(env, "up", "-o", "json")
    document = json.loads(done.stdout)
    assert (done.code, document["success"], document["exit_code"]) == (2, False, 2)
    assert document["namespaces"] == []


@pytest.mark.e2e
@pytest.mark.parametrize("width", [40, None])
def test_reconcile_decisions_a_line_a_namespace(
    shop: ApiServer, env: dict[str, str], width: int | None
) -> None:
    seed(shop, "other", {("deployment", "api"): 0})
    at = ("--at", "2026-12-07T19:40:00+00:00")
    args = ("reconcile", NS, "other", "--downtime", "always", "--dry-run", *at)
    code, lines, _ = piped(env, *args) if width is None else on_terminal(env, width, *args)
    assert code == 0
    if width is None:
        assert lines[:4] == [
            "nsscale reconcile at 2026-12-07T19:40+00:00",
            "NAMESPACE   WANTS   ACTION   REASON",
            "shop        down    down     inside its downtime always: 2 to bring down",
            "other       down    none     already down (inside its downtime always)",
        ]
        return
    assert lines[:8] == [
        "nsscale reconcile at ",  # the title wraps between words
        "2026-12-07T19:40+00:00",
        "┏━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━┳━━━━━━━━━┓",
        "┃ namespace ┃ wants ┃ action ┃ reason  ┃",
        "┡━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━╇━━━━━━━━━┩",
        "│ shop      │ down  │ down   │ inside… │",
        "│ other     │ down  │ none   │ alread… │",
        "└───────────┴───────┴────────┴─────────┘",
    ]
