"""Scale-out for real: a game client -> daydream serve -> openai: backend -> llama_cpp.server (default GGUF).

Starts ``python -m llama_cpp.server`` on 127.0.0.1 (llama-cpp-python's [server] extra), then kills it
mid-run: every ticket must still be answered (flagged fallback) within its deadline, and decisions
must come from the model again once the server is back.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from engine import DecisionService, load_backend
from engine.serve.app import build_app
from engine.serve.client import RemoteDecisionService
from models.registry import ModelNotBuilt, list_models, resolve_gguf
from tests.conftest import load_public_cases
from tests.serve.conftest import uvicorn_server

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python's [server] extra is not installed")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif("default" not in list_models(), reason="no default model registered yet"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def llama_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """llama-cpp-python's OpenAI-compatible server on the default GGUF; ready when /v1/models answers."""
    try:
        gguf = resolve_gguf("default")
    except ModelNotBuilt as err:
        pytest.fail(f"{err} (make test builds it before running the suite)")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "default",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--verbose", "False"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not start (exit {proc.poll()})")
            time.sleep(0.1)
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def test_real_server_then_killed_mid_run_then_back(capsys):
    cases = load_public_cases()
    port = free_port()
    backend = load_backend(f"openai:http://127.0.0.1:{port}", down_s=0.5)
    # long enough that the service's admission check sends these to the model even on a slow,
    # busy machine: the kill, not the clock, must be what answers them
    deadline_s = 30.0
    with (
        DecisionService(backend, cache_size=0, keep_finished=False) as service,
        uvicorn_server(build_app(service)) as url,
        RemoteDecisionService(url) as game,
    ):
        with llama_server(port) as server:
            first = game.submit(cases[0].profile, cases[0].situation, deadline_s=60).result(timeout=90)
            # a real decision: our prompt, the schema as the output format, the validation chain
            assert first.source in ("model", "retry"), first.reason
            assert first.output_tokens > 20 and first.prompt_tokens > 50
            assert any(cases[0].profile.name in p for p in first.motivation.purposes())
            # llama-cpp-python's server refuses OpenAI's json_schema form; the backend switched
            assert backend.stats()["servers"][0]["response_format"] == "json_object"  # type: ignore[attr-defined]

            tickets = [
                game.submit(c.profile, c.situation, seed=i, deadline_s=deadline_s)
                for i, c in enumerate(cases[1:5])
            ]
            time.sleep(0.5)  # mid-run: the server is decoding the first of these
            server.kill()
            killed_at = time.monotonic()
            results = [t.result(timeout=deadline_s + 5) for t in tickets]
        late = [r.latency_ms for r in results if r.latency_ms > deadline_s * 1000 + 500]
        assert late == []
        flagged = [r for r in results if r.source == "fallback"]
        assert flagged, [r.source for r in results]  # the kill cut some of them off
        assert any("remote" in (r.reason or "") for r in flagged), [r.reason for r in flagged]
        assert all(r.latency_ms < 5000 for r in flagged)  # at once, not at the deadline
        during = game.submit(cases[5].profile, cases[5].situation, seed=9, deadline_s=deadline_s).result(
            timeout=10
        )
        assert during.source == "fallback" and "remote" in (during.reason or "")
        assert time.monotonic() - killed_at < deadline_s + 10

        with llama_server(port):  # back on the same port
            time.sleep(0.6)  # the backend's rest after the failure runs out
            answered_before = backend.stats()["servers"][0]["ok"]  # type: ignore[attr-defined]
            again = game.submit(cases[6].profile, cases[6].situation, seed=3, deadline_s=60).result(
                timeout=90
            )
        # the model answers again (a rare answer the validation chain rejects twice is still the model's)
        with capsys.disabled():  # what the fault did, for the record
            cut = ", ".join(f"{r.source} {r.latency_ms:.0f} ms" for r in results)
            print(f"\nkilled mid-run (deadline {deadline_s:.0f} s): {cut}; while down: {during.source} "
                  f"{during.latency_ms:.0f} ms; after restart: {again.source} {again.latency_ms:.0f} ms")  # fmt: skip
        assert backend.stats()["servers"][0]["ok"] > answered_before  # type: ignore[attr-defined]
        assert again.source in ("model", "retry") or "remote" not in (again.reason or ""), again.reason
        stats = game.stats()
    assert stats.fallbacks >= len(flagged) + 1 and stats.tokens_per_s > 0
    backend.close()  # type: ignore[attr-defined]
