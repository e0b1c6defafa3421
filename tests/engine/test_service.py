import asyncio
import json
import threading
import time
from concurrent.futures import CancelledError

import pytest

from characters import Motivation, Situation
from engine import DecisionService, QueueFull, decide, decide_async
from tests.conftest import FakeBackend, motivation_json


def wait_all(service, tickets, timeout_s=5.0):
    for ticket in tickets:
        ticket.result(timeout=timeout_s)


def test_valid_output_comes_back_as_model(profile, situation):
    backend = FakeBackend([motivation_json("Chloe")])
    with DecisionService(backend) as service:
        result = service.submit(profile, situation).result(timeout=5)
    assert result.source == "model"
    assert result.motivation.purpose_a.startswith("Chloe fixes")
    assert (result.prompt_tokens, result.output_tokens) == (100, 40)
    assert result.latency_ms > 0


BAD_OUTPUTS = {
    "malformed": '{"purpose_a": "Chloe runs',
    "extra_field": json.dumps({**json.loads(motivation_json()), "purpose_d": "extra"}),
    "duplicates": json.dumps(
        {"purpose_a": "Chloe works.", "purpose_b": "Chloe works!", "purpose_c": "Chloe rests."}
    ),
    "empty": json.dumps({"purpose_a": "", "purpose_b": "Chloe works.", "purpose_c": "Chloe rests."}),
    "whitespace": json.dumps({"purpose_a": "   ", "purpose_b": "Chloe works.", "purpose_c": "Chloe rests."}),
    "not_object": "[1, 2, 3]",
}


@pytest.mark.parametrize("kind", sorted(BAD_OUTPUTS))
def test_bad_output_is_retried_with_new_seed(kind, profile, situation):
    backend = FakeBackend([BAD_OUTPUTS[kind], motivation_json("Chloe", " again")])
    with DecisionService(backend) as service:
        result = service.submit(profile, situation, seed=5).result(timeout=5)
    assert result.source == "retry"
    assert result.attempts == 2
    assert "again" in result.motivation.purpose_a
    seeds = [call[0].sampling.seed for call in backend.calls]
    assert seeds[0] == 5 and seeds[1] != 5
    assert service.stats().retries == 1


@pytest.mark.parametrize("kind", sorted(BAD_OUTPUTS))
def test_two_bad_outputs_fall_back_to_rules(kind, profile, situation):
    backend = FakeBackend([BAD_OUTPUTS[kind], BAD_OUTPUTS[kind]])
    with DecisionService(backend) as service:
        result = service.submit(profile, situation).result(timeout=5)
    assert result.source == "fallback"
    assert result.reason and result.reason.startswith("invalid:")
    Motivation.model_validate(result.motivation.model_dump())  # still a valid Motivation
    assert all(profile.name in p for p in result.motivation.purposes())
    assert service.stats().fallbacks == 1


def test_backend_exception_falls_back(profile, situation):
    backend = FakeBackend([RuntimeError("boom"), RuntimeError("boom again")])
    with DecisionService(backend) as service:
        result = service.submit(profile, situation).result(timeout=5)
    assert result.source == "fallback"
    assert "boom" in result.reason


def test_deadline_yields_fallback_in_time(profile, situation):
    backend = FakeBackend()
    backend.release.clear()  # the model hangs until released
    with DecisionService(backend) as service:
        start = time.monotonic()
        ticket = service.submit(profile, situation, deadline_s=0.1)
        result = ticket.result(timeout=2)
        took = time.monotonic() - start
        assert result.source == "fallback" and result.reason == "deadline"
        assert took < 0.5
        backend.release.set()
        # the late model answer is cached, so the next identical request is a cache hit
        for _ in range(100):
            if len(service.cache):
                break
            time.sleep(0.01)
        again = service.submit(profile, situation).result(timeout=2)
        assert again.source == "cache"


def test_cancel_before_running(profile, situation):
    backend = FakeBackend()
    backend.release.clear()
    with DecisionService(backend, max_batch=1) as service:
        first = service.submit(profile, situation)
        other = Situation(context="Something else entirely happens.")
        second = service.submit(profile, other)
        assert second.cancel() is True
        assert second.done() and second.cancelled()
        with pytest.raises(CancelledError):
            second.result(timeout=1)
        backend.release.set()
        first.result(timeout=5)
        time.sleep(0.05)
        assert all(len(call) == 1 and call[0].situation.context != other.context for call in backend.calls)
        finished = service.poll()
        assert second in finished and first in finished


def test_bounded_queue_raises_queue_full(profile):
    backend = FakeBackend()
    backend.release.clear()
    with DecisionService(backend, max_batch=1, max_queue=3) as service:
        service.submit(profile, Situation(context="first, taken by the worker"))
        time.sleep(0.05)
        for i in range(3):
            service.submit(profile, Situation(context=f"queued {i}"))
        with pytest.raises(QueueFull, match="3 waiting"):
            service.submit(profile, Situation(context="one too many"))
        backend.release.set()


def test_cache_hit_is_immediate_and_flagged(profile, situation):
    backend = FakeBackend()
    with DecisionService(backend) as service:
        first = service.submit(profile, situation, seed=1).result(timeout=5)
        hit = service.submit(profile, situation, seed=1)
        assert hit.done()  # answered inside submit, no queue round trip
        assert hit.result().source == "cache"
        assert hit.result().motivation == first.motivation
        miss = service.submit(profile, situation, seed=2).result(timeout=5)
        assert miss.source == "model"
    assert len(backend.calls) == 2
    assert service.stats().cache_hits == 1


def test_cache_key_tells_every_input_apart_and_only_them(profile, situation):
    from engine.request import DecisionRequest, Sampling

    def key(p=profile, s=situation, sampling=None, model="m", prompt="v1"):
        return DecisionRequest(p, s, sampling or Sampling(seed=1)).cache_key(model, prompt)

    same = key(profile.model_copy(), situation.model_copy())
    assert key() == same
    others = [
        key(p=profile.model_copy(update={"name": profile.name + "x"})),
        key(p=profile.model_copy(update={"background": "Moved here last spring."})),
        key(s=situation.model_copy(update={"context": situation.context + "!"})),
        key(s=situation.model_copy(update={"recent_events": ["the oven broke"]})),
        key(sampling=Sampling(seed=2)),
        key(sampling=Sampling(seed=1, temperature=0.2)),
        key(model="n"),
        key(prompt="v2"),
    ]
    assert len({same, *others}) == len(others) + 1


def test_a_service_without_a_cache_never_hits(profile, situation):
    backend = FakeBackend()
    with DecisionService(backend, cache_size=0) as service:
        service.submit(profile, situation, seed=1).result(timeout=5)
        again = service.submit(profile, situation, seed=1).result(timeout=5)
    assert again.source == "model" and len(backend.calls) == 2
    assert service.stats().cache_hits == 0


def test_requests_submitted_together_share_one_batch(profile):
    backend = FakeBackend()
    backend.release.clear()
    with DecisionService(backend, max_batch=16) as service:
        blocker = service.submit(profile, Situation(context="occupies the worker"))
        time.sleep(0.05)
        tickets = [service.submit(profile, Situation(context=f"case {i}")) for i in range(10)]
        backend.release.set()
        wait_all(service, [blocker, *tickets])
    assert [len(call) for call in backend.calls] == [1, 10]
    assert service.stats().max_batch_size == 10


def test_priority_orders_the_queue(profile):
    backend = FakeBackend()
    backend.release.clear()
    with DecisionService(backend, max_batch=1) as service:
        service.submit(profile, Situation(context="blocker"))
        time.sleep(0.05)
        low = service.submit(profile, Situation(context="low"), priority=0)
        high = service.submit(profile, Situation(context="high"), priority=5)
        backend.release.set()
        wait_all(service, [low, high])
    order = [call[0].situation.context for call in backend.calls]
    assert order == ["blocker", "high", "low"]


def test_poll_never_blocks_while_model_is_busy(profile, situation):
    backend = FakeBackend()
    backend.release.clear()
    with DecisionService(backend) as service:
        service.submit(profile, situation)
        start = time.perf_counter()
        for _ in range(1000):
            service.poll()
        assert (time.perf_counter() - start) < 0.5
        assert service.poll() == []
        backend.release.set()


def test_stats_report_percentiles_and_sources(profile):
    backend = FakeBackend([motivation_json("Chloe", str(i)) for i in range(5)])
    with DecisionService(backend) as service:
        tickets = [service.submit(profile, Situation(context=f"c{i}")) for i in range(5)]
        wait_all(service, tickets)
        stats = service.stats()
    assert stats.decisions == 5 and stats.by_source == {"model": 5}
    assert 0 < stats.p50_latency_ms <= stats.p95_latency_ms
    assert stats.tokens_per_s > 0 and stats.mean_batch_size >= 1


def test_decide_sync_and_async(profile, situation):
    with DecisionService(FakeBackend()) as service:
        assert decide(profile, situation, service=service).source == "model"
        result = asyncio.run(decide_async(profile, situation, service=service, seed=3))
        assert result.source == "model"


def test_async_callers_do_not_block_event_loop(profile):
    backend = FakeBackend(delay_s=0.2)

    async def main(service):
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await decide_async(profile, Situation(context="async"), service=service)
        task.cancel()
        return ticks

    with DecisionService(backend) as service:
        assert asyncio.run(main(service)) >= 5


def test_rules_service_is_deterministic(profile, situation):
    with DecisionService("rules") as a, DecisionService("rules") as b:
        ra = a.submit(profile, situation, seed=4).result(timeout=5)
        rb = b.submit(profile, situation, seed=4).result(timeout=5)
    assert ra.motivation == rb.motivation


def test_close_cancels_queued(profile):
    backend = FakeBackend()
    backend.release.clear()
    service = DecisionService(backend, max_batch=1)
    service.submit(profile, Situation(context="running"))
    time.sleep(0.05)
    queued = service.submit(profile, Situation(context="waiting"))
    threading.Timer(0.1, backend.release.set).start()
    service.close()
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="closed"):
        service.submit(profile, Situation(context="late"))


def test_a_ticket_answered_by_its_deadline_is_abandoned_for_the_backend(profile, situation):
    backend = FakeBackend()
    backend.release.clear()
    with DecisionService(backend) as service:
        ticket = service.submit(profile, situation, deadline_s=0.05)
        assert ticket.result(timeout=5).reason == "deadline"
        deadline = time.monotonic() + 5
        while not backend.calls and time.monotonic() < deadline:
            time.sleep(0.005)
        assert backend.calls[0][0].is_abandoned()  # a backend may stop decoding it
        backend.release.set()
        time.sleep(0.05)
        stats = service.stats()
    assert stats.retries == 0 and stats.fallbacks == 1


def test_tickets_answered_by_their_deadline_free_their_queue_places(profile, situation):
    backend = FakeBackend()
    backend.release.clear()  # the worker sits in one batch; the queue (max 2) fills behind it
    with DecisionService(backend, max_queue=2, cache_size=0) as service:
        service.submit(profile, situation, seed=0)
        deadline = time.monotonic() + 5
        while not backend.calls and time.monotonic() < deadline:
            time.sleep(0.005)
        expiring = [service.submit(profile, situation, seed=i, deadline_s=0.05) for i in (1, 2)]
        assert all(t.result(timeout=5).reason == "deadline" for t in expiring)
        assert service.pending() == 0 and service.stats().queued == 0
        later = [service.submit(profile, situation, seed=i) for i in (3, 4)]  # no QueueFull
        with pytest.raises(QueueFull):
            service.submit(profile, situation, seed=5)
        backend.release.set()
        assert all(t.result(timeout=5).source == "model" for t in later)


def test_under_overload_a_ticket_that_cannot_make_its_deadline_gets_its_fallback_at_once(profile, situation):
    backend = FakeBackend(delay_s=0.3)
    with DecisionService(backend, cache_size=0, gather_s=0.05) as service:  # the next two share a batch
        first = service.submit(profile, situation, seed=0).result(timeout=5)
        assert first.source == "model"  # the service now knows a batch takes ~0.3 s
        hopeless = service.submit(profile, situation, seed=1, deadline_s=0.15)
        feasible = service.submit(profile, situation, seed=2, deadline_s=5.0)
        early = hopeless.result(timeout=5)
        assert early.source == "fallback" and early.reason.startswith("deadline: too little time")
        assert early.latency_ms < 140  # answered when the batch was formed, before its deadline
        assert feasible.result(timeout=5).source == "model"
        assert [r.sampling.seed for r in backend.calls[-1]] == [2]  # the model only got the feasible one
        # alone, a hopeless ticket still goes to the model: only a batch can renew a stale estimate
        lone = service.submit(profile, situation, seed=3, deadline_s=0.15)
        assert lone.result(timeout=5).reason == "deadline"
        deadline = time.monotonic() + 5
        while [r.sampling.seed for r in backend.calls[-1]] != [3] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.sampling.seed for r in backend.calls[-1]] == [3]


def test_a_ticket_already_past_its_deadline_gets_a_plain_deadline_and_never_reaches_the_model(
    profile, situation
):
    backend = FakeBackend(delay_s=0.3)
    with DecisionService(backend, cache_size=0, gather_s=0.05) as service:
        assert service.submit(profile, situation, seed=0).result(timeout=5).source == "model"
        # the service now estimates a batch at ~0.3 s. These expire during the 50 ms gather; the
        # deadline thread is held off (as on a loaded machine), so the batch being formed finds them
        # past their deadline: that is a plain "deadline", not "too little time left" (seen under load)
        expired = [service.submit(profile, situation, seed=10 + i, deadline_s=0.02) for i in range(5)]
        feasible = service.submit(profile, situation, seed=2, deadline_s=5.0)
        with service._deadline_cond:
            time.sleep(0.3)
        assert [t.result(timeout=5).reason for t in expired] == ["deadline"] * 5
        assert feasible.result(timeout=5).source == "model"
        sent = {r.sampling.seed for call in backend.calls for r in call}
        assert sent == {0, 2}
