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
import textwrap
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


def test_a_name_the_vocabulary_cannot_spell_ends_its_slot_not_the_process():
    # Found by tests/engine/test_fuzz.py: SmolLM2 has no token for the byte 0xF1, so a name with a
    # character in U+40000-U+7FFFF leaves the name-anchored grammar with no token to go on, and
    # accepting one anyway aborted the whole process ("llama-grammar.cpp: fatal error").
    script = f"""
        import json
        from characters import CharacterProfile, Situation
        from engine.backends.llamacpp import LlamaCppBackend
        from engine.request import DecisionRequest, Sampling
        backend = LlamaCppBackend({str(ensure_base_gguf())!r}, max_batch=2, n_ctx_per_seq=384)
        situation = Situation(context="Night shift at the clinic.")
        raws = backend.generate([
            DecisionRequest(CharacterProfile(name="Ann \\U00065720", description="A nurse."), situation,
                            Sampling(max_new_tokens=48)),
            DecisionRequest(CharacterProfile(name="Ann", description="A nurse."), situation,
                            Sampling(max_new_tokens=48)),
        ])
        backend.close()
        print(json.dumps([[r.error, r.output_tokens] for r in raws]))
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=180, env=env
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-2000:]}"
    (dead_error, dead_tokens), (other_error, other_tokens) = json.loads(done.stdout.strip().splitlines()[-1])
    assert dead_error == "grammar dead end: no token can continue the answer" and dead_tokens > 0
    assert other_tokens > 0 and (other_error is None or "max_new_tokens" in other_error)  # the batch went on
