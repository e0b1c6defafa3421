"""Fixtures for the HTTP API: an app over a fake or rules service, in process or on a real socket."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'daydream[serve]')")

from fastapi.testclient import TestClient

from engine import DecisionService
from engine.serve.app import build_app
from tests.conftest import FakeBackend

CASE = {
    "id": "chloe",
    "profile": {"name": "Chloe Martin", "description": "Barista, 24, friendly, always broke."},
    "situation": {"context": "The espresso machine is leaking and the rush starts in fifteen minutes."},
}


def case(i: int = 0, **extra: object) -> dict[str, object]:
    """A distinct valid case (a different seed each, so the cache never answers)."""
    return {**CASE, "id": f"case-{i}", "seed": i, **extra}


@contextlib.contextmanager
def uvicorn_server(app: object, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` on a real socket in a thread; yields its base URL. Startup and shutdown are bounded."""
    import uvicorn

    sock = socket.socket()
    sock.bind((host, 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 10 s")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def service(fake: FakeBackend) -> Iterator[DecisionService]:
    svc = DecisionService(fake, max_queue=8, keep_finished=False, cache_size=0)
    yield svc
    fake.release.set()
    svc.close()


@pytest.fixture
def client(service: DecisionService) -> Iterator[TestClient]:
    with TestClient(build_app(service, max_body_bytes=4096, max_cases=8)) as test_client:
        yield test_client


@contextlib.contextmanager
def serve_process(
    *args: str, env: dict[str, str] | None = None, start_timeout_s: float = 60.0
) -> Iterator[str]:
    """Run ``daydream serve --port 0 ARGS`` as a real process; yields its URL, stops it with SIGINT."""
    import os
    import queue
    import re
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.Popen(
        [sys.executable, "-m", "daydream", "serve", "--port", "0", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    seen = []
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"daydream serve did not start in {start_timeout_s} s: {seen}") from None
            seen.append(line)
            found = re.search(r"daydream serve: (http://\S+) ", line)
            if found:
                break
        url = found.group(1).replace("0.0.0.0", "127.0.0.1")
        _wait_healthy(url, deadline)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_healthy(url: str, deadline: float) -> None:
    import httpx

    while True:
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/v1/health did not answer in time")
        time.sleep(0.05)
