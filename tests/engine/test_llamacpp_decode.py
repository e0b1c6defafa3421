"""The decode path's speed-ups change nothing: prompt cache, jump-forward, planned calls, compaction.

Exactness is checked where it can be exact: greedy decoding of the F16 model (the base, requantized),
whose calls the backend plans so that llama.cpp gives each token the same numbers whatever else is
in the batch. There the cached-prefix and jump-forward paths must give the plain path's tokens.
"""

import json
from pathlib import Path

import llama_cpp
import pytest

from characters import CharacterProfile, Situation
from engine.backends.llamacpp import LlamaCppBackend, quantize_gguf
from engine.backends.prefix_cache import PrefixCache
from engine.backends.thread_governor import THREAD_NAME, ThreadGovernor
from engine.request import DecisionRequest, Sampling
from models.base import ensure_base_gguf
from tests.conftest import load_public_cases

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def f16(tmp_path_factory):
    path = tmp_path_factory.mktemp("f16") / "base-f16.gguf"
    quantize_gguf(ensure_base_gguf(), path, "F16")
    backend = LlamaCppBackend(path, max_batch=4, n_ctx_per_seq=512)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def q4():
    backend = LlamaCppBackend(ensure_base_gguf(), max_batch=4, n_ctx_per_seq=1024)
    yield backend
    backend.close()


def _greedy(n_tokens, cases=None):
    cases = cases or load_public_cases()
    return [
        DecisionRequest(c.profile, c.situation, Sampling(temperature=0.0, max_new_tokens=m))
        for c, m in zip(cases, n_tokens, strict=False)
    ]


def _tokens(backend, requests, *, one_at_a_time=False):
    backend._token_log = []
    try:
        batches = [[r] for r in requests] if one_at_a_time else [requests]
        raws = [raw for batch in batches for raw in backend.generate(batch)]
        assert all(raw.output_tokens > 0 for raw in raws)
        return backend._token_log
    finally:
        backend._token_log = None


def _configure(backend, *, cache, jump):
    backend.prefix_cache = PrefixCache((64 << 20) if cache else 0)
    backend.jump_forward = jump


def test_cached_prefix_and_jump_forward_give_the_plain_path_tokens(f16):
    assert f16.batch_invariant  # float weights: planned calls keep every token's numbers fixed
    # different lengths: sequences finish apart, so live ones move into the ids finished ones left,
    # and the last one decodes alone, which is where jump-forward runs
    requests = _greedy([44, 26, 36, 18])
    _configure(f16, cache=False, jump=False)
    plain = _tokens(f16, requests)
    plain_alone = _tokens(f16, requests, one_at_a_time=True)
    assert plain_alone == plain  # batch-invariant: a decision does not depend on its batch
    before = f16.stats()

    _configure(f16, cache=True, jump=True)
    cold = _tokens(f16, requests)  # fills the cache
    warm = _tokens(f16, requests)  # every character's prompt restored, only its last token re-fed
    alone = _tokens(f16, requests, one_at_a_time=True)  # jump-forward from the first step
    assert cold == plain and warm == plain and alone == plain  # tokens and their logits, bit for bit

    after = f16.stats()
    cache, jump = after["prefix_cache"], after["jump_forward"]
    assert cache["hits"] >= 8 and cache["reused_tokens"] > 8 * 100  # the test exercised the cache
    assert jump["accepted_tokens"] > 0 and jump["drafted_tokens"] >= jump["accepted_tokens"]
    assert after["slot_moves"] > before["slot_moves"]  # and compaction


def test_a_changed_profile_reuses_the_shared_lines_and_still_matches(f16):
    case = load_public_cases()[1]
    changed = case.profile.model_copy(update={"background": f"{case.profile.background} Lately: a fire."})
    first = DecisionRequest(case.profile, case.situation, Sampling(temperature=0.0, max_new_tokens=30))
    second = DecisionRequest(changed, case.situation, Sampling(temperature=0.0, max_new_tokens=30))
    _configure(f16, cache=False, jump=False)
    plain = _tokens(f16, [second])
    _configure(f16, cache=True, jump=True)
    _tokens(f16, [first])
    assert _tokens(f16, [second]) == plain
    stats = f16.stats()["prefix_cache"]
    assert stats["partial_hits"] == 1 and stats["entries"] == 1  # the new prompt replaced the old


def test_forced_runs_come_from_the_grammar(q4):
    request = DecisionRequest(load_public_cases()[0].profile, load_public_cases()[0].situation)
    name = request.profile.name
    grammar = q4._slot_grammar(0, request)  # the name-anchored grammar

    def feed(text):
        for token in q4._tokenize_bytes(text.encode()):
            llama_cpp.llama_sampler_accept(grammar, token)

    try:
        assert q4._forced_bytes(grammar) == b"{"  # then a space or a quote: a choice
        feed('{"')
        assert q4._forced_bytes(grammar) == b'purpose_a"'
        feed('purpose_a":"')
        assert q4._forced_bytes(grammar) == b""  # the name, or a lead-in that could start the same
        feed("Hands shaking, ")
        assert q4._forced_bytes(grammar) == name.encode()  # after a lead-in, only the name fits
    finally:
        llama_cpp.llama_sampler_free(grammar)


def test_quantized_paths_answer_and_count(q4):
    # Quantized weights are not batch-invariant here, so outputs may differ in their last bits
    # from the plain path's; what must hold is that every path answers with the schema.
    requests = [
        # room for the longest answer the grammar admits (3 purposes of 200 characters, at worst a
        # token a character: the untuned base sometimes fills a purpose with digits)
        DecisionRequest(c.profile, c.situation, Sampling(seed=i, max_new_tokens=700))
        for i, c in enumerate(load_public_cases()[:2])
    ]
    _configure(q4, cache=True, jump=True)
    for raws in (q4.generate(requests), q4.generate(requests), [q4.generate([r])[0] for r in requests]):
        for raw in raws:
            assert raw.error is None, raw.error
            assert set(json.loads(raw.text)) == {"purpose_a", "purpose_b", "purpose_c"}
    stats = q4.stats()
    assert stats["prefix_cache"]["hits"] >= 4 and stats["jump_forward"]["accepted_tokens"] > 0
    assert not stats["batch_invariant"] and stats["pad_tokens"] == 0


def test_a_character_state_is_not_reused_for_someone_else(q4):
    # the cache is keyed by name but decides reuse by tokens: same name, other person, no harm
    base = load_public_cases()[0]
    other = CharacterProfile(name=base.profile.name, description="Male, 70, retired sailor.")
    _configure(q4, cache=True, jump=True)
    requests = [
        DecisionRequest(p, Situation(context="Rain on the harbour."), Sampling(seed=1, max_new_tokens=24))
        for p in (base.profile, other, base.profile)
    ]
    raws = [q4.generate([r])[0] for r in requests]
    assert all(raw.text.startswith("{") and raw.output_tokens > 0 for raw in raws)
    assert q4.stats()["prefix_cache"]["partial_hits"] >= 2


def test_requests_joining_a_running_decode_give_the_plain_path_tokens(f16):
    # continuous batching: requests taken between steps of a decode already under way, prefilled
    # in their own calls next to live sequences, still decode exactly as they would alone
    requests = _greedy([40, 20, 28, 14])
    _configure(f16, cache=True, jump=True)
    plain = [(raw.text, raw.output_tokens, raw.error) for raw in f16.generate(requests)]
    arrivals = {0: [requests[0]], 3: [requests[1], requests[2]], 9: [requests[3]]}  # take() call -> new
    asked: list[int] = []
    emitted = []

    def take(room):
        new = arrivals.get(len(asked), [])
        asked.append(room)
        return new

    mean_live = f16.generate_stream(take, lambda request, raw: emitted.append((request, raw)))
    assert len(asked) > 10 and asked[:5] == [4, 3, 3, 3, 1]  # asked each step, for the room left
    got = {id(request): (raw.text, raw.output_tokens, raw.error) for request, raw in emitted}
    assert [got[id(r)] for r in requests] == plain  # errors too: the short ones hit max_new_tokens
    order = [requests.index(request) for request, _ in emitted]
    assert order[-1] == 0 and order.index(3) < order.index(0)  # each answer leaves when it ends
    assert 1 < mean_live <= 4
    assert f16.stats()["prefix_cache"]["entries"] >= 4  # nothing left live in the KV cache:
    assert all(llama_cpp.llama_memory_seq_pos_max(f16._mem, seq) == -1 for seq in range(1, 5))


def test_the_thread_count_changes_no_token(f16):
    # the governor switches llama.cpp's threads between calls: that must not change an answer
    cores = f16.stats()["threads"]["max"]
    if not cores or cores < 2:
        pytest.skip("needs 2 threads and the thread governor (Linux, OpenMP build)")
    requests = _greedy([30, 22])
    _configure(f16, cache=False, jump=False)
    f16.configure_decode(adaptive_threads=False)  # pinned, so the two runs surely differ in threads
    try:
        two = _tokens(f16, requests)
        assert f16._call(llama_cpp.llama_n_threads, f16._ctx) == cores
        f16.set_threads(1)
        one = _tokens(f16, requests)
        assert f16._call(llama_cpp.llama_n_threads, f16._ctx) == 1
    finally:
        f16.set_threads(cores)
        f16.configure_decode(adaptive_threads=True)
    assert one == two


def test_the_governor_sets_the_threads_the_machine_can_spare(q4):
    from tests.engine.test_thread_governor import FakeMachine

    old = q4._governor
    if old is None:
        pytest.skip("no thread governor here (not Linux, or llama.cpp built without OpenMP)")
    named = [
        task
        for task in Path("/proc/self/task").iterdir()
        if (task / "comm").read_text().strip() == THREAD_NAME
    ]
    assert len(named) >= min(2, old.max_threads)  # the decode thread and llama.cpp's team
    machine = FakeMachine()
    q4._governor = ThreadGovernor(2, cores=2, interval_s=0.0, sample=machine.sample)
    request = DecisionRequest(
        load_public_cases()[0].profile, load_public_cases()[0].situation, Sampling(seed=3, max_new_tokens=40)
    )
    _configure(q4, cache=False, jump=True)
    try:
        machine.others = 1.0  # something else keeps one of the two cores busy
        assert q4.generate([request])[0].output_tokens > 0
        assert q4._call(llama_cpp.llama_n_threads, q4._ctx) == 1
        stats = q4.stats()["threads"]
        assert stats["now"] == 1 and stats["others_cores"] == pytest.approx(1.0)
        machine.others = 0.0
        assert q4.generate([request])[0].output_tokens > 0
        assert q4._call(llama_cpp.llama_n_threads, q4._ctx) == 2 and q4.stats()["threads"]["changes"] == 2
        machine.others = 1.0
        q4.generate([request])
        assert q4._call(llama_cpp.llama_n_threads, q4._ctx) == 1
        # off: back to the fixed count at the next decode, on the backend's thread, and it stays
        q4.configure_decode(adaptive_threads=False)
        q4.generate([request])
        q4.generate([request])
        assert q4._call(llama_cpp.llama_n_threads, q4._ctx) == 2
        assert q4.stats()["threads"]["adaptive"] is False
    finally:
        q4.configure_decode(adaptive_threads=True)
        q4._governor = old
        q4.set_threads(old.max_threads)
