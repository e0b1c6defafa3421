"""plan_calls: each planned call is one llama.cpp ubatch of a known shape."""

import pytest

from engine.backends.batch_plan import plan_calls


def _taken(calls):
    out: dict[int, int] = {}
    for call in calls:
        for seq, n in call:
            out[seq] = out.get(seq, 0) + n
    return out


def test_a_step_of_consecutive_sequences_is_one_call():
    assert plan_calls({1: 1, 2: 1, 3: 1}, max_tokens=512, max_per_seq=63) == [((1, 1), (2, 1), (3, 1))]


def test_equal_split_calls_are_runs_of_consecutive_ids_with_equal_counts():
    remaining = {1: 9, 2: 5, 3: 5, 5: 2, 6: 7}
    calls = plan_calls(remaining, max_tokens=512, max_per_seq=63)
    for call in calls:
        seqs = [seq for seq, _ in call]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap: llama.cpp would split it
        assert len({n for _, n in call}) == 1
    assert _taken(calls) == remaining
    assert calls[0] == ((1, 5), (2, 5), (3, 5))  # the lowest run first, as far as its shortest goes


def test_longest_first_ids_prefill_in_one_call_per_distinct_length():
    # the backend numbers slots by prefill length, longest first: the pending ones stay 1..k
    calls = plan_calls({1: 40, 2: 30, 3: 30, 4: 10}, max_tokens=512, max_per_seq=512)
    assert calls == [((1, 10), (2, 10), (3, 10), (4, 10)), ((1, 20), (2, 20), (3, 20)), ((1, 10),)]


def test_caps_per_sequence_and_per_call():
    calls = plan_calls({1: 100}, max_tokens=512, max_per_seq=63)
    assert calls == [((1, 63),), ((1, 37),)]
    calls = plan_calls({seq: 40 for seq in range(1, 17)}, max_tokens=512, max_per_seq=63)
    assert all(sum(n for _, n in call) <= 512 for call in calls)
    assert _taken(calls) == {seq: 40 for seq in range(1, 17)}


def test_shared_stream_calls_take_tokens_in_order():
    calls = plan_calls({1: 3, 4: 2, 2: 1}, max_tokens=4, max_per_seq=512, equal_split=False)
    assert calls == [((1, 3), (2, 1)), ((4, 2),)]


def test_nothing_to_do_and_bad_limits():
    assert plan_calls({1: 0}, max_tokens=8, max_per_seq=8) == []
    with pytest.raises(ValueError):
        plan_calls({1: 1}, max_tokens=0, max_per_seq=8)
