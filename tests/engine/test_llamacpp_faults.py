"""Broken GGUF files: a clear error (or, for silently damaged weights, still valid answers), never a crash.

Each load runs in its own process through the real command line: a segfault inside llama.cpp would
otherwise kill the whole test run. These cases were probed in subprocesses first (60 random
corruptions of the header and metadata: every one was an error or a clean load, none a signal).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from models.base import ensure_base_gguf

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]


def _flip_header(data: bytes) -> bytes:
    out = bytearray(data)
    for i in range(200, 2000, 7):  # inside the key/value metadata
        out[i] ^= 0xFF
    return bytes(out)


def _zero_weights(data: bytes) -> bytes:
    out = bytearray(data)
    start = len(out) // 3
    out[start : start + 5_000_000] = bytes(5_000_000)
    return bytes(out)


BROKEN: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda data: b"",
    "header-only": lambda data: data[:100],
    "half": lambda data: data[: len(data) // 2],
    "last-kilobyte-missing": lambda data: data[:-1024],
    "not-a-gguf": lambda data: random.Random(7).randbytes(64 * 1024),
    "gguf-magic-then-noise": lambda data: b"GGUF" + random.Random(8).randbytes(64 * 1024),
    "corrupt-metadata": _flip_header,
}


def decide(tmp_path: Path, model: Path, *options: str, n: int = 1) -> subprocess.CompletedProcess[str]:
    cases = tmp_path / "cases.jsonl"
    lines = [
        json.dumps({"id": f"c{i}", "name": "Ann", "description": "A nurse.", "situation": "Night shift."})
        for i in range(n)
    ]
    cases.write_text("\n".join(lines) + "\n")
    command = [sys.executable, "-m", "daydream", "decide", str(cases), "--out", str(tmp_path / "out.jsonl")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*command, "--model", str(model), *options],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_gguf_is_a_clear_error_not_a_crash(kind, tmp_path):
    model = tmp_path / f"{kind}.gguf"
    model.write_bytes(BROKEN[kind](ensure_base_gguf().read_bytes()))
    done = decide(tmp_path, model)
    assert done.returncode == 2, (
        f"exit {done.returncode} (a negative code is a signal)\n{done.stderr[-2000:]}"
    )
    assert f"{model}: llama.cpp could not load this GGUF (truncated, corrupt or not a GGUF)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_damaged_weights_still_give_only_valid_answers(tmp_path):
    # Zeroed tensor data keeps the file loadable; a bare path has no sha256 to check against (a
    # registered model does: tests/models/test_registry.py). The grammar and validation chain
    # must still hand the game a valid Motivation for every line. Such a model rambles to the
    # token limit, twice (the retry): the deadline keeps the test short on a loaded machine.
    model = tmp_path / "zeroed.gguf"
    model.write_bytes(_zero_weights(ensure_base_gguf().read_bytes()))
    done = decide(tmp_path, model, "--deadline-s", "8", n=2)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["c0", "c1"]
    for record in records:
        assert record["source"] in {"model", "retry", "fallback"}
        assert all(record[k].strip() for k in ("purpose_a", "purpose_b", "purpose_c"))
