"""Choosing each token: steering, top-k/top-p sampling, and the grammar's check of the choice.

Sampling checks the sampled token against the slot's grammar first and constrains the whole
vocabulary only when that token is rejected, which keeps most steps off the grammar's slow path.
``top_k_indices`` ranks only the logits that can be in the top k.
"""

from __future__ import annotations

import ctypes
import json
from typing import TYPE_CHECKING

import numpy as np

from engine.backends.vocab import Vocab
from engine.request import Sampling

if TYPE_CHECKING:
    from engine.backends.slots import Slot

TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])  # llama_token_data


def top_k_indices(logits: np.ndarray, k: int) -> np.ndarray:
    """The ids of the ``k`` largest finite logits, largest first, ties to the lower id.

    Exact, and about 8x cheaper than a partition of the whole vocabulary (0.08 against 0.68 ms for
    49,152 logits here, paid once per sequence per step): the k-th largest of every 16th logit is a
    lower bound on the k-th largest of all, so only the few hundred logits at or above it are ranked.
    """
    n = logits.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.intp)
    k = min(max(k, 1), n)
    bound = -np.inf
    if n >= 64 * k:
        sample = logits[::16]
        sample = sample[np.isfinite(sample)]  # NaN would sort above every value and lift the bound
        if sample.shape[0] >= k:
            bound = np.partition(sample, sample.shape[0] - k)[sample.shape[0] - k]
    if np.isfinite(bound):
        ids = np.flatnonzero((logits >= bound) & (logits < np.inf))
    else:
        ids = np.flatnonzero(np.isfinite(logits))
    vals = logits[ids]
    if ids.size > k:
        keep = vals >= np.partition(vals, ids.size - k)[ids.size - k]
        ids, vals = ids[keep], vals[keep]
    return ids[np.lexsort((ids, -vals))][:k]


def _complete_json(text: bytearray) -> bool:
    try:
        json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


class Sampler(Vocab):
    """The llama.cpp backend's sampling of one slot's next token (see ``engine.backends.vocab``)."""

    use_grammar: bool
    _candidates: np.ndarray  # TOKEN_DATA for the whole vocabulary: the grammar's slow path
    _one: np.ndarray  # TOKEN_DATA for one token: the grammar's check of a sampled one
    _token_log: list[tuple[list[int], list[float]]] | None  # tests compare paths token for token

    def _grammar_allows(self, slot: Slot, token: int) -> bool:
        self._one[0] = (token, 0.0, 0.0)
        arr = self._lib.llama_token_data_array(
            data=self._one.ctypes.data_as(self._lib.llama_token_data_p), size=1, selected=-1, sorted=False
        )
        self._lib.llama_sampler_apply(slot.grammar, ctypes.byref(arr))
        return bool(np.isfinite(self._one["logit"][0]))

    def _grammar_mask(self, slot: Slot, logits: np.ndarray) -> np.ndarray:
        cand = self._candidates
        cand["logit"] = logits
        arr = self._lib.llama_token_data_array(
            data=cand.ctypes.data_as(self._lib.llama_token_data_p),
            size=self.n_vocab,
            selected=-1,
            sorted=False,
        )
        self._lib.llama_sampler_apply(slot.grammar, ctypes.byref(arr))
        return np.asarray(cand["logit"], dtype=np.float32).copy()

    @staticmethod
    def _choose(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
        if sampling.greedy():
            return int(np.argmax(logits))
        top = top_k_indices(logits, sampling.top_k)
        if top.size == 0:
            return int(np.argmax(logits))
        vals = logits[top].astype(np.float64) / max(sampling.temperature, 1e-4)
        probs = np.exp(vals - vals[0])
        probs /= probs.sum()
        keep = int(np.searchsorted(np.cumsum(probs), sampling.top_p) + 1)
        top, probs = top[:keep], probs[:keep]
        probs /= probs.sum()
        return int(top[rng.choice(top.size, p=probs)])

    def _sample(self, slot: Slot, logits: np.ndarray) -> int:
        sampling = slot.request.sampling
        steer = slot.steer
        steered = (
            logits if steer is None or steer.tables is None else steer.tables.apply(steer, slot.text, logits)
        )
        token = self._choose(steered, sampling, slot.rng)
        if self.use_grammar and not self._grammar_allows(slot, token):
            masked = self._grammar_mask(slot, steered)
            if steered is not logits and not np.isfinite(masked).any():
                masked = self._grammar_mask(slot, logits)  # the grammar needs a banned token: allow it
            if not np.isfinite(masked).any():
                # No token can go on: a name anchored with a character this vocabulary cannot
                # spell (SmolLM2 has no token for the byte 0xF1, so U+40000-U+7FFFF). Accepting
                # any token now would abort the whole process inside llama.cpp.
                slot.done, slot.error = True, "grammar dead end: no token can continue the answer"
                return -1
            token = self._choose(masked, sampling, slot.rng)
        if self.use_grammar:
            self._lib.llama_sampler_accept(slot.grammar, token)
        if steer is not None and steer.tables is not None:
            steer.tables.observe(steer, token)
        if self._token_log is not None:
            slot.logit_trace.append(float(logits[token]))
        return token

    def _finish_token(self, slot: Slot, token: int) -> None:
        if token < 0:  # _sample ended the slot
            return
        slot.last_token = token
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            slot.done = True
            return
        slot.tokens.append(token)
        piece = self._piece(token)
        slot.text += piece
        if b"}" in piece and _complete_json(slot.text):
            slot.done = True
        elif len(slot.tokens) >= slot.request.sampling.max_new_tokens:
            slot.done = True
            slot.error = f"stopped at max_new_tokens={slot.request.sampling.max_new_tokens}"
