"""The suite's per-test timeout: a hang fails its test with every thread's stack, and the run goes on."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HANGING_TESTS = """
import threading

def test_deadlock():
    stuck = threading.Event()
    threading.Thread(target=stuck.wait, name="stuck-helper", daemon=True).start()
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()  # never returns

def test_after_the_hang():
    assert True
"""


def test_the_suite_has_a_default_timeout(pytestconfig):
    assert 0 < float(pytestconfig.getini("timeout")) <= 120
    assert pytestconfig.getini("timeout_method") == "signal"


def test_a_deadlock_fails_its_test_with_every_threads_stack(tmp_path):
    (tmp_path / "test_hang.py").write_text(textwrap.dedent(HANGING_TESTS))
    # the project's own pytest settings, with the limit shortened so the test is quick
    command = [
        sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
        "-p", "no:cacheprovider", "-o", "timeout=2", "-q", str(tmp_path / "test_hang.py"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 failed, 1 passed" in out
    assert "Timeout" in out
    assert "lock.acquire()  # never returns" in out  # where the test hangs
    assert "stuck-helper" in out  # and what the other threads were doing
