"""The suite's own machinery (tests/conftest.py), run as `make test` runs it (pytest-xdist on two
workers, the project's pytest settings): the fault matrix is printed whole although its rows are
logged in the workers, and the tests that need exact timing all run on one worker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent

CASES = """
import pytest

from nsscale.errors import ExitCode
from tests.faultkit import judge_down

SPEC = {("deployment", "web"): 2}
AS_IT_WAS = {("deployment", "web"): (2, None, None)}


@pytest.mark.parametrize("case", range(4))
def test_matrix_case(matrix, case):
    matrix.add("kind", f"case-{case}", "mode", judge_down(SPEC, AS_IT_WAS, ExitCode.FAILED, None))


@pytest.mark.timing
@pytest.mark.parametrize("case", range(2))
def test_timing(case):
    pass


@pytest.mark.parametrize("case", range(6))
def test_other(case):
    pass
"""


def test_the_matrix_is_printed_whole_and_the_timing_tests_share_a_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # `tests` is importable, as in the checkout
    pytester.makepyprojecttoml((ROOT / "pyproject.toml").read_text())
    pytester.makeconftest("from tests.conftest import *  # noqa: F403\n")
    pytester.makepyfile(test_cases=CASES)

    result = pytester.runpytest_subprocess("-n", "2", "-v", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=12)
    out = result.stdout.str()
    assert "fault matrix: 4 cases tried (exit 1: 4); originals lost: 0" in out
    assert [f"case-{n}" for n in range(4)] == re.findall(r"^kind +(case-\d)", out, re.M)
    passed = re.findall(r"^\[(gw\d)\] .*PASSED test_cases\.py::(\w+)\[", out, re.M)
    timed = [worker for worker, name in passed if name in ("test_matrix_case", "test_timing")]
    assert len(timed) == 6, out
    assert len(set(timed)) == 1, out  # one worker, one test at a time
    assert len({worker for worker, _ in passed}) == 2, out  # the others on both
