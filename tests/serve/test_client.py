"""The Python remote client against a real uvicorn server, and a small load test over real sockets."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import CancelledError

import httpx
import pytest

from characters import CharacterProfile, Situation
from engine import DecisionService, QueueFull
from engine.serve.app import build_app
from engine.serve.client import RemoteDecisionService, RemoteError
from tests.conftest import FakeBackend
from tests.serve.conftest import case, uvicorn_server

pytestmark = pytest.mark.timeout(60)

PROFILE = CharacterProfile(name="Chloe Martin", description="Barista, 24, friendly, always broke.")
SITUATION = Situation(context="The espresso machine is leaking.")


def drain(service, n: int, timeout_s: float = 10.0) -> list:
    """Poll like a game loop until ``n`` tickets finished (bounded)."""
    out: list = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        out.extend(service.poll())
        time.sleep(0.005)
    return out


def test_remote_service_has_the_submit_poll_result_api():
    backend = FakeBackend(delay_s=0.02)
    with (
        DecisionService(backend, keep_finished=False, cache_size=0) as local,
        uvicorn_server(build_app(local)) as url,
        RemoteDecisionService(url) as remote,
    ):
        assert remote.model_id == "fake-model"
        tickets = [remote.submit(PROFILE, SITUATION, seed=i, deadline_s=5.0) for i in range(5)]
        finished = drain(remote, 5)
        assert sorted(t.id for t in finished) == sorted(t.id for t in tickets)
        for ticket in tickets:
            result = ticket.result(timeout=0)
            assert result.source == "model" and result.output_tokens == 40
        assert remote.decide(PROFILE, SITUATION, seed=99).source == "model"
        stats = remote.stats()
        assert stats.decisions == 6 and stats.by_source == {"model": 6}
        assert remote.pending() == 0

        backend.release.clear()
        held = remote.submit(PROFILE, SITUATION, seed=50)
        waiting = remote.submit(PROFILE, SITUATION, seed=51)
        assert waiting.cancel() and waiting.cancelled()
        with pytest.raises(CancelledError):
            waiting.result(timeout=0)
        backend.release.set()
        assert held.result(timeout=5).source == "model"
        assert not held.cancel()  # already answered


def test_remote_errors_map_to_the_in_process_ones():
    backend = FakeBackend()
    backend.release.clear()
    with (
        DecisionService(backend, keep_finished=False, max_queue=1, cache_size=0) as local,
        uvicorn_server(build_app(local, token="tok")) as url,
    ):
        with pytest.raises(RemoteError, match="401"):
            RemoteDecisionService(url, token="wrong").stats()
        with RemoteDecisionService(url, token="tok") as remote:
            remote.submit(PROFILE, SITUATION, seed=1)
            deadline = time.monotonic() + 5
            while not backend.calls and time.monotonic() < deadline:
                time.sleep(0.005)
            remote.submit(PROFILE, SITUATION, seed=2)
            with pytest.raises(QueueFull, match="retry after"):
                remote.submit(PROFILE, SITUATION, seed=3)
            with pytest.raises(ValueError, match="deadline_ms"):
                remote.submit(PROFILE, SITUATION, deadline_s=10_000)
            backend.release.set()
    with pytest.raises(RemoteError, match="ConnectError"):
        RemoteDecisionService(url, timeout_s=1.0)


def test_server_gone_means_local_fallbacks_in_time():
    backend = FakeBackend()
    backend.release.clear()  # the server never answers, then goes away
    local = DecisionService(backend, keep_finished=False, cache_size=0)
    with uvicorn_server(build_app(local)) as url:
        remote = RemoteDecisionService(url)
        tickets = [remote.submit(PROFILE, SITUATION, seed=i, deadline_s=60.0) for i in range(2)]
        quick = remote.submit(PROFILE, SITUATION, seed=9, deadline_s=0.2)
        # the server's own deadline answers the quick one
        assert quick.result(timeout=5).reason == "deadline"
    backend.release.set()  # the server is gone with two tickets still pending
    local.close()
    started = time.monotonic()
    for ticket in tickets:
        ticket.deadline = time.monotonic()  # pretend their deadline has passed
    results = [t.result(timeout=5) for t in tickets]
    assert all(r.source == "fallback" and r.reason.startswith("deadline") for r in results)
    assert time.monotonic() - started < 3.0  # one grace second, plus a reconnect attempt
    remote.close()


def test_load_every_request_answered_exactly_once():
    """The small version of bench/serve.py: 200 requests from 20 concurrent clients, rules backend."""
    n_clients, per_client = 20, 10
    with (
        DecisionService("rules", keep_finished=False, max_queue=64) as local,
        uvicorn_server(build_app(local)) as url,
    ):

        async def client(c: int, http: httpx.AsyncClient) -> list[tuple[str, int, str]]:
            out = []
            for i in range(per_client):
                body = case(c * 1000 + i, deadline_ms=2000)
                response = await http.post("/v1/decide", json=body)
                assert response.status_code == 200, response.text
                answer = response.json()
                out.append((answer["id"], answer["ticket"], answer["source"]))
            return out

        async def run() -> list[tuple[str, int, str]]:
            limits = httpx.Limits(max_connections=n_clients)
            async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as http:
                groups = await asyncio.gather(*(client(c, http) for c in range(n_clients)))
            return [row for group in groups for row in group]

        rows = asyncio.run(run())
        stats = local.stats()
    ids = [r[0] for r in rows]
    assert len(rows) == n_clients * per_client
    assert len(set(ids)) == len(ids) and len({r[1] for r in rows}) == len(rows)  # each answered once
    assert {r[2] for r in rows} == {"rules"}
    assert stats.decisions == n_clients * per_client and stats.fallbacks == 0
