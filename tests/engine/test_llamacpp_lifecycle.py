"""LlamaCppBackend's lifecycle: finalizers never block, close() works from anywhere, no thread stays.

The issue this guards against: ``__del__`` used to wait on the backend's own thread, which had
already exited when the backend was collected in a reference cycle, so ``gc.collect()`` froze.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path

import llama_cpp
import pytest

from engine.backends.llamacpp import LlamaCppBackend, LlamaCppError
from engine.request import DecisionRequest, Sampling
from models.base import ensure_base_gguf
from tests.conftest import load_public_cases

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
ROOT = Path(__file__).resolve().parents[2]


def os_threads() -> int:
    """Threads of this process as the kernel counts them (llama.cpp's OpenMP workers included)."""
    return len(os.listdir("/proc/self/task"))


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def wait_until(predicate, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def small_backend(max_batch: int = 1) -> LlamaCppBackend:
    return LlamaCppBackend(ensure_base_gguf(), max_batch=max_batch, n_ctx_per_seq=640)


def requests(n: int, **sampling) -> list[DecisionRequest]:
    return [DecisionRequest(c.profile, c.situation, Sampling(**sampling)) for c in load_public_cases()[:n]]


def run_python(script: str, timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
        env=env,
    )


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")


def test_backend_in_a_reference_cycle_is_collected_without_freezing():
    # In a fresh interpreter, exactly as a game would hit it: collected on the main thread.
    # Before the fix this process hung in gc.collect() until it was killed.
    script = f"""
        import gc, json, threading, time
        from engine.backends.llamacpp import LlamaCppBackend
        backend = LlamaCppBackend({str(ensure_base_gguf())!r}, max_batch=1, n_ctx_per_seq=256)
        backend.itself = backend
        del backend
        start = time.perf_counter()
        gc.collect()
        took = time.perf_counter() - start
        for thread in threading.enumerate():
            if thread is not threading.main_thread():
                thread.join(10)
        left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        # a second backend left open at exit must not hold the interpreter up either
        open_at_exit = LlamaCppBackend({str(ensure_base_gguf())!r}, max_batch=1, n_ctx_per_seq=256)
        print(json.dumps({{"collect_s": took, "threads_left": left}}))
    """
    done = run_python(script)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["collect_s"] < 2.0, report
    assert report["threads_left"] == [], report  # the free ran on the backend's thread, which ended


@needs_proc
def test_collection_on_another_thread_frees_without_waiting():
    before, tasks = set(threading.enumerate()), os_threads()
    collected_on: list[str] = []
    gc.disable()  # so the collection happens on the collector thread, not at some allocation here
    try:
        backend = small_backend()
        backend.itself = backend
        weakref.finalize(backend, lambda: collected_on.append(threading.current_thread().name))
        assert len(new_threads(before)) == 1  # the backend's own llama.cpp thread
        del backend
        collector = threading.Thread(target=gc.collect, name="collector")
        collector.start()
        collector.join(10)
    finally:
        gc.enable()
    assert not collector.is_alive(), "gc.collect() blocked in the backend's finalizer"
    assert collected_on == ["collector"]
    assert wait_until(lambda: not new_threads(before)), new_threads(before)
    assert wait_until(lambda: os_threads() <= tasks), (os_threads(), tasks)


@needs_proc
def test_close_is_idempotent_from_any_thread_and_leaves_no_thread():
    before, tasks = set(threading.enumerate()), os_threads()
    backend = small_backend()
    raw = backend.generate(requests(1, max_new_tokens=2))[0]
    assert raw.output_tokens > 0
    assert os_threads() > tasks  # its thread and llama.cpp's OpenMP worker(s)
    closers = [threading.Thread(target=backend.close, name=f"closer-{i}") for i in range(4)]
    for thread in closers:
        thread.start()
    backend.close()
    for thread in closers:
        thread.join(10)
    assert not any(t.is_alive() for t in closers)
    assert new_threads(before) == []  # close() returned after the backend's thread ended
    assert wait_until(lambda: os_threads() <= tasks), (os_threads(), tasks)  # OpenMP's go with it
    backend.close()  # still fine
    with pytest.raises(LlamaCppError, match="closed"):
        backend.generate(requests(1, max_new_tokens=8))


@needs_proc
def test_close_during_a_decode_stops_it_at_the_next_step(monkeypatch):
    before, tasks = set(threading.enumerate()), os_threads()
    backend = small_backend(max_batch=4)
    steps: list[float] = []
    decode = llama_cpp.llama_decode

    def counting_decode(ctx, batch):
        steps.append(time.monotonic())
        return decode(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", counting_decode)
    out: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: out.update(raws=backend.generate(requests(4, max_new_tokens=300, seed=1)))
    )
    worker.start()
    # the prompt chunk, then a few single-token steps: well inside a ~100-step decode
    assert wait_until(lambda: len(steps) >= 6, 120), "the decode never started"
    start = time.monotonic()
    backend.close(timeout_s=0.5)
    took = time.monotonic() - start
    assert took < 1.0, f"close() took {took:.2f} s during a decode"
    # the step in flight finishes (milliseconds here, seconds on an oversubscribed machine), then
    # the batch ends with an error and the thread exits; no further step starts
    worker.join(30)
    assert not worker.is_alive()
    raws = out["raws"]
    assert len(raws) == 4 and all("closed" in (r.error or "") for r in raws), raws
    assert wait_until(lambda: not new_threads(before), 30), new_threads(before)
    assert wait_until(lambda: os_threads() <= tasks), (os_threads(), tasks)
    assert all(t <= start + took for t in steps)


def test_a_failed_load_leaves_no_thread(tmp_path):
    before = set(threading.enumerate())
    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"GGUF" + bytes(1000))
    with pytest.raises(LlamaCppError, match="could not load"):
        LlamaCppBackend(bad)
    assert wait_until(lambda: not new_threads(before)), new_threads(before)


def test_closing_the_service_from_a_ticket_callback_mid_decode_is_safe():
    # continuous batching delivers answers on the backend's own thread, so a callback that closes
    # the service runs inside a decode that still uses llama.cpp's memory: the free must wait
    from characters import Situation
    from engine import DecisionService
    from tests.conftest import load_public_cases

    cases = load_public_cases()[:4]
    service = DecisionService(model="base", max_batch=4, cache_size=0)
    closed = threading.Event()

    def close_on_first(ticket):
        if not closed.is_set():
            closed.set()
            service.close()

    tickets = []
    for i, case in enumerate(cases):
        situation = Situation(context=f"{case.situation.context} (take {i})")
        tickets.append(service.submit(case.profile, situation, seed=i))
        tickets[-1].add_done_callback(close_on_first)
    assert closed.wait(120)
    for ticket in tickets:
        assert ticket.wait(5)  # every ticket ends: answered or cancelled
    assert any(t.cancelled() for t in tickets)  # the close came while others still decoded
