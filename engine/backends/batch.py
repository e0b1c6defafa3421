"""The llama.cpp backend's ``llama_decode`` calls: filling the batch, decoding, reading logits.

One step's tokens go out as the calls ``batch_plan`` plans, each one ubatch that llama.cpp runs in
one pass over the weights. Here too: the system prefix decoded into sequence 0, a sequence's saved
state, the thread governor's hook between calls, and the decode floor our overhead is measured
against.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.backends.batch_plan import plan_calls
from engine.backends.errors import LlamaCppError
from engine.backends.thread_governor import ThreadGovernor
from engine.backends.vocab import Vocab

if TYPE_CHECKING:
    from engine.backends.slots import Segment


class BatchRunner(Vocab):
    """Decoding planned calls for the llama.cpp backend (see ``engine.backends.vocab``)."""

    max_batch: int
    kv_unified: bool
    batch_invariant: bool  # plan calls so each token's numbers do not depend on the rest of the batch
    adaptive_threads: bool
    _ctx: Any  # llama_context *
    _mem: Any  # llama_memory_t
    _batch: Any  # llama_batch
    _n_batch: int
    _n_ubatch: int
    _max_per_seq: int  # tokens of one sequence in one call
    _stopping: threading.Event
    _counters: Counter[str]
    _governor: ThreadGovernor | None

    def _add(self, token: int, pos: int, seq_id: int, logits: bool) -> None:
        b = self._batch
        i = b.n_tokens
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq_id
        b.logits[i] = logits
        b.n_tokens = i + 1

    def _decode(self) -> None:
        if self._stopping.is_set():  # close() ends a batch at the next step, not after it
            raise LlamaCppError("decode stopped: the backend was closed")
        rc = self._lib.llama_decode(self._ctx, self._batch)
        if rc != 0:
            raise LlamaCppError(f"llama_decode returned {rc} (KV cache full or bad batch)")

    def _decode_prefix(self) -> None:
        self._lib.llama_memory_clear(self._mem, True)
        self._batch.n_tokens = 0
        for pos, token in enumerate(self._prefix):
            self._add(token, pos, 0, False)
        if self._prefix:
            self._decode()
        self._batch.n_tokens = 0

    def _logits(self, index: int) -> np.ndarray:
        ptr = self._lib.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _save_state(self, seq_id: int) -> tuple[ctypes.Array[ctypes.c_uint8], int]:
        size = self._lib.llama_state_seq_get_size(self._ctx, seq_id)
        buf = (ctypes.c_uint8 * size)()
        return buf, int(self._lib.llama_state_seq_get_data(self._ctx, buf, size, seq_id))

    def _restore(self, blob: ctypes.Array[ctypes.c_uint8], nbytes: int, seq_id: int) -> bool:
        return bool(self._lib.llama_state_seq_set_data(self._ctx, blob, nbytes, seq_id))

    def _govern(self) -> None:
        """Follow the governor's thread count (it measures once a second; between, this is a clock read)."""
        governor = self._governor
        if governor is None:
            return
        if not self.adaptive_threads:  # switched off: back to the fixed count, here on this thread
            if governor.threads != governor.max_threads:
                governor.threads = governor.max_threads
                self._lib.llama_set_n_threads(self._ctx, governor.max_threads, governor.max_threads)
            return
        n = governor.poll()
        if n is not None:
            self._lib.llama_set_n_threads(self._ctx, n, n)

    def _run_segments(
        self, segments: list[Segment], done: Callable[[Segment, list[np.ndarray]], None]
    ) -> None:
        """Decode the segments in planned calls; ``done(segment, rows)`` right after its last token.

        A batch-invariant backend never sends a call of one token, nor one that asks for one row
        of logits: F16 weights take another matmul kernel for a single row. A throwaway token in
        sequence 0 (removed again) makes two tokens, and a spare row of logits makes two rows.
        """
        by_seq = {segment.slot.seq_id: segment for segment in segments}
        calls = plan_calls(
            {seq_id: len(segment.tokens) for seq_id, segment in by_seq.items()},
            max_tokens=self._n_ubatch,
            max_per_seq=self._max_per_seq,
            equal_split=not self.kv_unified,
        )
        n_prefix = len(self._prefix)
        for call in calls:
            self._govern()  # between calls, prefill's included: one can take seconds
            self._batch.n_tokens = 0
            pad = self.batch_invariant and call == ((1, 1),)
            if pad:
                self._add(self._prefix[-1] if n_prefix else 0, n_prefix, 0, False)
            wanted: list[tuple[Segment, int]] = []
            for seq_id, n in call:
                segment = by_seq[seq_id]
                slot = segment.slot
                for j in range(segment.sent, segment.sent + n):
                    want = segment.all_logits or j == len(segment.tokens) - 1
                    self._add(segment.tokens[j], slot.pos, seq_id, want)
                    slot.pos += 1
                    if want:
                        wanted.append((segment, self._batch.n_tokens - 1))
                segment.sent += n
            if self.batch_invariant and len(wanted) == 1 and self._batch.n_tokens > 1:
                # the output matrix takes another kernel for a single row too: compute a spare one
                self._batch.logits[1 if wanted[0][1] == 0 else 0] = True
            self._counters["calls"] += 1
            self._counters["tokens"] += self._batch.n_tokens
            self._counters["pads"] += pad
            try:
                self._decode()
            finally:
                if pad:
                    self._lib.llama_memory_seq_rm(self._mem, 0, n_prefix, -1)
            finished: list[Segment] = []
            for segment, index in wanted:
                complete = segment.sent == len(segment.tokens)
                segment.rows.append(self._logits(index) if complete else self._logits(index).copy())
                if complete and (not finished or finished[-1] is not segment):
                    finished.append(segment)
            for segment in finished:
                done(segment, segment.rows)

    def _decode_floor(self, prompt_lens: Sequence[int], output_lens: Sequence[int]) -> float:
        """Seconds of raw ``llama_decode`` for these token counts (``LlamaCppBackend.decode_floor``)."""
        n_prefix = len(self._prefix)
        # longest output first: finished sequences leave no gaps among the live ids, each of
        # which would cost llama.cpp an extra pass over the weights
        order = sorted(range(len(prompt_lens)), key=lambda i: -output_lens[i])
        prompt_lens, output_lens = [prompt_lens[i] for i in order], [output_lens[i] for i in order]
        started = time.perf_counter()
        slots = []
        for i, n in enumerate(prompt_lens):
            seq = i + 1
            self._lib.llama_memory_seq_rm(self._mem, seq, -1, -1)
            self._lib.llama_memory_seq_cp(self._mem, 0, seq, -1, -1)
            slots.append([seq, n_prefix, n - n_prefix])
        queue = [(seq, j == rest - 1) for seq, _, rest in slots for j in range(rest)]
        pos = {seq: p for seq, p, _ in slots}
        for start in range(0, len(queue), self._n_batch):
            self._batch.n_tokens = 0
            for seq, last in queue[start : start + self._n_batch]:
                self._add(100, pos[seq], seq, last)
                pos[seq] += 1
            self._decode()
        remaining = {seq: out for (seq, _, _), out in zip(slots, output_lens, strict=True)}
        while any(v > 1 for v in remaining.values()):
            self._batch.n_tokens = 0
            for seq, left in remaining.items():
                if left > 1:
                    self._add(100, pos[seq], seq, True)
                    pos[seq] += 1
                    remaining[seq] = left - 1
            self._decode()
        for seq, _, _ in slots:
            self._lib.llama_memory_seq_rm(self._mem, seq, -1, -1)
        return time.perf_counter() - started
