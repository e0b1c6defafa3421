"""The pygame example: a 60 FPS loop embedding the in-process service, run headless for a few seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("pygame", reason="pygame is not installed (pip install pygame)")

pytestmark = pytest.mark.timeout(90)


def test_pygame_loop_keeps_60_fps_while_deciding(tmp_path, capsys):
    report = tmp_path / "frames.json"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "pygame" / "game.py"),
            "--seconds",
            "4",
            "--report",
            str(report),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    frames = json.loads(report.read_text())
    with capsys.disabled():  # the frame times are the point of this test: show them
        print(f"\npygame example, rules backend, headless: {json.dumps(frames)}")
    assert frames["frames"] >= 0.8 * 60 * 4 and 50 <= frames["fps"] <= 66
    assert 14.0 <= frames["frame_ms_p50"] <= 20.0
    assert (
        frames["submitted"] >= 8 and frames["answered"] + frames["in_flight_at_exit"] == frames["submitted"]
    )
    assert frames["by_source"].get("rules", 0) == frames["answered"]  # no fallbacks: every answer is valid
    assert frames["engine_blocked_ms_p99"] < 5.0
