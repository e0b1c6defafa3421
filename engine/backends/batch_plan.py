"""How one step's tokens become ``llama_decode`` calls that llama.cpp runs as one ubatch each.

With one KV stream per sequence (llama.cpp's non-unified cache, the backend's default), llama.cpp
cuts a batch into ubatches that hold the same number of tokens from each of a run of consecutive
sequence ids (its ``split_equal``). Anything else becomes extra ubatches, each a full pass over
the weights: sequences 1, 3, 5 and 7 decode as four passes where 1, 2, 3 and 4 take one (seen on
this build). Planning the calls here keeps each call one ubatch whose shape the backend knows,
which it needs both for speed and to keep llama.cpp on kernels whose per-token numbers do not
depend on the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Mapping

Call = tuple[tuple[int, int], ...]
"""One ``llama_decode`` call: ``(seq_id, n_tokens)`` pairs in the order they go into the batch."""


def plan_calls(
    remaining: Mapping[int, int], *, max_tokens: int, max_per_seq: int, equal_split: bool = True
) -> list[Call]:
    """Calls that take ``remaining[seq]`` tokens of each sequence, in order, one ubatch each.

    ``equal_split`` (one KV stream per sequence): every call is a run of consecutive sequence ids
    with the same number of tokens each, lowest run first. Without it (one shared stream), llama.cpp
    takes a batch in order, so calls are just ``max_tokens`` at a time. ``max_per_seq`` caps one
    sequence's tokens in a call.
    """
    if max_tokens < 1 or max_per_seq < 1:
        raise ValueError("max_tokens and max_per_seq must be at least 1")
    left = {seq: n for seq, n in sorted(remaining.items()) if n > 0}
    calls: list[Call] = []
    if not equal_split:
        while left:
            call, room = [], max_tokens
            for seq in list(left):
                if room == 0:
                    break
                take = min(left[seq], max_per_seq, room)
                call.append((seq, take))
                room -= take
                left[seq] -= take
                if left[seq] == 0:
                    del left[seq]
            calls.append(tuple(call))
        return calls
    while left:
        ids = list(left)
        run = [ids[0]]
        for seq in ids[1:]:
            if seq != run[-1] + 1 or len(run) == max_tokens:
                break
            run.append(seq)
        per_seq = min(min(left[s] for s in run), max_per_seq, max_tokens // len(run))
        calls.append(tuple((seq, per_seq) for seq in run))
        for seq in run:
            left[seq] -= per_seq
            if left[seq] == 0:
                del left[seq]
    return calls
