"""The GDScript client, run by the real Godot engine (headless) against a real ``daydream serve``."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

GODOT = shutil.which("godot3-server") or shutil.which("godot3")

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        GODOT is None,
        reason="Godot 3 is not installed (Debian/Ubuntu: sudo apt-get install -y godot3-server)",
    ),
]


@pytest.mark.parametrize("token", [None, "godot-token"])
def test_gdscript_client_in_headless_godot(tmp_path, token):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from tests.serve.conftest import serve_process

    args = ["--model", "rules"] + (["--token-env", "DD_GODOT_TOKEN"] if token else [])
    with serve_process(*args, env={"DD_GODOT_TOKEN": token or ""}) as url:
        env = {
            **os.environ,
            "DAYDREAM_URL": url,
            "DAYDREAM_TOKEN": token or "",
            "XDG_DATA_HOME": str(tmp_path),  # Godot's user:// and editor data stay out of $HOME
            "XDG_CONFIG_HOME": str(tmp_path),
        }
        run = subprocess.run(
            [str(GODOT), "--path", str(ROOT / "examples" / "godot"), "-s", "res://smoke_test.gd"],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    lines = [line for line in run.stdout.splitlines() if line.startswith("DAYDREAM")]
    failed = [line for line in lines if " FAIL " in line]
    assert run.returncode == 0 and not failed, "\n".join(lines) + run.stderr[-2000:]
    assert "DAYDREAM ok streamed" in run.stdout and "DAYDREAM done, 0 failed" in run.stdout
    assert sum(line.startswith("DAYDREAM ok") for line in lines) >= 15
