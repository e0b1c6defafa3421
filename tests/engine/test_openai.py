"""The OpenAI-compatible backend against scripted chat servers (stdlib http.server on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("httpx", reason="the serve extra is not installed (pip install 'daydream[serve]')")

from characters import CharacterProfile, Situation, motivation_json_schema
from engine import DecisionService, ModelSpecError, load_backend
from engine.backends.openai import OpenAIBackend, chat_completions_url
from engine.prompt import build_messages
from engine.request import DecisionRequest, Sampling
from tests.conftest import motivation_json

pytestmark = pytest.mark.timeout(30)

PROFILE = CharacterProfile(name="Chloe Martin", description="Barista, 24, friendly, always broke.")
SITUATION = Situation(context="The espresso machine is leaking.")


class ChatServer:
    """A scripted OpenAI-compatible server: records bodies, answers after ``delay_s``."""

    def __init__(self, delay_s: float = 0.0, json_object_only: bool = False, port: int = 0) -> None:
        self.delay_s = delay_s
        self.json_object_only = json_object_only
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.replies: list[str] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with outer.lock:
                    outer.bodies.append(
                        {**body, "_path": self.path, "_auth": self.headers.get("authorization")}
                    )
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                    reply = outer.replies.pop(0) if outer.replies else motivation_json("Chloe Martin")
                time.sleep(outer.delay_s)
                with outer.lock:
                    outer.in_flight -= 1
                if outer.json_object_only and body["response_format"]["type"] != "json_object":
                    # what llama-cpp-python's server says to OpenAI's json_schema form
                    self._send(
                        500,
                        {
                            "error": {
                                "message": "('body', 'response_format', 'type'): 'text' or 'json_object'"
                            }
                        },
                    )
                    return
                self._send(200, {
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 97, "completion_tokens": 80},
                })  # fmt: skip

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@contextlib.contextmanager
def chat_servers(*servers: ChatServer) -> Iterator[tuple[ChatServer, ...]]:
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def request(seed: int = 0) -> DecisionRequest:
    return DecisionRequest(PROFILE, SITUATION, Sampling(temperature=0.5, seed=seed, max_new_tokens=150))


def free_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens there once closed


def test_sends_our_prompt_with_the_motivation_schema(monkeypatch):
    monkeypatch.setenv("DD_REMOTE_KEY", "k-123")
    with chat_servers(ChatServer()) as (server,):
        backend = OpenAIBackend([server.url], remote_model="daydream", api_key_env="DD_REMOTE_KEY")
        raw = backend.generate([request(seed=7)])[0]
        backend.close()
    assert raw.error is None and json.loads(raw.text)["purpose_a"].startswith("Chloe Martin")
    assert (raw.prompt_tokens, raw.output_tokens) == (97, 80)
    body = server.bodies[0]
    assert body["_path"] == "/v1/chat/completions" and body["_auth"] == "Bearer k-123"
    assert body["model"] == "daydream"
    assert body["messages"] == build_messages(PROFILE, SITUATION)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Motivation", "schema": motivation_json_schema(), "strict": True},
    }
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"], body["seed"]) == (
        0.5,
        0.9,
        40,
        150,
        7,
    )


def test_learns_the_json_object_form_from_a_server_that_refuses_json_schema():
    with chat_servers(ChatServer(json_object_only=True)) as (server,):
        backend = OpenAIBackend([server.url])
        first, second = (backend.generate([request(i)])[0] for i in range(2))
        stats = backend.stats()["servers"][0]
        backend.close()
    assert first.error is None and second.error is None
    assert [b["response_format"]["type"] for b in server.bodies] == [
        "json_schema",
        "json_object",
        "json_object",
    ]
    assert server.bodies[1]["response_format"]["schema"] == motivation_json_schema()
    assert stats["response_format"] == "json_object"


def test_spreads_by_least_pending_and_skips_a_dead_server():
    with chat_servers(ChatServer(delay_s=0.2), ChatServer(delay_s=0.2)) as (a, b):
        dead = free_port_url()
        backend = OpenAIBackend([a.url, dead, b.url], down_s=30)
        raws = backend.generate([request(i) for i in range(8)])
        stats = {s["url"]: s for s in backend.stats()["servers"]}
        backend.close()
    assert all(r.error is None for r in raws)
    assert len(a.bodies) + len(b.bodies) == 8
    assert 3 <= len(a.bodies) <= 5 and a.max_in_flight >= 2  # spread, and concurrent
    assert stats[dead]["down"] and stats[dead]["errors"] >= 1 and stats[dead]["ok"] == 0


def test_all_down_fails_fast_then_resumes_when_a_server_returns():
    url = free_port_url()
    backend = OpenAIBackend([url], down_s=0.2)
    started = time.monotonic()
    refused = backend.generate([request(0)])[0]
    resting = backend.generate([request(1)])[0]
    assert "ConnectError" in (refused.error or "")
    assert "every server is down" in (resting.error or "")
    assert time.monotonic() - started < 1.0
    server = ChatServer(port=int(url.rsplit(":", 1)[1]))  # the server comes back on its port
    time.sleep(0.25)  # the backend's rest (down_s) runs out
    try:
        back = backend.generate([request(2)])[0]
    finally:
        server.stop()
        backend.close()
    assert back.error is None


def test_service_runs_the_same_validation_retry_fallback_chain():
    bad = '{"purpose_a": "Chloe Martin runs'
    with chat_servers(ChatServer()) as (server,):
        server.replies = [bad, motivation_json("Chloe Martin", " again"), bad, bad]
        with DecisionService(load_backend(f"openai:{server.url}"), cache_size=0) as service:
            retried = service.submit(PROFILE, SITUATION, seed=1).result(timeout=10)
            failed = service.submit(PROFILE, SITUATION, seed=2).result(timeout=10)
            stats = service.stats()
    assert retried.source == "retry" and retried.reason.startswith("json:")
    assert failed.source == "fallback" and failed.reason.startswith("invalid: json")
    assert stats.retries == 2 and stats.fallbacks == 1 and stats.by_source == {"retry": 1, "fallback": 1}
    assert retried.model_id == "openai:default"


def test_load_backend_reads_one_url_or_a_list():
    backend = load_backend("openai:http://10.0.0.5:8000, https://gpu.example/v1", remote_model="m")
    assert isinstance(backend, OpenAIBackend)
    assert (
        backend.urls == ["http://10.0.0.5:8000", "https://gpu.example/v1"] and backend.model_id == "openai:m"
    )
    backend.close()
    for spec in ("openai:", "openai:ftp://x"):
        with pytest.raises(ModelSpecError):
            load_backend(spec)
    assert chat_completions_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert chat_completions_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert chat_completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
