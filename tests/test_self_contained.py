"""The checkout carries everything it reads: no code, config, test or benchmark looks beside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./shared|parents\[[2-9]\]\s*/\s*[\"']shared")
SCANNED = (".py", ".yaml", ".yml", ".toml", ".cfg", ".sh", ".gd", "Makefile")


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.splitlines() if line.endswith(SCANNED)]


def test_nothing_reads_outside_the_checkout():
    me = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _tracked()
        if path.resolve() != me and path.is_file()
        for n, line in enumerate(path.read_text("utf-8", "replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_the_public_cases_ship_inside_the_package_that_uses_them():
    cases = ROOT / "finetune" / "data" / "public_cases.jsonl"
    assert cases.is_file() and len(cases.read_text("utf-8").splitlines()) >= 10
