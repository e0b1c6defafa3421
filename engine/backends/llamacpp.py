"""The llama.cpp backend: batched, grammar-constrained decoding of many characters at once.

Requests that arrive together decode in one ``llama_decode`` per step, one ``seq_id`` each, as
llama.cpp's server does with slots. The system prompt shared by every request is decoded once into
sequence 0 and copied (not recomputed) into each slot's KV cache. Each slot has its own grammar
sampler built from the Motivation JSON Schema by llama.cpp's converter.

Sampling checks the sampled token against the grammar first and constrains the whole vocabulary
only when that token is rejected, which keeps most steps off the grammar's slow path.

This is the only module that imports ``llama_cpp``.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import json_schema_to_gbnf

from characters import LEAD_IN_MAX_WORDS, motivation_json_schema
from engine.prompt import build_messages
from engine.request import ABANDONED, DecisionRequest, RawDecision, Sampling

_ABANDONED = f"{ABANDONED}: the ticket was answered or cancelled before decoding finished"
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
_backend_ready = threading.Lock()
_backend_initialised = False


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _quiet_log(level: int, text: bytes, user_data: int) -> None:
    """Drop llama.cpp's log lines; errors surface as return codes instead."""


def _init_backend(verbose: bool) -> None:
    global _backend_initialised
    with _backend_ready:
        if not _backend_initialised:
            if not verbose:
                llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _backend_initialised = True


# "Hands shaking, ": a capitalised phrase of 1-4 words of up to 10 letters each, then ", ". A longer
# lead-in let a garbled clause stand before the name ("... kitchen ands, Marco Bellini").
_LEAD_WORDS, _LEAD_WORD_CHARS = LEAD_IN_MAX_WORDS, 10
_LEAD_MAX = _LEAD_WORDS * (_LEAD_WORD_CHARS + 1) + 1


def build_grammar_text(name: str | None = None) -> str:
    """GBNF for the Motivation schema, made by llama.cpp's JSON Schema converter.

    With ``name``, every purpose must carry the character's exact name: at its start, or after a
    short lead-in phrase and a comma ("Ever reserved, Brynn Blackthorn heads ..."), which are the
    two shapes the training data uses. A small model otherwise mangles names now and then
    ("Mayhew Tom Hutchins" for "Mayor Tom Hutchins"), and a game cannot show that. Length bounds
    still hold: the rest of the string is shortened by the name and the lead-in.
    """
    text = json_schema_to_gbnf(json.dumps(motivation_json_schema()))
    # JSON forbids raw control characters in strings; this converter's char rule lets them through
    loose, strict = 'char ::= [^"\\\\]', 'char ::= [^"\\\\\\x7F\\x00-\\x1F]'
    if loose in text:
        text = text.replace(loose, strict, 1)
    elif strict not in text:
        raise LlamaCppError("the grammar converter no longer writes the expected 'char' rule")
    if name is None or not name.strip():
        return text
    literal = json.dumps(name, ensure_ascii=False)[1:-1]  # as it appears inside the JSON string
    rules = [
        f'anchor-name ::= "{literal.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"',
        f"anchor-lead ::= [A-Z] [a-zA-Z']{{0,{_LEAD_WORD_CHARS - 1}}} "
        f'(" " [a-zA-Z\']{{1,{_LEAD_WORD_CHARS}}}){{0,{_LEAD_WORDS - 1}}} ", "',
    ]
    for key, spec in motivation_json_schema()["properties"].items():
        rule = key.replace("_", "-")
        low = max(0, spec["minLength"] - len(name))
        high, high_lead = spec["maxLength"] - len(name), spec["maxLength"] - len(name) - _LEAD_MAX
        if high_lead < low:
            raise ValueError(f"name {name!r} is too long for a {spec['maxLength']}-character purpose")
        anchored = (
            f'{rule} ::= "\\"" (anchor-name char{{{low},{high}}} | '
            f'anchor-lead anchor-name char{{{low},{high_lead}}}) "\\"" space'
        )
        text, n = re.subn(rf"^{rule} ::= .*$", anchored.replace("\\", "\\\\"), text, flags=re.M)
        if n != 1:
            raise LlamaCppError(f"the grammar converter no longer writes a {rule!r} rule")
    return text.rstrip("\n") + "\n" + "\n".join(rules) + "\n"


@functools.lru_cache(maxsize=256)  # names come and go in a long-running world
def _anchored_grammar(name: str) -> bytes | None:
    """The name-anchored grammar as bytes, or None where the name is too long to anchor."""
    try:
        return build_grammar_text(name).encode()
    except ValueError:
        return None


class LlamaCppError(RuntimeError):
    """The GGUF could not be loaded or a decode failed."""


_T = TypeVar("_T")


@dataclass
class _Native:
    """A backend's llama.cpp handles, kept apart from it so a finalizer can free them.

    ``owner`` is the backend's own thread, the only one that touches the handles.
    """

    owner: int = 0
    model: Any = None
    ctx: Any = None
    batch: Any = None
    grammars: list[ctypes.c_void_p] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def free(self) -> None:
        """Free whatever was made (a half-finished setup included), once."""
        try:
            for sampler in self.grammars:
                llama_cpp.llama_sampler_free(sampler)
            self.grammars.clear()
            if self.batch is not None:
                llama_cpp.llama_batch_free(self.batch)
                self.batch = None
            if self.ctx:
                llama_cpp.llama_free(self.ctx)
                self.ctx = None
            if self.model:
                llama_cpp.llama_model_free(self.model)
                self.model = None
        finally:
            self.released.set()


def _release(executor: ThreadPoolExecutor, native: _Native, stopping: threading.Event) -> None:
    """Stop a backend and free its handles on its own thread, without waiting for either.

    This is the backend's finalizer (``close()`` calls it too, then waits on ``native.released``).
    It must never block: the garbage collector may run it on any thread, the game's included.
    It holds the executor, so the backend's thread is still alive when a backend in a reference
    cycle is collected; the free is queued behind any call in flight, which ``stopping`` ends at
    its next step.
    """
    stopping.set()
    if threading.get_ident() == native.owner:
        native.free()
    else:
        try:
            executor.submit(native.free)
        except RuntimeError:  # interpreter shutdown joined the thread already: nothing else uses them
            native.free()
    executor.shutdown(wait=False)


@dataclass
class _Slot:
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


class LlamaCppBackend:
    """A GGUF model decoded with llama.cpp, many requests per batch, grammar on every sequence."""

    name = "llamacpp"

    def __init__(
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        max_batch: int = 16,
        n_ctx_per_seq: int = 768,
        n_threads: int | None = None,
        grammar: bool = True,
        anchor_name: bool = True,
        kv_unified: bool = False,
        verbose: bool = False,
    ) -> None:
        self.anchor_name = anchor_name  # each purpose must carry the character's exact name
        self.path = Path(path)
        if not self.path.is_file():
            raise LlamaCppError(f"{self.path}: GGUF file not found")
        # llama.cpp's OpenMP thread team belongs to the OS thread that calls it; calling from
        # another thread leaves the first team spinning and halves speed on a 2-core machine.
        # So every llama.cpp call of this backend runs on one dedicated thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp")
        self._native = _Native()
        self._stopping = threading.Event()
        # Not __del__: that ran close() and waited on the executor, whose thread had already
        # exited when the backend was collected in a reference cycle, so gc.collect() hung.
        self._finalizer = weakref.finalize(self, _release, self._executor, self._native, self._stopping)
        self._finalizer.atexit = False  # at exit the OS takes the memory back; nothing to wait for
        try:
            self._executor.submit(
                self._setup, model_id, max_batch, n_ctx_per_seq, n_threads, grammar, kv_unified, verbose
            ).result()
        except BaseException:
            self.close()
            raise

    def _setup(
        self,
        model_id: str | None,
        max_batch: int,
        n_ctx_per_seq: int,
        n_threads: int | None,
        grammar: bool,
        kv_unified: bool,
        verbose: bool,
    ) -> None:
        self._native.owner = threading.get_ident()
        self.model_id = model_id or self.path.stem
        self.max_batch = max_batch
        self.n_ctx_per_seq = n_ctx_per_seq
        self.use_grammar = grammar
        _init_backend(verbose)
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = 0
        self._model = self._native.model = llama_cpp.llama_model_load_from_file(
            str(self.path).encode(), model_params
        )
        if not self._model:
            raise LlamaCppError(
                f"{self.path}: llama.cpp could not load this GGUF (truncated, corrupt or not a GGUF)"
            )
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        threads = n_threads or max(1, os.cpu_count() or 1)
        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = n_ctx_per_seq * (max_batch + 1)
        ctx_params.n_batch = 2048
        ctx_params.n_ubatch = 512
        ctx_params.n_seq_max = max_batch + 1
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        ctx_params.kv_unified = kv_unified
        self._ctx = self._native.ctx = llama_cpp.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            raise LlamaCppError(f"{self.path}: could not create a llama.cpp context")
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._batch = self._native.batch = llama_cpp.llama_batch_init(ctx_params.n_batch, 0, 1)
        self._n_batch = ctx_params.n_batch
        self._formatter = self._build_formatter()
        plain = build_grammar_text().encode()
        self._grammars = self._native.grammars
        for _ in range(max_batch):
            sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, plain, b"root")
            if not sampler:
                raise LlamaCppError("llama.cpp rejected the Motivation grammar")
            self._grammars.append(sampler)
        self._candidates = np.zeros(self.n_vocab, dtype=_TOKEN_DATA)
        self._candidates["id"] = np.arange(self.n_vocab, dtype=np.int32)
        self._one = np.zeros(1, dtype=_TOKEN_DATA)
        self._prefix = self._shared_prefix()
        self._decode_prefix()

    # -- prompt -----------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(4096)
        n = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def _token_text(self, token: int) -> str:
        return self._piece(token, special=True).decode("utf-8", "replace")

    def _build_formatter(self) -> Jinja2ChatFormatter:
        template = llama_cpp.llama_model_chat_template(self._model, None)
        if not template:
            raise LlamaCppError(f"{self.path}: the GGUF has no chat template")
        return Jinja2ChatFormatter(
            template=template.decode("utf-8"),
            eos_token=self._token_text(llama_cpp.llama_vocab_eos(self._vocab)),
            bos_token=self._token_text(llama_cpp.llama_vocab_bos(self._vocab)),
        )

    def render_prompt(self, request: DecisionRequest) -> str:
        """The exact prompt text for a request, through the GGUF's own chat template."""
        messages = build_messages(request.profile, request.situation)
        return self._formatter(messages=messages).prompt  # type: ignore[arg-type]

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text``, special tokens parsed, BOS as the model wants it."""
        raw = text.encode("utf-8")
        add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        capacity = len(raw) + 8
        out = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self._vocab, raw, len(raw), out, capacity, add_bos, True)
        if n < 0:
            capacity = -n
            out = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self._vocab, raw, len(raw), out, capacity, add_bos, True)
        return list(out[:n])

    def _piece(self, token: int, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def _shared_prefix(self) -> list[int]:
        """Tokens every prompt starts with: the chat template around our system message."""
        from characters import CharacterProfile, Situation

        def tokens_for(name: str) -> list[int]:
            profile = CharacterProfile(name=name, description=name)
            situation = Situation(context=name)
            return self.tokenize(self.render_prompt(DecisionRequest(profile, situation)))

        first, second = tokens_for("Ada"), tokens_for("Zed")
        n = 0
        while n < min(len(first), len(second)) and first[n] == second[n]:
            n += 1
        return first[:n]

    # -- decoding -----------------------------------------------------------------------------

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
        rc = llama_cpp.llama_decode(self._ctx, self._batch)
        if rc != 0:
            raise LlamaCppError(f"llama_decode returned {rc} (KV cache full or bad batch)")

    def _decode_prefix(self) -> None:
        llama_cpp.llama_memory_clear(self._mem, True)
        self._batch.n_tokens = 0
        for pos, token in enumerate(self._prefix):
            self._add(token, pos, 0, False)
        if self._prefix:
            self._decode()
        self._batch.n_tokens = 0

    def _logits(self, index: int) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _grammar_allows(self, slot: _Slot, token: int) -> bool:
        self._one[0] = (token, 0.0, 0.0)
        arr = llama_cpp.llama_token_data_array(
            data=self._one.ctypes.data_as(llama_cpp.llama_token_data_p), size=1, selected=-1, sorted=False
        )
        llama_cpp.llama_sampler_apply(slot.grammar, ctypes.byref(arr))
        return bool(np.isfinite(self._one["logit"][0]))

    def _grammar_mask(self, slot: _Slot, logits: np.ndarray) -> np.ndarray:
        cand = self._candidates
        cand["logit"] = logits
        arr = llama_cpp.llama_token_data_array(
            data=cand.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=self.n_vocab,
            selected=-1,
            sorted=False,
        )
        llama_cpp.llama_sampler_apply(slot.grammar, ctypes.byref(arr))
        return np.asarray(cand["logit"], dtype=np.float32).copy()

    @staticmethod
    def _choose(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
        if sampling.greedy():
            return int(np.argmax(logits))
        k = min(max(sampling.top_k, 1), logits.shape[0])
        top = np.argpartition(-logits, k - 1)[:k]
        vals = logits[top].astype(np.float64) / max(sampling.temperature, 1e-4)
        order = np.argsort(-vals, kind="stable")
        top, vals = top[order], vals[order]
        finite = np.isfinite(vals)
        top, vals = top[finite], vals[finite]
        if top.size == 0:
            return int(np.argmax(logits))
        probs = np.exp(vals - vals[0])
        probs /= probs.sum()
        keep = int(np.searchsorted(np.cumsum(probs), sampling.top_p) + 1)
        top, probs = top[:keep], probs[:keep]
        probs /= probs.sum()
        return int(top[rng.choice(top.size, p=probs)])

    def _sample(self, slot: _Slot, logits: np.ndarray) -> int:
        sampling = slot.request.sampling
        token = self._choose(logits, sampling, slot.rng)
        if self.use_grammar and not self._grammar_allows(slot, token):
            masked = self._grammar_mask(slot, logits)
            if not np.isfinite(masked).any():
                # No token can go on: a name anchored with a character this vocabulary cannot
                # spell (SmolLM2 has no token for the byte 0xF1, so U+40000-U+7FFFF). Accepting
                # any token now would abort the whole process inside llama.cpp.
                slot.done, slot.error = True, "grammar dead end: no token can continue the answer"
                return -1
            token = self._choose(masked, sampling, slot.rng)
        if self.use_grammar:
            llama_cpp.llama_sampler_accept(slot.grammar, token)
        return token

    def _finish_token(self, slot: _Slot, token: int) -> None:
        if token < 0:  # _sample ended the slot
            return
        slot.last_token = token
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
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

    def generate(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        """Decode all requests together, ``max_batch`` at a time."""
        out: list[RawDecision] = []
        for start in range(0, len(requests), self.max_batch):
            chunk = requests[start : start + self.max_batch]
            out.extend(self._call(self._generate_batch, chunk))
        return out

    def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn`` on the backend's own thread and wait for it; a closed backend raises."""
        closed = LlamaCppError(f"{self.path.name}: the backend is closed")
        if self._stopping.is_set():
            raise closed
        try:
            future = self._executor.submit(fn, *args)
        except RuntimeError:  # closed between the check and the submit: the executor refuses work
            raise closed from None
        return future.result()

    def _generate_batch(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        started = time.perf_counter()
        n_prefix = len(self._prefix)
        budget = self.n_ctx_per_seq
        slots: list[_Slot] = []
        pending: list[tuple[_Slot, list[int]]] = []
        for i, request in enumerate(requests):
            seq_id = i + 1
            grammar = self._slot_grammar(i, request)
            slot = _Slot(seq_id, request, grammar, np.random.default_rng(request.sampling.seed))
            slots.append(slot)
            if request.is_abandoned():
                slot.done, slot.error = True, _ABANDONED
                continue
            tokens = self.tokenize(self.render_prompt(request))
            slot.prompt_tokens = len(tokens)
            if len(tokens) + request.sampling.max_new_tokens > budget:
                slot.done = True
                slot.error = f"prompt of {len(tokens)} tokens leaves no room in {budget}"
                continue
            llama_cpp.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
            if n_prefix and tokens[:n_prefix] == self._prefix:
                llama_cpp.llama_memory_seq_cp(self._mem, 0, seq_id, -1, -1)
                slot.pos = n_prefix
                pending.append((slot, tokens[n_prefix:]))
            else:
                pending.append((slot, tokens))
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
            for i, slot in enumerate(slots):
                llama_cpp.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
                if slot.grammar != self._grammars[i]:  # an anchored one, made for this request
                    llama_cpp.llama_sampler_free(slot.grammar)
        elapsed = time.perf_counter() - started
        return [
            RawDecision(
                text=slot.text.decode("utf-8", "replace"),
                prompt_tokens=slot.prompt_tokens,
                output_tokens=len(slot.tokens),
                error=slot.error,
                decode_s=elapsed,
            )
            for slot in slots
        ]

    def _slot_grammar(self, i: int, request: DecisionRequest) -> ctypes.c_void_p:
        """A fresh grammar sampler for slot ``i``: anchored to the character's name when asked.

        Compiling a grammar takes well under a millisecond, so anchored ones are made per request
        and freed after the batch. A name the grammar cannot hold (too long) gets the plain one.
        """
        text = _anchored_grammar(request.profile.name) if self.anchor_name else None
        if text is not None:
            sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, text, b"root")
            if sampler:
                return sampler
        llama_cpp.llama_sampler_reset(self._grammars[i])
        return self._grammars[i]

    def _prefill(self, pending: list[tuple[_Slot, list[int]]]) -> None:
        """Decode every prompt's suffix in shared chunks; sample each slot's first token."""
        queue = [(slot, tok, j == len(toks) - 1) for slot, toks in pending for j, tok in enumerate(toks)]
        for chunk_start in range(0, len(queue), self._n_batch):
            chunk = queue[chunk_start : chunk_start + self._n_batch]
            self._batch.n_tokens = 0
            ends: list[tuple[_Slot, int]] = []
            for slot, token, is_last in chunk:
                self._add(token, slot.pos, slot.seq_id, is_last)
                slot.pos += 1
                if is_last:
                    ends.append((slot, self._batch.n_tokens - 1))
            self._decode()
            for slot, index in ends:
                self._finish_token(slot, self._sample(slot, self._logits(index)))

    def _decode_loop(self, active: list[_Slot]) -> None:
        while True:
            for slot in active:
                if not slot.done and slot.request.is_abandoned():
                    slot.done, slot.error = True, _ABANDONED
            live = [s for s in active if not s.done]
            if not live:
                return
            self._batch.n_tokens = 0
            for slot in live:
                self._add(slot.last_token, slot.pos, slot.seq_id, True)
                slot.pos += 1
            self._decode()
            for index, slot in enumerate(live):
                self._finish_token(slot, self._sample(slot, self._logits(index)))

    def decode_floor(self, prompt_lens: Sequence[int], output_lens: Sequence[int]) -> float:
        """Seconds that raw ``llama_decode`` alone needs for these token counts, batched like ``generate``.

        Same prefix copy, same prompt chunks, one token per live sequence per step, logits where
        ``generate`` asks for them; no tokenizing, sampling, grammar or detokenizing. It is the floor
        our overhead is measured against.
        """
        if len(prompt_lens) > self.max_batch:
            raise ValueError("decode_floor takes at most max_batch sequences")
        return self._call(self._decode_floor, prompt_lens, output_lens)

    def _decode_floor(self, prompt_lens: Sequence[int], output_lens: Sequence[int]) -> float:
        n_prefix = len(self._prefix)
        started = time.perf_counter()
        slots = []
        for i, n in enumerate(prompt_lens):
            seq = i + 1
            llama_cpp.llama_memory_seq_rm(self._mem, seq, -1, -1)
            llama_cpp.llama_memory_seq_cp(self._mem, 0, seq, -1, -1)
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
            llama_cpp.llama_memory_seq_rm(self._mem, seq, -1, -1)
        return time.perf_counter() - started

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop any decode at its next step and free the llama.cpp state on the backend's thread.

        Idempotent and safe from any thread. Waits at most ``timeout_s`` for the free, which
        follows the llama.cpp call in flight; then the backend's thread has ended.
        """
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is None:  # __init__ failed before anything was made
            return
        finalizer()  # the first call hands the free to the backend's thread; later ones do nothing
        if threading.get_ident() != self._native.owner and self._native.released.wait(timeout_s):
            self._executor.shutdown(wait=True)  # only the exit marker is left: joins at once


def _complete_json(text: bytearray) -> bool:
    try:
        json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


QUANT_TYPES = {
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
    "Q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
}


def quantize_gguf(src: str | Path, dst: str | Path, quant: str = "Q4_K_M", *, threads: int = 0) -> None:
    """Quantize a GGUF with llama.cpp (requantizing allowed), writing ``dst`` atomically."""
    if quant not in QUANT_TYPES:
        raise ValueError(f"unknown quant type {quant!r}; choose from {', '.join(QUANT_TYPES)}")
    _init_backend(verbose=False)
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[quant])
    params.allow_requantize = True
    params.nthread = threads
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0:
        tmp.unlink(missing_ok=True)
        raise LlamaCppError(f"quantizing {src} to {quant} failed (code {rc})")
    tmp.replace(dst)
