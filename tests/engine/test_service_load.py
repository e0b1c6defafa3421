"""DecisionService under load and faults: every ticket finishes exactly once, close() is prompt."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import CancelledError
from pathlib import Path

import llama_cpp
import pytest

from characters import CharacterProfile, Motivation, Situation
from engine import DecisionService
from engine.request import DecisionRequest, RawDecision
from models.base import ensure_base_gguf
from tests.conftest import FakeBackend, load_public_cases, motivation_json

NAMES = ["Ann", "Bo Lin", "Cy Marsh"]


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def wait_until(predicate, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class ScriptedBackend:
    """Answers for each request's own character; now and then a bad answer or a failed batch."""

    name = "scripted"
    model_id = "scripted-model"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.gate = threading.Event()
        self.calls: list[list[DecisionRequest]] = []

    def generate(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        self.calls.append(list(requests))
        self.gate.wait(30)
        if self.rng.random() < 0.04:
            raise RuntimeError("the backend fell over")
        out = []
        for request in requests:
            roll = self.rng.random()
            if roll < 0.08:
                text = '{"purpose_a": "half an ans'
            elif roll < 0.12:
                same = f"{request.profile.name} waits for the bread to rise."
                text = json.dumps({"purpose_a": same, "purpose_b": same, "purpose_c": same})  # sanity
            else:
                text = motivation_json(request.profile.name, tag=f" ({request.situation.context[:12]})")
            out.append(RawDecision(text=text, prompt_tokens=90, output_tokens=60))
        return out


def test_a_thousand_queued_decisions_each_finish_exactly_once():
    rng = random.Random(12)
    backend = ScriptedBackend(random.Random(3))
    profiles = [CharacterProfile(name=n, description=f"{n}, a baker.") for n in NAMES]
    before = set(threading.enumerate())
    service = DecisionService(backend, max_batch=16, max_queue=1000, gather_s=0.0)
    finishes: list[int] = []  # list.append is atomic; callbacks run on several threads
    plans = [
        (i, rng.choice([None, None, None, 0.0, 0.05, 0.3, 30.0]), rng.randint(-2, 3)) for i in range(1000)
    ]
    tickets: dict[int, object] = {}
    lock = threading.Lock()

    def submit_all(chunk):
        for i, deadline_s, priority in chunk:
            ticket = service.submit(
                profiles[i % 3],
                Situation(context=f"Case {i:04d}: the oven smokes."),
                priority=priority,
                deadline_s=deadline_s,
                seed=i,
            )
            ticket.add_done_callback(lambda t: finishes.append(t.id))
            with lock:
                tickets[i] = ticket

    submitters = [threading.Thread(target=submit_all, args=(plans[k::4],)) for k in range(4)]
    for thread in submitters:
        thread.start()
    for thread in submitters:
        thread.join(30)
    assert len(tickets) == 1000
    to_cancel = [tickets[i] for i in rng.sample(range(1000), 150)]

    def cancel_some():
        for ticket in to_cancel:  # while the worker runs: some are queued, some in a batch, some done
            ticket.cancel()
            time.sleep(0.0005)

    canceller = threading.Thread(target=cancel_some)
    canceller.start()
    backend.gate.set()
    polled = []
    end = time.monotonic() + 60
    while len(polled) < 1000 and time.monotonic() < end:  # the game's frame loop
        polled.extend(service.poll())
        time.sleep(0.002)
    canceller.join(10)
    service.close()

    assert len(polled) == 1000 and len({t.id for t in polled}) == 1000
    assert Counter(finishes) == Counter({t.id: 1 for t in tickets.values()})
    sources = Counter()
    for i, deadline_s, _ in plans:
        ticket = tickets[i]
        assert ticket.done()
        if ticket.cancelled():
            with pytest.raises(CancelledError):
                ticket.result(0)
            sources["cancelled"] += 1
            continue
        result = ticket.result(0)
        Motivation.model_validate(result.motivation.model_dump())
        assert NAMES[i % 3] in result.motivation.purpose_a
        sources[result.source] += 1
        if deadline_s == 0.0:
            assert (result.source, result.reason) == ("fallback", "deadline")
    # every path was taken: answers, retries, fallbacks (deadline, invalid, failed batch), cancels
    assert all(sources[k] > 0 for k in ("model", "retry", "fallback", "cancelled")), sources
    assert sources["cancelled"] <= 150
    # after the first batch (taken before the queue filled), higher priorities reached the backend first
    priority = {f"Case {i:04d}: the oven smokes.": p for i, _, p in plans}
    early = {request.situation.context for request in backend.calls[0]}
    first_seen: dict[str, int] = {}
    for n, call in enumerate(backend.calls[1:]):
        for request in call:
            if request.situation.context not in early:
                first_seen.setdefault(request.situation.context, n)
    order = sorted(first_seen.items(), key=lambda kv: kv[1])
    served = [priority[context] for context, _ in order]
    assert served == sorted(served, reverse=True)
    assert new_threads(before) == []


def test_a_backend_breaking_its_contract_gives_fallbacks_and_the_worker_lives_on(profile, situation):
    class Broken(FakeBackend):
        def generate(self, requests):
            return [RawDecision(text=None)] * len(requests)  # not text: the chain cannot parse it

    broken = Broken()
    with DecisionService(broken) as service:
        first = service.submit(profile, situation, seed=1).result(timeout=10)
        broken.generate = FakeBackend(default=motivation_json(profile.name)).generate  # mended
        second = service.submit(profile, situation, seed=2).result(timeout=10)
    assert first.source == "fallback" and first.reason.startswith("internal: TypeError")
    assert second.source == "model"


def test_close_returns_in_time_while_a_callers_backend_is_stuck(profile, situation):
    backend = FakeBackend()
    backend.release.clear()  # generate() blocks until released (10 s at most)
    before = set(threading.enumerate())
    service = DecisionService(backend)
    running = service.submit(profile, situation, seed=1)
    queued = service.submit(profile, situation, seed=2)
    assert wait_until(lambda: backend.calls, 5)
    start = time.monotonic()
    service.close(timeout_s=0.5)
    took = time.monotonic() - start
    assert took < 1.0
    assert running.cancelled() and queued.cancelled()
    backend.release.set()  # the caller's backend returns; the worker then ends on its own
    assert wait_until(lambda: not new_threads(before), 10), new_threads(before)


def test_rules_service_leaves_no_thread_after_close(profile, situation):
    before = set(threading.enumerate())
    service = DecisionService("rules", workers=2)
    assert len(new_threads(before)) == 3  # two workers and the deadline watcher
    service.submit(profile, situation).result(timeout=5)
    service.close()
    service.close()  # idempotent
    assert new_threads(before) == []


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_close_while_decoding_returns_within_a_second(monkeypatch):
    before, tasks = set(threading.enumerate()), len(os.listdir("/proc/self/task"))
    service = DecisionService(model=str(ensure_base_gguf()), max_batch=8)  # the service owns its backend
    steps: list[float] = []
    decode = llama_cpp.llama_decode

    def counting_decode(ctx, batch):
        steps.append(time.monotonic())
        return decode(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", counting_decode)
    finishes: list[int] = []
    tickets = []
    for i, case in enumerate(load_public_cases()[:8]):
        ticket = service.submit(case.profile, case.situation, seed=i)
        ticket.add_done_callback(lambda t: finishes.append(t.id))
        tickets.append(ticket)
    assert wait_until(lambda: len(steps) >= 5, 120), "the decode never started"
    start = time.monotonic()
    service.close()
    took = time.monotonic() - start
    assert took < 1.0, f"close() took {took:.2f} s while decoding"
    assert all(t.cancelled() for t in tickets)
    assert sorted(finishes) == sorted(t.id for t in tickets)  # each exactly once
    # The threads end once the llama.cpp step in flight returns: at once on an idle machine, a
    # few seconds on a badly oversubscribed one. No step starts after close().
    assert wait_until(lambda: not new_threads(before), 30), new_threads(before)
    assert wait_until(lambda: len(os.listdir("/proc/self/task")) <= tasks), "llama.cpp's threads stayed"
    assert all(t <= start + took for t in steps)
    assert sorted(finishes) == sorted(t.id for t in tickets)  # nothing finished twice meanwhile
