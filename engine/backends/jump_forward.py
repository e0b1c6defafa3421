"""Jump-forward: feed the tokens a grammar forces in the same call as the sampled one.

Where the grammar admits exactly one continuation (a key, a quote, a name after a lead-in), a lone
sequence feeds those tokens in the same call as its sampled one and keeps the ones its own sampling
agrees with, so the output is the plain path's, token for token.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

import numpy as np

from engine.backends.batch import BatchRunner
from engine.backends.sampling import TOKEN_DATA, Sampler

if TYPE_CHECKING:
    from engine.backends.slots import Segment, Slot

_MAX_DRAFT_BYTES = 48  # one forced run: the longest is a key or a name, well under this


class JumpForward(Sampler, BatchRunner):
    """Drafts of forced tokens, and the step's sampling that accepts them (see ``engine.backends.vocab``)."""

    jump_forward: bool
    jump_max_live: int  # draft only while at most this many sequences are live
    _probe: np.ndarray | None  # every single-byte token and EOS, for forced runs
    _probe_bytes: np.ndarray
    _byte_token: dict[int, int]

    def _advance(self, segment: Segment, rows: list[np.ndarray]) -> None:
        """Sample from each row as the plain path would; keep draft tokens while they agree.

        Row ``j`` holds the logits after the ``j``-th fed token. The plain path would sample there
        and feed that token next, so while the sample equals the draft's next token, the draft's
        row is the plain path's row too. The first disagreement becomes the next token to feed, and
        the draft's cache entries after it are removed.
        """
        slot = segment.slot
        draft = segment.tokens[1:]
        first = slot.pos - len(segment.tokens)  # where this step's sampled token sits
        accepted = 0
        for j, logits in enumerate(rows):
            token = self._sample(slot, logits)
            self._finish_token(slot, token)
            if slot.done or j == len(draft) or token != draft[j]:
                break
            accepted += 1
        if draft:
            self._counters["jump_steps"] += 1
            self._counters["drafted"] += len(draft)
            self._counters["accepted"] += accepted
            if accepted < len(draft):
                self._lib.llama_memory_seq_rm(self._mem, slot.seq_id, first + 1 + accepted, -1)
            slot.pos = first + 1 + accepted

    def _draft(self, slot: Slot) -> list[int]:
        """Tokens of the text the slot's grammar forces next (none where it admits a choice)."""
        room = slot.request.sampling.max_new_tokens - len(slot.tokens) - 1
        if room <= 0:
            return []
        forced = self._forced_bytes(slot.grammar)
        while forced:  # a run can stop inside a multi-byte character: keep whole characters
            try:
                forced.decode("utf-8")
                break
            except UnicodeDecodeError:
                forced = forced[:-1]
        if not forced:
            return []
        tokens = self._tokenize_bytes(forced)
        if b"".join(self._piece(t) for t in tokens) != forced:
            return []
        return tokens[:room]

    def _forced_bytes(self, grammar: ctypes.c_void_p) -> bytes:
        """The bytes ``grammar`` admits as its only continuation from its current state.

        A byte is forced when it is the only single-byte token the grammar accepts and end of
        text is not accepted either: any longer token starts with an accepted byte, since the
        grammar accepts every prefix of what it accepts (partial UTF-8 included). The run goes on
        in a clone of the sampler, so the slot's own state is untouched.
        """
        allowed = self._admissible(grammar)
        if allowed.size != 1 or allowed[0] < 0:
            return b""
        out = bytearray()
        clone = self._lib.llama_sampler_clone(grammar)
        try:
            while allowed.size == 1 and allowed[0] >= 0 and len(out) < _MAX_DRAFT_BYTES:
                byte = int(allowed[0])
                out.append(byte)
                self._lib.llama_sampler_accept(clone, self._byte_token[byte])
                allowed = self._admissible(clone)
        finally:
            self._lib.llama_sampler_free(clone)
        return bytes(out)

    def _admissible(self, grammar: ctypes.c_void_p) -> np.ndarray:
        """Bytes whose single-byte token ``grammar`` accepts now; -1 stands for end of text."""
        probe = self._probe_table()
        probe["logit"] = 0.0
        arr = self._lib.llama_token_data_array(
            data=probe.ctypes.data_as(self._lib.llama_token_data_p),
            size=len(probe),
            selected=-1,
            sorted=False,
        )
        self._lib.llama_sampler_apply(grammar, ctypes.byref(arr))
        return self._probe_bytes[np.isfinite(probe["logit"])]

    def _probe_table(self) -> np.ndarray:
        if self._probe is None:
            for token in range(self.n_vocab):
                piece = self._piece(token)
                if len(piece) == 1 and piece[0] not in self._byte_token:
                    self._byte_token[piece[0]] = token
            pairs = [*sorted(self._byte_token.items()), (-1, self._lib.llama_vocab_eos(self._vocab))]
            probe = np.zeros(len(pairs), dtype=TOKEN_DATA)
            probe["id"] = [token for _, token in pairs]
            self._probe_bytes = np.array([byte for byte, _ in pairs], dtype=np.int16)
            self._probe = probe
        return self._probe
