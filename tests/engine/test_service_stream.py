"""Continuous batching in the service: tickets join a running decode, answers leave as they end."""

import time

import pytest

from characters import Situation
from engine import DecisionService
from tests.conftest import FakeStreamBackend, motivation_json


def _wait_for(condition, timeout_s=5.0):
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.005)


def test_a_ticket_submitted_during_a_decode_joins_it_and_each_answer_leaves_when_it_ends(profile, situation):
    backend = FakeStreamBackend(default=motivation_json("Chloe"), steps=6, step_s=0.05)
    with DecisionService(backend, cache_size=0) as service:
        first = service.submit(profile, situation, seed=1)
        _wait_for(lambda: backend.live)  # the first is decoding
        second = service.submit(profile, Situation(context="The till jams during the rush."), seed=2)
        a = first.result(timeout=5)
        assert not second.done()  # the first answer did not wait for the second
        b = second.result(timeout=5)
    assert a.source == b.source == "model"
    assert backend.streams == 1  # one running decode took both
    assert [len(call) for call in backend.calls] == [1, 1] and max(backend.live) == 2
    assert service.stats().mean_batch_size > 1


def test_a_bad_answer_is_retried_inside_the_running_decode(profile, situation):
    backend = FakeStreamBackend(['{"purpose_a": "Chloe runs', motivation_json("Chloe", " again")])
    with DecisionService(backend) as service:
        result = service.submit(profile, situation, seed=5).result(timeout=5)
    assert result.source == "retry" and result.attempts == 2 and "again" in result.motivation.purpose_a
    assert backend.calls[0][0].sampling.seed == 5
    assert backend.calls[1][0].sampling.seed != 5
    assert backend.streams == 1 and service.stats().retries == 1


def test_two_bad_answers_fall_back_to_rules(profile, situation):
    backend = FakeStreamBackend(["[1, 2, 3]", "[1, 2, 3]"])
    with DecisionService(backend) as service:
        result = service.submit(profile, situation).result(timeout=5)
    assert result.source == "fallback" and result.reason.startswith("invalid:")
    assert all(profile.name in p for p in result.motivation.purposes())


def test_a_backend_that_raises_gives_fallbacks_and_the_service_goes_on(profile, situation):
    backend = FakeStreamBackend([RuntimeError("boom")], default=motivation_json("Chloe"))
    with DecisionService(backend, cache_size=0) as service:
        broken = service.submit(profile, situation, seed=1).result(timeout=5)
        assert broken.source == "fallback" and "boom" in broken.reason
        assert service.submit(profile, situation, seed=2).result(timeout=5).source == "model"
    assert backend.streams == 2


def test_max_batch_caps_how_many_decode_together(profile, situation):
    backend = FakeStreamBackend(default=motivation_json("Chloe"), steps=2, step_s=0.02)
    with DecisionService(backend, max_batch=2, cache_size=0) as service:
        tickets = [service.submit(profile, situation, seed=i) for i in range(5)]
        assert all(t.result(timeout=5).source == "model" for t in tickets)
    assert max(backend.live) == 2 and sum(len(call) for call in backend.calls) == 5


def test_a_deadline_answers_in_time_and_the_decode_drops_the_ticket(profile, situation):
    backend = FakeStreamBackend(default=motivation_json("Chloe"))
    backend.release.clear()  # the model hangs
    with DecisionService(backend) as service:
        start = time.monotonic()
        result = service.submit(profile, situation, deadline_s=0.1).result(timeout=2)
        assert result.source == "fallback" and result.reason == "deadline"
        assert time.monotonic() - start < 0.5
        backend.release.set()
        _wait_for(lambda: not service._running)  # the decode dropped it
        assert service.stats().retries == 0 and len(backend.calls) == 1  # and did not retry it


def test_close_during_a_decode_cancels_what_is_running_and_queued(profile, situation):
    backend = FakeStreamBackend(default=motivation_json("Chloe"), max_batch=1)
    backend.release.clear()
    service = DecisionService(backend)
    running = service.submit(profile, situation, seed=1)
    _wait_for(lambda: backend.calls)
    queued = service.submit(profile, situation, seed=2)
    service.close()
    assert running.cancelled() and queued.cancelled()
    backend.release.set()


@pytest.mark.parametrize("continuous", [False, True])
def test_whole_batches_remain_selectable(continuous, profile, situation):
    backend = FakeStreamBackend(default=motivation_json("Chloe"))
    with DecisionService(backend, continuous=continuous) as service:
        assert service.submit(profile, situation).result(timeout=5).source == "model"
    assert backend.streams == (1 if continuous else 0)


class _FailsBeforeTaking(FakeStreamBackend):
    """A stream backend that raises before asking for any request, ``failures`` times."""

    def __init__(self, failures, **kwargs):
        super().__init__(**kwargs)
        self.failures = failures

    def generate_stream(self, take, emit):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("closed")
        return super().generate_stream(take, emit)


def test_a_backend_that_fails_before_taking_anything_answers_the_queue_and_does_not_spin(profile, situation):
    backend = _FailsBeforeTaking(1, default=motivation_json("Chloe"))
    with DecisionService(backend, cache_size=0) as service:
        first = service.submit(profile, situation, seed=1).result(timeout=5)  # no deadline to save it
        assert first.source == "fallback" and first.reason == "backend: RuntimeError: closed"
        assert service.pending() == 0 and not service._running
        assert service.submit(profile, situation, seed=2).result(timeout=5).source == "model"


def test_a_retry_answered_by_its_deadline_leaves_nothing_running(profile, situation):
    backend = FakeStreamBackend(["[1, 2, 3]"], default=motivation_json("Chloe"), steps=3, step_s=0.05)
    with DecisionService(backend, cache_size=0) as service:
        busy = service.submit(profile, situation, seed=1, deadline_s=0.22)  # bad at 0.15 s, retry due 0.3 s
        assert busy.result(timeout=5).reason == "deadline"
        _wait_for(lambda: not service._running)  # the retry was dropped and forgotten
        assert service.stats().retries == 1
        assert service.submit(profile, situation, seed=2).result(timeout=5).source == "model"
