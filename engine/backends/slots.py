"""Slots: one sequence each, from its request to its answer, and where its KV cache starts.

Each slot has its own grammar sampler, name-anchored where the name fits. Placing slots hooks up
the per-character prompt cache (``PrefixCache``): a slot starts from its character's last prompt
state where that shares more than the system prefix, so it prefills only from the first token that
changed, usually the situation lines; else from the system prefix, decoded once into sequence 0
and copied (not recomputed). Finished sequences hand their ids to live ones so the live ids stay
consecutive (llama.cpp runs a gap as an extra pass over the weights).
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.backends.batch import BatchRunner
from engine.backends.grammar import anchored_grammar
from engine.backends.prefix_cache import PrefixCache
from engine.backends.sampling import Sampler
from engine.backends.steer import Steering, SteerState
from engine.prompt import build_user_message
from engine.request import ABANDONED, DecisionRequest, RawDecision

_ABANDONED = f"{ABANDONED}: the ticket was answered or cancelled before decoding finished"


@dataclass
class Slot:
    """One sequence being decoded: its seq_id, sampler state and output so far."""

    seq_id: int
    request: DecisionRequest
    grammar: ctypes.c_void_p
    rng: np.random.Generator
    pos: int = 0
    prompt_tokens: int = 0
    tokens: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    done: bool = False
    error: str | None = None
    last_token: int = -1
    prompt: list[int] = field(default_factory=list)
    reused_tokens: int = 0  # prompt tokens restored from the character's cached state
    cached_whole: bool = False  # the cache holds this very prompt (a retry): nothing new to store
    logit_trace: list[float] = field(default_factory=list)  # the sampled tokens' logits, for tests
    steer: SteerState | None = None
    grammar_index: int = -1  # which of the backend's plain grammar samplers this slot may use
    started: float = 0.0  # when a streamed slot was admitted


@dataclass
class Segment:
    """Tokens of one slot to decode in this step; ``rows`` collects the logits asked for."""

    slot: Slot
    tokens: list[int]
    all_logits: bool = False  # a draft: every position is checked against the slot's own sampling
    sent: int = 0
    rows: list[np.ndarray] = field(default_factory=list)


class Slots(Sampler, BatchRunner):
    """Making, placing, prefilling and freeing the llama.cpp backend's slots (see ``engine.backends.vocab``)."""

    n_ctx_per_seq: int
    anchor_name: bool  # each purpose must carry the character's exact name
    lead_in: bool  # a short phrase may stand before the name (False: the name comes first)
    compact_slots: bool  # keep live sequence ids consecutive
    _grammars: list[ctypes.c_void_p]  # one plain grammar sampler per slot
    prefix_cache: PrefixCache
    _prefix_state: tuple[ctypes.Array[ctypes.c_uint8], int] | None  # sequence 0's state, saved
    steer_penalty: float
    ban_name_echo: bool
    _steering: Steering | None

    def _new_slot(self, request: DecisionRequest, grammar_index: int) -> Slot:
        """A slot for ``request`` on plain grammar ``grammar_index``: sampler state, steering and
        prompt, or why it cannot run. Its grammar is made last, so a failure leaves nothing to free."""
        steer = self._steer_state(request)
        prompt: list[int] = []
        error = None
        if request.is_abandoned():
            error = _ABANDONED
        else:
            prompt = self.tokenize(self.render_prompt(request))
            if len(prompt) + request.sampling.max_new_tokens > self.n_ctx_per_seq:
                error = f"prompt of {len(prompt)} tokens leaves no room in {self.n_ctx_per_seq}"
        grammar = self._slot_grammar(grammar_index, request)
        return Slot(
            0,
            request,
            grammar,
            np.random.default_rng(request.sampling.seed),
            prompt_tokens=len(prompt),
            done=error is not None,
            error=error,
            prompt=prompt,
            steer=steer,
            grammar_index=grammar_index,
        )

    def _free_slot(self, slot: Slot, free_grammars: list[int] | None = None) -> None:
        """Drop the slot's KV cells and its anchored grammar; safe to call twice."""
        if slot.seq_id > 0:
            self._lib.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
        if slot.grammar_index >= 0:
            if slot.grammar != self._grammars[slot.grammar_index]:  # an anchored one, made for it
                self._lib.llama_sampler_free(slot.grammar)
            if free_grammars is not None:
                free_grammars.append(slot.grammar_index)
            slot.grammar_index = -1

    @staticmethod
    def _raw(slot: Slot, elapsed: float) -> RawDecision:
        return RawDecision(
            text=slot.text.decode("utf-8", "replace"),
            prompt_tokens=slot.prompt_tokens,
            output_tokens=len(slot.tokens),
            error=slot.error,
            decode_s=elapsed,
        )

    @staticmethod
    def _drop_abandoned(slots: list[Slot]) -> None:
        for slot in slots:
            if not slot.done and slot.request.is_abandoned():
                slot.done, slot.error = True, _ABANDONED

    def _steer_state(self, request: DecisionRequest) -> SteerState | None:
        """A steering state for a character's answer; None where steering is off or has no name."""
        name = request.profile.name
        if not (self.steer_penalty or self.ban_name_echo) or not name.strip():
            return None
        if self._steering is None:  # a pass over the vocabulary (~0.2 s): once, at first use
            self._steering = Steering(self.n_vocab, self._piece, self.steer_penalty, self.ban_name_echo)
        literal = json.dumps(name, ensure_ascii=False)[1:-1].encode()
        return self._steering.state(name, literal, build_user_message(request.profile, request.situation))

    def _slot_grammar(self, i: int, request: DecisionRequest) -> ctypes.c_void_p:
        """A fresh grammar sampler for slot ``i``: anchored to the character's name when asked.

        Compiling a grammar takes well under a millisecond, so anchored ones are made per request
        and freed after the batch. A name the grammar cannot hold (too long) gets the plain one.
        """
        to_gbnf = self._lib.llama_grammar.json_schema_to_gbnf
        text = anchored_grammar(to_gbnf, request.profile.name, self.lead_in) if self.anchor_name else None
        if text is not None:
            sampler = self._lib.llama_sampler_init_grammar(self._vocab, text, b"root")
            if sampler:
                return sampler
        self._lib.llama_sampler_reset(self._grammars[i])
        return self._grammars[i]

    def _place(self, slots: list[Slot], ids: Sequence[int] | None = None) -> list[Segment]:
        """Give live slots ids 1..n (or the free ``ids``, in order) and their KV start; returns what
        each still has to prefill.

        A slot starts from its character's cached prompt state where that shares more than the
        system prefix, else from the system prefix. Ids go by longest prefill first, so the
        sequences still prefilling at any point are 1..k and every planned call is one ubatch.
        """
        n_prefix = len(self._prefix)
        plans: list[tuple[Slot, tuple[ctypes.Array[ctypes.c_uint8], int] | None, int, int | None]] = []
        for slot in slots:
            if slot.done:
                continue
            has_prefix = n_prefix > 0 and slot.prompt[:n_prefix] == self._prefix
            entry, shared = (None, 0)
            if self.prefix_cache.enabled:
                entry, shared = self.prefix_cache.lookup(slot.request.profile.name, slot.prompt)
            shared = min(shared, len(slot.prompt) - 1)  # the last prompt token gives the first logits
            if entry is not None and shared > (n_prefix if has_prefix else 0):
                plans.append((slot, (entry.blob, entry.nbytes), shared, len(entry.tokens)))
            else:
                plans.append((slot, None, n_prefix if has_prefix else 0, None))
        plans.sort(key=lambda plan: len(plan[0].prompt) - plan[2], reverse=True)
        ids = list(ids) if ids is not None else list(range(1, len(slots) + 1))
        segments = []
        for seq_id, (slot, saved, start, entry_len) in zip(ids, plans, strict=False):
            slot.seq_id = seq_id
            self._lib.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
            if saved is not None and self._restore(*saved, seq_id):
                self._lib.llama_memory_seq_rm(self._mem, seq_id, start, -1)
                slot.reused_tokens = start
                slot.cached_whole = entry_len == len(slot.prompt) == start + 1
            else:
                if saved is not None:  # a state llama.cpp refused: start from the system prefix
                    self._lib.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
                    start, entry_len = (n_prefix if slot.prompt[:n_prefix] == self._prefix else 0), None
                if start and self._prefix_state is not None and self._restore(*self._prefix_state, seq_id):
                    pass
                elif start:
                    self._lib.llama_memory_seq_cp(self._mem, 0, seq_id, -1, -1)
            if self.prefix_cache.enabled:
                self.prefix_cache.count(slot.reused_tokens, entry_len)
            slot.pos = start
            segments.append(Segment(slot, slot.prompt[start:]))
        unplaced = [slot for slot in slots if slot.done]
        for seq_id, slot in zip(ids[len(plans) :], unplaced, strict=False):
            slot.seq_id = seq_id  # never 0 (the shared prefix) nor -1 (every sequence, to seq_rm)
        return segments

    def _prefill(self, pending: list[Segment]) -> None:
        """Decode every prompt's remaining tokens; sample each slot's first token; cache the prompt."""

        def first_token(segment: Segment, rows: list[np.ndarray]) -> None:
            self._finish_token(segment.slot, self._sample(segment.slot, rows[-1]))

        self._run_segments(pending, first_token)
        if not self.prefix_cache.enabled:
            return
        for segment in pending:  # nothing after the prompt is in the KV cache yet
            slot = segment.slot
            if not slot.cached_whole:
                blob, nbytes = self._save_state(slot.seq_id)
                self.prefix_cache.store(slot.request.profile.name, slot.prompt, blob, nbytes)

    def _compact(self, live: list[Slot]) -> None:
        """Move the live sequences with the highest ids into the ids finished ones left."""
        n = len(live)
        taken = {slot.seq_id for slot in live}
        holes = [seq_id for seq_id in range(1, n + 1) if seq_id not in taken]
        movers = sorted((slot for slot in live if slot.seq_id > n), key=lambda slot: slot.seq_id)
        for hole, slot in zip(holes, movers, strict=True):
            self._lib.llama_memory_seq_rm(self._mem, hole, -1, -1)
            self._lib.llama_memory_seq_cp(self._mem, slot.seq_id, hole, -1, -1)
            self._lib.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
            slot.seq_id = hole
            self._counters["moves"] += 1
