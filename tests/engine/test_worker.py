"""WorkerBackend: the llama.cpp backend in a child process, same answers, bounded shutdown."""

import time

import pytest

from engine import DecisionService
from engine.backends.llamacpp import LlamaCppBackend
from engine.backends.worker import WorkerBackend, WorkerError
from engine.models import load_backend
from engine.request import DecisionRequest, Sampling
from models.base import ensure_base_gguf
from tests.conftest import load_public_cases

pytestmark = pytest.mark.slow


def _requests(n, **sampling):
    return [DecisionRequest(c.profile, c.situation, Sampling(**sampling)) for c in load_public_cases()[:n]]


@pytest.fixture(scope="module")
def worker():
    backend = load_backend(str(ensure_base_gguf()), isolation="process", max_batch=2, n_ctx_per_seq=512)
    assert isinstance(backend, WorkerBackend)
    yield backend
    backend.close()


def test_the_worker_answers_as_the_in_thread_backend(worker):
    requests = _requests(2, temperature=0.9, seed=7, max_new_tokens=24)
    local = LlamaCppBackend(ensure_base_gguf(), max_batch=2, n_ctx_per_seq=512)
    try:
        expected = [raw.text for raw in local.generate(requests)]
    finally:
        local.close()
    got = worker.generate(requests)
    assert [raw.text for raw in got] == expected
    assert all(raw.output_tokens > 0 and raw.prompt_tokens > 100 for raw in got)
    assert worker.model_id == "SmolLM2-135M-Instruct.Q4_1" and worker.max_batch == 2
    assert worker.stats()["prefix_cache"]["entries"] == 2  # the child's cache


def test_settings_and_calls_reach_the_child(worker):
    worker.set("jump_forward", False)
    assert worker.stats()["jump_forward"]["enabled"] is False
    worker.set("jump_forward", True)
    assert worker.call("decode_floor", [140], [3]) > 0
    with pytest.raises(WorkerError, match="AttributeError"):
        worker.call("no_such_method")


def test_a_service_over_a_dead_worker_falls_back_and_close_is_bounded():
    backend = WorkerBackend(ensure_base_gguf(), max_batch=1, n_ctx_per_seq=512)
    backend._process.kill()  # the decoder crashes
    backend._process.wait(10)
    with pytest.raises(WorkerError, match="died"):
        backend.generate(_requests(1, max_new_tokens=8))
    case = load_public_cases()[0]
    with DecisionService(backend) as service:
        result = service.submit(case.profile, case.situation).result(timeout=30)
    assert result.source == "fallback"  # the game still gets an answer
    started = time.monotonic()
    backend.close()
    backend.close()  # idempotent
    assert time.monotonic() - started < 5
    with pytest.raises(WorkerError, match="closed"):
        backend.generate(_requests(1))


def test_a_bad_model_is_an_error_from_the_constructor(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf")
    with pytest.raises(WorkerError, match="LlamaCppError"):
        WorkerBackend(broken, start_timeout_s=60)
