"""A remote backend: any OpenAI-compatible chat server (llama.cpp's server, vLLM, Ollama).

    load_backend("openai:http://10.0.0.5:8000,http://10.0.0.6:8000", remote_model="default")

Each request carries our prompt (``engine.prompt.build_messages``, the one the model was trained on)
and the Motivation JSON Schema as the structured-output format, and goes to the server with the
fewest requests in flight. The service runs the same validation -> retry -> fallback chain on the
answers as it does for a local model, so a remote server can never hand the game an invalid answer.

A server that refuses a connection or drops one is marked down for ``down_s`` seconds: requests go to
the others, or fail at once when all are down (the service then answers with its flagged fallback),
and the first request after the pause probes it again, so decisions resume when it comes back.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from characters import motivation_json_schema
from engine.prompt import build_messages
from engine.request import ABANDONED, DecisionRequest, RawDecision

ResponseFormat = Literal["json_schema", "json_object"]


class RemoteError(RuntimeError):
    """One request to a remote server failed; the message names the server."""


@dataclass
class _Endpoint:
    """One server: where it is, how busy it is, and whether it is resting after a failure."""

    url: str
    pending: int = 0
    sent: int = 0
    ok: int = 0
    errors: int = 0
    down_until: float = 0.0
    last_error: str | None = None
    # "json_schema" is OpenAI's form (vLLM, llama.cpp's own server, Ollama); llama-cpp-python's
    # server rejects it and takes {"type": "json_object", "schema": ...}. Learned on first refusal.
    response_format: ResponseFormat = "json_schema"


def chat_completions_url(url: str) -> str:
    """The chat completions URL for a server root, a ``/v1`` base, or the full endpoint."""
    base = url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/chat/completions"


def parse_urls(spec: str) -> list[str]:
    """The server URLs in an ``openai:URL[,URL...]`` spec."""
    urls = [u.strip() for u in spec.removeprefix("openai:").split(",") if u.strip()]
    if not urls:
        raise ValueError(f"{spec!r}: give at least one server URL, e.g. openai:http://127.0.0.1:8080")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r}: a server URL must start with http:// or https://")
    return urls


class OpenAIBackend:
    """Decisions from OpenAI-compatible servers, spread over them by least pending requests."""

    name = "openai"
    # generate() may run from several service workers at once: the endpoint table has its own lock
    thread_safe = True

    def __init__(
        self,
        urls: Sequence[str],
        *,
        remote_model: str = "default",
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        connect_timeout_s: float = 2.0,
        down_s: float = 1.0,
        max_in_flight: int = 64,
        response_format: ResponseFormat = "json_schema",
    ) -> None:
        if not urls:
            raise ValueError("OpenAIBackend needs at least one server URL")
        self.remote_model = remote_model
        self.model_id = f"openai:{remote_model}"
        self.down_s = down_s
        self._endpoints = [_Endpoint(u, response_format=response_format) for u in urls]
        self._lock = threading.Lock()
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight),
        )
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="daydream-remote")
        self._schema = motivation_json_schema()

    @property
    def urls(self) -> list[str]:
        """The servers this backend spreads requests over."""
        return [e.url for e in self._endpoints]

    def generate(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        """Send every request at once, each to the least busy server; one RawDecision per request."""
        if len(requests) == 1:
            return [self._one(requests[0])]
        return list(self._pool.map(self._one, requests))

    def stats(self) -> dict[str, Any]:
        """Per server: requests in flight, sent, answered, failed, and whether it is resting."""
        now = time.monotonic()
        with self._lock:
            return {
                "servers": [
                    {
                        "url": e.url,
                        "pending": e.pending,
                        "sent": e.sent,
                        "ok": e.ok,
                        "errors": e.errors,
                        "down": e.down_until > now,
                        "last_error": e.last_error,
                        "response_format": e.response_format,
                    }
                    for e in self._endpoints
                ]
            }

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # -- internals ---------------------------------------------------------------------------

    def _pick(self, exclude: set[str]) -> _Endpoint | None:
        """The up server with the fewest requests in flight; a resting one only once its pause is over."""
        now = time.monotonic()
        with self._lock:
            live = [e for e in self._endpoints if e.url not in exclude and e.down_until <= now]
            if not live:
                return None
            best = min(live, key=lambda e: (e.pending, e.sent))
            if best.down_until:
                best.down_until = now + self.down_s  # one probe at a time while it may still be down
            best.pending += 1
            best.sent += 1
            return best

    def _done(self, endpoint: _Endpoint, error: str | None, down: bool = False) -> None:
        with self._lock:
            endpoint.pending -= 1
            if error is None:
                endpoint.ok += 1
                endpoint.down_until = 0.0
                return
            endpoint.errors += 1
            endpoint.last_error = error
            if down:
                endpoint.down_until = time.monotonic() + self.down_s

    def _one(self, request: DecisionRequest) -> RawDecision:
        started = time.perf_counter()
        if request.is_abandoned():  # answered by its deadline while it waited for a connection
            return RawDecision(
                text="", error=f"{ABANDONED}: the ticket was answered or cancelled before it was sent"
            )
        tried: set[str] = set()
        errors: list[str] = []
        while True:
            endpoint = self._pick(tried)
            if endpoint is None:
                break
            tried.add(endpoint.url)
            try:
                raw = self._post(endpoint, request)
            except httpx.TransportError as err:  # refused, reset, timed out: try another server
                message = f"{endpoint.url}: {type(err).__name__}: {err}"
                self._done(endpoint, message, down=True)
                errors.append(message)
                continue
            except RemoteError as err:  # it answered, but not with a completion: try another
                self._done(endpoint, str(err))
                errors.append(str(err))
                continue
            self._done(endpoint, None)
            raw.decode_s = time.perf_counter() - started
            return raw
        detail = "; ".join(errors) if errors else "every server is down (resting after a failure)"
        return RawDecision(text="", error=f"remote: {detail}", decode_s=time.perf_counter() - started)

    def _body(self, request: DecisionRequest, response_format: ResponseFormat) -> dict[str, Any]:
        sampling = request.sampling
        fmt: dict[str, Any]
        if response_format == "json_schema":
            fmt = {
                "type": "json_schema",
                "json_schema": {"name": "Motivation", "schema": self._schema, "strict": True},
            }
        else:
            fmt = {"type": "json_object", "schema": self._schema}
        return {
            "model": self.remote_model,
            "messages": build_messages(request.profile, request.situation),
            "response_format": fmt,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,  # not in OpenAI's API; llama.cpp, vLLM and Ollama read it
            "max_tokens": sampling.max_new_tokens,
            "seed": sampling.seed,
        }

    def _post(self, endpoint: _Endpoint, request: DecisionRequest) -> RawDecision:
        url = chat_completions_url(endpoint.url)
        response = self._client.post(url, json=self._body(request, endpoint.response_format))
        refused_format = response.status_code >= 400 and "response_format" in response.text
        if refused_format and endpoint.response_format == "json_schema":  # it knows only json_object
            endpoint.response_format = "json_object"
            response = self._client.post(url, json=self._body(request, "json_object"))
        if response.status_code >= 400:
            raise RemoteError(f"{endpoint.url}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise RemoteError(f"{endpoint.url}: not a chat completion: {response.text[:200]}") from None
        usage = data.get("usage") or {}
        error = None
        if choice.get("finish_reason") == "length":
            error = f"stopped at max_tokens={request.sampling.max_new_tokens}"
        return RawDecision(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            error=error,
        )
