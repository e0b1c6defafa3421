"""The C# client, built with Mono's ``mcs`` and run by ``mono`` against a real ``daydream serve``.

The console example (examples/csharp/Example/Program.cs) walks through every call and writes what
the client read to a ``--report`` file; these tests assert on that. The Unity wrapper
(Unity/DaydreamBehaviour.cs) needs UnityEngine, so it is not built here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

CSHARP = ROOT / "examples" / "csharp"
MCS = shutil.which("mcs")
MONO = shutil.which("mono")

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        MCS is None or MONO is None,
        reason="Mono is not installed (Debian/Ubuntu: sudo apt-get install -y mono-mcs mono-runtime)",
    ),
]


@pytest.fixture(scope="module")
def example_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client core and the console example, compiled once (nothing but the base class library)."""
    out = tmp_path_factory.mktemp("csharp") / "daydream-example.exe"
    sources = [*sorted((CSHARP / "Daydream").glob("*.cs")), CSHARP / "Example" / "Program.cs"]
    build = subprocess.run(
        [str(MCS), f"-out:{out}", *map(str, sources)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return out


def run_example(exe: Path, url: str, report: Path, *, token: str = "", **env: str) -> tuple[int, dict, str]:
    """Run the example against ``url``; its exit code, its report, and its output."""
    run = subprocess.run(
        [str(MONO), str(exe), "--url", url, "--token", token, "--report", str(report)],
        env={**os.environ, "XDG_CONFIG_HOME": str(report.parent), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = run.stdout + run.stderr[-3000:]
    assert report.exists(), output
    return run.returncode, json.loads(report.read_text(encoding="utf-8")), output


def assert_names(decision: dict, name: str) -> None:
    purposes = decision["purposes"]
    assert len(purposes) == 3 and len(set(purposes)) == 3, purposes
    assert all(name in purpose for purpose in purposes), purposes


def assert_full_run(report: dict, output: str) -> None:
    assert report["health"]["status"] == "ok" and report["health"]["model_id"] == "rules-v1", output

    decide = report["decide"]
    assert decide["id"] == "mira" and decide["source"] == "rules" and decide["model_id"] == "rules-v1"
    assert_names(decide, "Mira Holt")

    submit = report["submit"]
    assert submit["id"] == "tobin" and submit["status"] in ("pending", "done")
    assert submit["polled"]["ticket"] == submit["ticket"] and submit["status_after"] == "done"
    assert_names(submit["polled"], "Tobin Reed")

    cancel = report["cancel"]
    assert cancel["answered_ticket_cancelled"] is False  # 409: it had been answered
    # Cancelling a fresh ticket races the rules backend; cancelled, it is gone (404), else done (200).
    assert cancel["status_after"] == (404 if cancel["cancelled"] else 200), cancel
    assert cancel["unknown_ticket_status"] == 404

    invalid = report["invalid"]
    assert invalid["status"] == 422, invalid
    assert {"profile.name", "profile.description", "deadline_ms"} <= set(invalid["paths"]), invalid
    assert "profile.name: " in invalid["message"]

    crowd = report["crowd"]["decisions"]
    assert [d["id"] for d in crowd] == ["bo", "lena", "sam", "ivy"]
    for decision, name in zip(crowd, ["Old Bo", "Lena Fisk", "Sam Ward", "Ivy Cole"], strict=True):
        assert_names(decision, name)

    stats = report["stats"]
    assert stats["decisions"] >= 6 and stats["by_source"].get("rules", 0) >= 6 and stats["fallbacks"] == 0


def test_csharp_client_against_serve(example_exe, tmp_path):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from tests.serve.conftest import serve_process

    with serve_process("--model", "rules") as url:
        code, report, output = run_example(example_exe, url, tmp_path / "report.json")
    assert code == 0 and "error" not in report, output
    assert_full_run(report, output)
    assert report["crowd"]["sent"] == "list"


def test_csharp_client_with_token_and_full_queue(example_exe, tmp_path):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from tests.serve.conftest import serve_process

    token = "csharp-token"
    args = ("--model", "rules", "--token-env", "DD_CSHARP_TOKEN", "--max-queue", "2")
    with serve_process(*args, env={"DD_CSHARP_TOKEN": token}) as url:
        code, refused, refused_output = run_example(example_exe, url, tmp_path / "refused.json")
        # A German locale: numbers in the JSON must still be written and read with a dot.
        ok_code, report, output = run_example(
            example_exe, url, tmp_path / "report.json", token=token, LANG="de_DE.UTF-8"
        )

    assert code == 1, refused_output
    assert refused["health"]["status"] == "ok"  # health needs no token
    assert refused["error"]["status"] == 401, refused
    assert refused["error"]["type"] == "DaydreamUnauthorizedException" and "decide" not in refused

    assert ok_code == 0 and "error" not in report, output
    assert_full_run(report, output)
    # Four cases do not fit a queue of two: the list is refused whole with Retry-After, then sent singly.
    queue_full = report["crowd"]["queue_full"]
    assert queue_full["status"] == 429 and queue_full["retry_after_s"] >= 1, queue_full
    assert report["crowd"]["sent"] == "one by one"
