"""Which slots decode each step: whole batches, and continuous batching that requests join.

Requests that arrive together decode in one ``llama_decode`` per step, one ``seq_id`` each, as
llama.cpp's server does with slots. In a stream, requests join between steps and each answer is
handed over the step it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from engine.backends.errors import LlamaCppError
from engine.backends.jump_forward import JumpForward
from engine.backends.slots import Segment, Slot, Slots
from engine.request import DecisionRequest, RawDecision


class Scheduler(Slots, JumpForward):
    """The llama.cpp backend's decode loops, on its own thread (see ``engine.backends.vocab``)."""

    def _generate_batch(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        started = time.perf_counter()
        slots = [self._new_slot(request, i) for i, request in enumerate(requests)]
        pending = self._place(slots)
        try:
            self._prefill(pending)
            self._decode_loop([s for s in slots if not s.done])
        except LlamaCppError as err:
            for slot in slots:
                if not slot.done or slot.error is None:
                    slot.error = str(err)
                    slot.done = True
            if not self._stopping.is_set():
                self._decode_prefix()  # leave the cache in a known state for the next batch
        finally:
            for slot in slots:
                self._free_slot(slot)
        elapsed = time.perf_counter() - started
        return [self._raw(slot, elapsed) for slot in slots]

    def _decode_loop(self, active: list[Slot]) -> None:
        while True:
            self._drop_abandoned(active)
            live = [s for s in active if not s.done]
            if not live:
                if self._token_log is not None:  # tests compare paths token for token
                    self._token_log.extend((list(s.tokens), s.logit_trace) for s in active)
                return
            self._step(live)

    def _step(self, live: list[Slot]) -> None:
        """One token (plus any forced run) for every live slot."""
        if self.compact_slots and not self.kv_unified:
            self._compact(live)
        jump = self.jump_forward and self.use_grammar and len(live) <= self.jump_max_live
        segments = []
        for slot in sorted(live, key=lambda s: s.seq_id):
            draft = self._draft(slot) if jump else []
            segments.append(Segment(slot, [slot.last_token, *draft], all_logits=bool(draft)))
        self._run_segments(segments, self._advance)

    def _stream(
        self,
        take: Callable[[int], Sequence[DecisionRequest]],
        emit: Callable[[DecisionRequest, RawDecision], None],
    ) -> float:
        """Continuous batching (``LlamaCppBackend.generate_stream``), on the backend's thread."""
        live: list[Slot] = []
        free_grammars = list(range(self.max_batch - 1, -1, -1))
        steps = live_sum = 0

        def retire(slots: list[Slot]) -> list[Slot]:
            still = []
            for slot in slots:
                if not slot.done:
                    still.append(slot)
                    continue
                self._free_slot(slot, free_grammars)
                if self._token_log is not None:
                    self._token_log.append((list(slot.tokens), slot.logit_trace))
                emit(slot.request, self._raw(slot, time.perf_counter() - slot.started))
            return still

        try:
            while True:
                room = self.max_batch - len(live)
                new = list(take(room)) if room > 0 and not self._stopping.is_set() else []
                if len(new) > room:
                    raise ValueError(f"take({room}) gave {len(new)} requests")
                if new:
                    self._admit(new, live, free_grammars)
                self._drop_abandoned(live)
                live = retire(live)
                if not live:
                    if new:
                        continue  # all of them ended at once (abandoned, too long): ask again
                    return live_sum / steps if steps else 0.0
                self._step(live)
                steps += 1
                live_sum += len(live)
                live = retire(live)
        except LlamaCppError as err:
            for slot in live:
                if not slot.done or slot.error is None:
                    slot.done, slot.error = True, str(err)
            live = retire(live)
            if not self._stopping.is_set():
                self._decode_prefix()  # leave the cache in a known state for the next call
            return live_sum / steps if steps else 0.0
        finally:
            for slot in live:  # an exception from take or emit: free what is left, answer nothing
                self._free_slot(slot, free_grammars)

    def _admit(self, requests: Sequence[DecisionRequest], live: list[Slot], free_grammars: list[int]) -> None:
        """Slots for ``requests`` on the ids the live ones leave free, prefilled. Each joins
        ``live`` as it is made, so the caller answers and frees it whatever fails here."""
        if self.compact_slots and not self.kv_unified:
            self._compact(live)  # the live ids are 1..n, so the new ones run on from n + 1
        used = {slot.seq_id for slot in live}
        ids = [seq_id for seq_id in range(1, self.max_batch + 1) if seq_id not in used]
        now = time.perf_counter()
        slots = []
        for request in requests:
            slot = self._new_slot(request, free_grammars[-1])
            free_grammars.pop()
            slot.started = now
            slots.append(slot)
            live.append(slot)
        self._prefill(self._place(slots, ids))
