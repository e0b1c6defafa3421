"""The llama.cpp backend: batched, grammar-constrained decoding of many characters at once.

Requests that arrive together decode in one ``llama_decode`` per step, one ``seq_id`` each, as
llama.cpp's server does with slots. The system prompt shared by every request is decoded once into
sequence 0 and copied (not recomputed) into each slot's KV cache. Each slot has its own grammar
sampler built from the Motivation JSON Schema by llama.cpp's converter.

Sampling checks the sampled token against the grammar first and constrains the whole vocabulary
only when that token is rejected, which keeps most steps off the grammar's slow path.

The decode path reuses what a world repeats. Each character's last prompt state is kept (a
``PrefixCache``, bounded by bytes), so the next request for that character prefills only from the
first token that changed, usually the situation lines. Steps are planned as calls that llama.cpp
runs as one ubatch each (``batch_plan``), and finished sequences hand their ids to live ones so
the live ids stay consecutive (llama.cpp runs a gap as an extra pass over the weights). Where the
grammar admits exactly one continuation (a key, a quote, a name after a lead-in), a lone sequence
feeds those tokens in the same call as its sampled one and keeps the ones its own sampling agrees
with (jump-forward), so the output is the plain path's, token for token.

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
from collections import Counter
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
from engine.backends.batch_plan import plan_calls
from engine.backends.prefix_cache import PrefixCache
from engine.backends.steer import Steering, SteerState
from engine.backends.thread_governor import ThreadGovernor, name_this_thread
from engine.prompt import build_messages, build_user_message
from engine.request import ABANDONED, DecisionRequest, RawDecision, Sampling

_ABANDONED = f"{ABANDONED}: the ticket was answered or cancelled before decoding finished"
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
# llama.cpp's CPU flash attention takes a tiled kernel, with other rounding, for 64+ query rows of
# one sequence in a ubatch; batch-invariant decoding keeps every call below it.
_FA_TILE_ROWS = 64
_MAX_DRAFT_BYTES = 48  # one forced run: the longest is a key or a name, well under this
_FLOAT_FILE_TYPES = {"0", "1", "32"}  # general.file_type: all F32, mostly F16, mostly BF16
STEER_PENALTY = 3.0  # logits off a word an earlier purpose used (engine.backends.steer)
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


# "Hands shaking, ": a phrase of 1-4 words of up to 10 letters each, only the first capitalised, then
# ", ". A longer lead-in let a garbled clause stand before the name ("... kitchen ands, Marco Bellini").
_LEAD_WORDS, _LEAD_WORD_CHARS = LEAD_IN_MAX_WORDS, 10
_LEAD_MAX = _LEAD_WORDS * (_LEAD_WORD_CHARS + 1) + 1


def _lead_initial(name: str) -> str:
    """The lead-in's first letter: a capital, but not the name's own initial.

    A lead-in that starts like the name is, in practice, the model misspelling the name before the
    grammar forces the real one ("Shenice Ward waves, Shanice Ward ..."); the words after the first
    are lower case for the same reason ("Mayan Tom Hutchins holds, Mayor Tom Hutchins ...").
    """
    initial = name.strip()[:1]
    if "A" <= initial <= "Z":
        ranges = [
            (lo, hi) for lo, hi in (("A", chr(ord(initial) - 1)), (chr(ord(initial) + 1), "Z")) if lo <= hi
        ]
        return "[" + "".join(lo if lo == hi else f"{lo}-{hi}" for lo, hi in ranges) + "]"
    return "[A-Z]"


def build_grammar_text(name: str | None = None, *, lead_in: bool = True) -> str:
    """GBNF for the Motivation schema, made by llama.cpp's JSON Schema converter.

    With ``name``, every purpose must carry the character's exact name: at its start, or after a
    short lead-in phrase and a comma ("Ever reserved, Brynn Blackthorn heads ..."), which are the
    two shapes the training data uses. A small model otherwise mangles names now and then
    ("Mayhew Tom Hutchins" for "Mayor Tom Hutchins"), and a game cannot show that. Length bounds
    still hold: the rest of the string is shortened by the name and the lead-in. With
    ``lead_in=False`` every purpose starts with the name (the plain style's only shape), so the
    name is forced tokens and nothing can stand before it.
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
        f"anchor-lead ::= {_lead_initial(name)} [a-z']{{0,{_LEAD_WORD_CHARS - 1}}} "
        f'(" " [a-z\']{{1,{_LEAD_WORD_CHARS}}}){{0,{_LEAD_WORDS - 1}}} ", "',
    ]
    for key, spec in motivation_json_schema()["properties"].items():
        rule = key.replace("_", "-")
        low = max(0, spec["minLength"] - len(name))
        high, high_lead = spec["maxLength"] - len(name), spec["maxLength"] - len(name) - _LEAD_MAX
        if lead_in and high_lead < low:
            raise ValueError(f"name {name!r} is too long for a {spec['maxLength']}-character purpose")
        lead = f" | anchor-lead anchor-name char{{{low},{high_lead}}}" if lead_in else ""
        anchored = f'{rule} ::= "\\"" (anchor-name char{{{low},{high}}}{lead}) "\\"" space'
        text, n = re.subn(rf"^{rule} ::= .*$", anchored.replace("\\", "\\\\"), text, flags=re.M)
        if n != 1:
            raise LlamaCppError(f"the grammar converter no longer writes a {rule!r} rule")
    return text.rstrip("\n") + "\n" + "\n".join(rules if lead_in else rules[:1]) + "\n"


@functools.lru_cache(maxsize=256)  # names come and go in a long-running world
def _anchored_grammar(name: str, lead_in: bool = True) -> bytes | None:
    """The name-anchored grammar as bytes, or None where the name is too long to anchor."""
    try:
        return build_grammar_text(name, lead_in=lead_in).encode()
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
    its next step (a call from the backend's own thread included).
    """
    stopping.set()
    try:
        # queued even on the backend's own thread: a ticket callback there (continuous batching
        # delivers on it) may close the service in the middle of a decode that still uses them
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
    prompt: list[int] = field(default_factory=list)
    reused_tokens: int = 0  # prompt tokens restored from the character's cached state
    cached_whole: bool = False  # the cache holds this very prompt (a retry): nothing new to store
    logit_trace: list[float] = field(default_factory=list)  # the sampled tokens' logits, for tests
    steer: SteerState | None = None
    grammar_index: int = -1  # which of the backend's plain grammar samplers this slot may use
    started: float = 0.0  # when a streamed slot was admitted


@dataclass
class _Segment:
    """Tokens of one slot to decode in this step; ``rows`` collects the logits asked for."""

    slot: _Slot
    tokens: list[int]
    all_logits: bool = False  # a draft: every position is checked against the slot's own sampling
    sent: int = 0
    rows: list[np.ndarray] = field(default_factory=list)


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
        lead_in: bool = True,
        kv_unified: bool = False,
        verbose: bool = False,
        prefix_cache_mb: float = 256.0,
        jump_forward: bool = True,
        jump_max_live: int | None = None,
        adaptive_threads: bool = True,
        compact_slots: bool = True,
        batch_invariant: bool | None = None,
        steer_penalty: float = STEER_PENALTY,
        ban_name_echo: bool = True,
    ) -> None:
        """Load ``path``; the keywords after ``verbose`` tune the decode path (see ``_setup_decode``).

        ``prefix_cache_mb``: bound of the per-character prompt cache (0 turns it off).
        ``jump_forward``: feed grammar-forced tokens together with the sampled one, while at most
        ``jump_max_live`` sequences are live (default 1 with a KV stream per sequence: uneven
        token counts cost llama.cpp an extra ubatch there; all of them with ``kv_unified``).
        ``adaptive_threads``: use fewer threads than ``n_threads`` while other work (the game's own
        threads, another process) keeps cores busy (``engine.backends.thread_governor``).
        ``compact_slots``: keep live sequence ids consecutive. ``batch_invariant``: plan calls so
        each token's numbers do not depend on the rest of the batch (default: float weights).
        ``steer_penalty`` and ``ban_name_echo``: see ``engine.backends.steer`` (0 and False turn
        steering off).
        """
        self.steer_penalty = steer_penalty
        self.ban_name_echo = ban_name_echo
        self._steering: Steering | None = None
        self.anchor_name = anchor_name  # each purpose must carry the character's exact name
        self.lead_in = lead_in  # a short phrase may stand before the name (False: the name comes first)
        self.kv_unified = kv_unified
        self.jump_forward = jump_forward
        self.compact_slots = compact_slots
        self.adaptive_threads = adaptive_threads
        self._decode_options = (prefix_cache_mb, jump_max_live, batch_invariant)
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
        # before llama.cpp makes its thread team, which inherits the name: the governor counts
        # the CPU of the threads so named as the backend's own
        named = name_this_thread()
        self.model_id = model_id or self.path.stem
        self.max_batch = max_batch
        self.n_ctx_per_seq = n_ctx_per_seq
        self.use_grammar = grammar
        _init_backend(verbose)
        named = named and "OPENMP = 1" in llama_cpp.llama_print_system_info().decode()
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
        self._governor = ThreadGovernor(threads) if named else None
        invariant = self._decode_options[2]
        self.batch_invariant = (
            self._meta("general.file_type") in _FLOAT_FILE_TYPES if invariant is None else invariant
        ) and not kv_unified  # one shared stream: a token's cells, and so its sums, move around
        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = n_ctx_per_seq * (max_batch + 1)
        ctx_params.n_batch = 2048
        ctx_params.n_ubatch = 512
        ctx_params.n_seq_max = max_batch + 1
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        ctx_params.kv_unified = kv_unified
        if self.batch_invariant:  # the one-row kernel: each query row alone, whatever the batch
            ctx_params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
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
        self._setup_decode()

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

    def _sample(self, slot: _Slot, logits: np.ndarray) -> int:
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
            llama_cpp.llama_sampler_accept(slot.grammar, token)
        if steer is not None and steer.tables is not None:
            steer.tables.observe(steer, token)
        if self._token_log is not None:
            slot.logit_trace.append(float(logits[token]))
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

    def _new_slot(self, request: DecisionRequest, grammar_index: int) -> _Slot:
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
        return _Slot(
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

    # -- continuous batching -------------------------------------------------------------------

    def generate_stream(
        self,
        take: Callable[[int], Sequence[DecisionRequest]],
        emit: Callable[[DecisionRequest, RawDecision], None],
    ) -> float:
        """Continuous batching: admit requests between steps, hand each answer over as it ends.

        Whenever fewer than ``max_batch`` sequences are live, ``take(n)`` is asked for at most
        ``n`` more requests (it must not block); they are placed and prefilled and join the next
        step. ``emit(request, raw)`` gets each answer the step it finishes, on the backend's
        thread, instead of when the longest sequence of a batch ends. Returns, with the mean number
        of live sequences per step, once nothing is live and ``take`` gives nothing.
        """
        return self._call(self._stream, take, emit)

    def _stream(
        self,
        take: Callable[[int], Sequence[DecisionRequest]],
        emit: Callable[[DecisionRequest, RawDecision], None],
    ) -> float:
        live: list[_Slot] = []
        free_grammars = list(range(self.max_batch - 1, -1, -1))
        steps = live_sum = 0

        def retire(slots: list[_Slot]) -> list[_Slot]:
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

    def _admit(
        self, requests: Sequence[DecisionRequest], live: list[_Slot], free_grammars: list[int]
    ) -> None:
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

    def _free_slot(self, slot: _Slot, free_grammars: list[int] | None = None) -> None:
        """Drop the slot's KV cells and its anchored grammar; safe to call twice."""
        if slot.seq_id > 0:
            llama_cpp.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
        if slot.grammar_index >= 0:
            if slot.grammar != self._grammars[slot.grammar_index]:  # an anchored one, made for it
                llama_cpp.llama_sampler_free(slot.grammar)
            if free_grammars is not None:
                free_grammars.append(slot.grammar_index)
            slot.grammar_index = -1

    @staticmethod
    def _raw(slot: _Slot, elapsed: float) -> RawDecision:
        return RawDecision(
            text=slot.text.decode("utf-8", "replace"),
            prompt_tokens=slot.prompt_tokens,
            output_tokens=len(slot.tokens),
            error=slot.error,
            decode_s=elapsed,
        )

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
        text = _anchored_grammar(request.profile.name, self.lead_in) if self.anchor_name else None
        if text is not None:
            sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, text, b"root")
            if sampler:
                return sampler
        llama_cpp.llama_sampler_reset(self._grammars[i])
        return self._grammars[i]

    # -- the decode path: placing slots, planned calls, prompt cache, jump-forward -----------------

    def _setup_decode(self) -> None:
        """Limits of the planned calls, the prompt cache, and the saved system-prefix state."""
        prefix_cache_mb, jump_max_live, _ = self._decode_options
        self._n_ubatch = int(llama_cpp.llama_n_ubatch(self._ctx))
        self._max_per_seq = _FA_TILE_ROWS - 1 if self.batch_invariant else self._n_ubatch
        self.jump_max_live = jump_max_live or (self.max_batch if self.kv_unified else 1)
        self.prefix_cache = PrefixCache(int(prefix_cache_mb * 2**20))
        self._counters: Counter[str] = Counter()
        self._token_log: list[tuple[list[int], list[float]]] | None = None
        self._probe: np.ndarray | None = None  # every single-byte token and EOS, for forced runs
        self._probe_bytes = np.zeros(0, dtype=np.int16)
        self._byte_token: dict[int, int] = {}
        if self.jump_forward and self.use_grammar:
            self._probe_table()  # a vocabulary scan (~0.2 s): at load, not in the first decision
        # Restoring the system prefix copies its cells only; seq_cp across KV streams copies a
        # whole stream (n_ctx_per_seq cells) for every slot.
        self._prefix_state = self._save_state(0) if self._prefix and not self.kv_unified else None

    def stats(self) -> dict[str, object]:
        """The prompt cache (bound, size, hit rate), jump-forward and call counters."""
        counters = dict(self._counters)
        drafted = counters.get("drafted", 0)
        return {
            "prefix_cache": self.prefix_cache.stats(),
            "jump_forward": {
                "enabled": self.jump_forward,
                "max_live": self.jump_max_live,
                "drafted_tokens": drafted,
                "accepted_tokens": counters.get("accepted", 0),
                "acceptance": counters.get("accepted", 0) / drafted if drafted else 0.0,
                "jump_steps": counters.get("jump_steps", 0),
            },
            "decode_calls": counters.get("calls", 0),
            "decoded_tokens": counters.get("tokens", 0),
            "pad_tokens": counters.get("pads", 0),
            "slot_moves": counters.get("moves", 0),
            "batch_invariant": self.batch_invariant,
            "threads": self._thread_stats(),
        }

    def _thread_stats(self) -> dict[str, object]:
        governor = self._governor
        if governor is None:
            return {"adaptive": False, "now": None, "max": None, "others_cores": None, "changes": 0}
        return {
            "adaptive": self.adaptive_threads and governor.enabled,
            "now": governor.threads,
            "max": governor.max_threads,
            "others_cores": round(governor.others_cores, 3),
            "changes": governor.changes,
        }

    def clear_prefix_cache(self) -> None:
        """Forget every character's cached prompt state."""
        self.prefix_cache.clear()

    def configure_decode(
        self,
        prefix_cache_mb: float | None = None,
        jump_forward: bool | None = None,
        compact_slots: bool | None = None,
        adaptive_threads: bool | None = None,
    ) -> None:
        """Switch the decode path's speed-ups between calls (benchmarks compare them in one run).

        A new ``prefix_cache_mb`` starts an empty cache of that bound.
        """
        if prefix_cache_mb is not None:
            self.prefix_cache = PrefixCache(int(prefix_cache_mb * 2**20))
        if jump_forward is not None:
            self.jump_forward = jump_forward
        if compact_slots is not None:
            self.compact_slots = compact_slots
        if adaptive_threads is not None:
            self.adaptive_threads = adaptive_threads  # applied on the backend's thread, next step

    def configure_steering(self, penalty: float | None = None, ban_name_echo: bool | None = None) -> None:
        """Change the steering of later batches (see ``engine.backends.steer``); None keeps a setting."""
        if penalty is not None:
            self.steer_penalty = float(penalty)
        if ban_name_echo is not None:
            self.ban_name_echo = ban_name_echo
        self._steering = None  # rebuilt with the new settings for the next batch

    def set_threads(self, n_threads: int) -> None:
        """Change llama.cpp's thread count for the next calls (the adaptive count's ceiling too)."""

        def apply() -> None:
            if self._governor is not None:
                self._governor.set_max(n_threads)
            llama_cpp.llama_set_n_threads(self._ctx, n_threads, n_threads)

        self._executor.submit(apply).result()

    def _save_state(self, seq_id: int) -> tuple[ctypes.Array[ctypes.c_uint8], int]:
        size = llama_cpp.llama_state_seq_get_size(self._ctx, seq_id)
        buf = (ctypes.c_uint8 * size)()
        return buf, int(llama_cpp.llama_state_seq_get_data(self._ctx, buf, size, seq_id))

    def _restore(self, blob: ctypes.Array[ctypes.c_uint8], nbytes: int, seq_id: int) -> bool:
        return bool(llama_cpp.llama_state_seq_set_data(self._ctx, blob, nbytes, seq_id))

    def _place(self, slots: list[_Slot], ids: Sequence[int] | None = None) -> list[_Segment]:
        """Give live slots ids 1..n (or the free ``ids``, in order) and their KV start; returns what
        each still has to prefill.

        A slot starts from its character's cached prompt state where that shares more than the
        system prefix, else from the system prefix. Ids go by longest prefill first, so the
        sequences still prefilling at any point are 1..k and every planned call is one ubatch.
        """
        n_prefix = len(self._prefix)
        plans: list[tuple[_Slot, tuple[ctypes.Array[ctypes.c_uint8], int] | None, int, int | None]] = []
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
            llama_cpp.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
            if saved is not None and self._restore(*saved, seq_id):
                llama_cpp.llama_memory_seq_rm(self._mem, seq_id, start, -1)
                slot.reused_tokens = start
                slot.cached_whole = entry_len == len(slot.prompt) == start + 1
            else:
                if saved is not None:  # a state llama.cpp refused: start from the system prefix
                    llama_cpp.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
                    start, entry_len = (n_prefix if slot.prompt[:n_prefix] == self._prefix else 0), None
                if start and self._prefix_state is not None and self._restore(*self._prefix_state, seq_id):
                    pass
                elif start:
                    llama_cpp.llama_memory_seq_cp(self._mem, 0, seq_id, -1, -1)
            if self.prefix_cache.enabled:
                self.prefix_cache.count(slot.reused_tokens, entry_len)
            slot.pos = start
            segments.append(_Segment(slot, slot.prompt[start:]))
        unplaced = [slot for slot in slots if slot.done]
        for seq_id, slot in zip(ids[len(plans) :], unplaced, strict=False):
            slot.seq_id = seq_id  # never 0 (the shared prefix) nor -1 (every sequence, to seq_rm)
        return segments

    def _prefill(self, pending: list[_Segment]) -> None:
        """Decode every prompt's remaining tokens; sample each slot's first token; cache the prompt."""

        def first_token(segment: _Segment, rows: list[np.ndarray]) -> None:
            self._finish_token(segment.slot, self._sample(segment.slot, rows[-1]))

        self._run_segments(pending, first_token)
        if not self.prefix_cache.enabled:
            return
        for segment in pending:  # nothing after the prompt is in the KV cache yet
            slot = segment.slot
            if not slot.cached_whole:
                blob, nbytes = self._save_state(slot.seq_id)
                self.prefix_cache.store(slot.request.profile.name, slot.prompt, blob, nbytes)

    def _decode_loop(self, active: list[_Slot]) -> None:
        while True:
            self._drop_abandoned(active)
            live = [s for s in active if not s.done]
            if not live:
                if self._token_log is not None:  # tests compare paths token for token
                    self._token_log.extend((list(s.tokens), s.logit_trace) for s in active)
                return
            self._step(live)

    @staticmethod
    def _drop_abandoned(slots: list[_Slot]) -> None:
        for slot in slots:
            if not slot.done and slot.request.is_abandoned():
                slot.done, slot.error = True, _ABANDONED

    def _step(self, live: list[_Slot]) -> None:
        """One token (plus any forced run) for every live slot."""
        if self.compact_slots and not self.kv_unified:
            self._compact(live)
        jump = self.jump_forward and self.use_grammar and len(live) <= self.jump_max_live
        segments = []
        for slot in sorted(live, key=lambda s: s.seq_id):
            draft = self._draft(slot) if jump else []
            segments.append(_Segment(slot, [slot.last_token, *draft], all_logits=bool(draft)))
        self._run_segments(segments, self._advance)

    def _govern(self) -> None:
        """Follow the governor's thread count (it measures once a second; between, this is a clock read)."""
        governor = self._governor
        if governor is None:
            return
        if not self.adaptive_threads:  # switched off: back to the fixed count, here on this thread
            if governor.threads != governor.max_threads:
                governor.threads = governor.max_threads
                llama_cpp.llama_set_n_threads(self._ctx, governor.max_threads, governor.max_threads)
            return
        n = governor.poll()
        if n is not None:
            llama_cpp.llama_set_n_threads(self._ctx, n, n)

    def _compact(self, live: list[_Slot]) -> None:
        """Move the live sequences with the highest ids into the ids finished ones left."""
        n = len(live)
        taken = {slot.seq_id for slot in live}
        holes = [seq_id for seq_id in range(1, n + 1) if seq_id not in taken]
        movers = sorted((slot for slot in live if slot.seq_id > n), key=lambda slot: slot.seq_id)
        for hole, slot in zip(holes, movers, strict=True):
            llama_cpp.llama_memory_seq_rm(self._mem, hole, -1, -1)
            llama_cpp.llama_memory_seq_cp(self._mem, slot.seq_id, hole, -1, -1)
            llama_cpp.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
            slot.seq_id = hole
            self._counters["moves"] += 1

    def _run_segments(
        self, segments: list[_Segment], done: Callable[[_Segment, list[np.ndarray]], None]
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
            wanted: list[tuple[_Segment, int]] = []
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
                    llama_cpp.llama_memory_seq_rm(self._mem, 0, n_prefix, -1)
            finished: list[_Segment] = []
            for segment, index in wanted:
                complete = segment.sent == len(segment.tokens)
                segment.rows.append(self._logits(index) if complete else self._logits(index).copy())
                if complete and (not finished or finished[-1] is not segment):
                    finished.append(segment)
            for segment in finished:
                done(segment, segment.rows)

    def _advance(self, segment: _Segment, rows: list[np.ndarray]) -> None:
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
                llama_cpp.llama_memory_seq_rm(self._mem, slot.seq_id, first + 1 + accepted, -1)
            slot.pos = first + 1 + accepted

    def _draft(self, slot: _Slot) -> list[int]:
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
        clone = llama_cpp.llama_sampler_clone(grammar)
        try:
            while allowed.size == 1 and allowed[0] >= 0 and len(out) < _MAX_DRAFT_BYTES:
                byte = int(allowed[0])
                out.append(byte)
                llama_cpp.llama_sampler_accept(clone, self._byte_token[byte])
                allowed = self._admissible(clone)
        finally:
            llama_cpp.llama_sampler_free(clone)
        return bytes(out)

    def _admissible(self, grammar: ctypes.c_void_p) -> np.ndarray:
        """Bytes whose single-byte token ``grammar`` accepts now; -1 stands for end of text."""
        probe = self._probe_table()
        probe["logit"] = 0.0
        arr = llama_cpp.llama_token_data_array(
            data=probe.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=len(probe),
            selected=-1,
            sorted=False,
        )
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(arr))
        return self._probe_bytes[np.isfinite(probe["logit"])]

    def _probe_table(self) -> np.ndarray:
        if self._probe is None:
            for token in range(self.n_vocab):
                piece = self._piece(token)
                if len(piece) == 1 and piece[0] not in self._byte_token:
                    self._byte_token[piece[0]] = token
            pairs = [*sorted(self._byte_token.items()), (-1, llama_cpp.llama_vocab_eos(self._vocab))]
            probe = np.zeros(len(pairs), dtype=_TOKEN_DATA)
            probe["id"] = [token for _, token in pairs]
            self._probe_bytes = np.array([byte for byte, _ in pairs], dtype=np.int16)
            self._probe = probe
        return self._probe

    def _tokenize_bytes(self, raw: bytes) -> list[int]:
        capacity = len(raw) + 8
        out = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self._vocab, raw, len(raw), out, capacity, False, False)
        return list(out[: max(n, 0)])

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
        # longest output first: finished sequences leave no gaps among the live ids, each of
        # which would cost llama.cpp an extra pass over the weights
        order = sorted(range(len(prompt_lens)), key=lambda i: -output_lens[i])
        prompt_lens, output_lens = [prompt_lens[i] for i in order], [output_lens[i] for i in order]
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


QUANT_TYPES = {
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
    "Q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
    "Q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "IQ4_NL": "LLAMA_FTYPE_MOSTLY_IQ4_NL",
}
# Mixes: a llama.cpp type with some tensors (regex on the GGUF tensor name) of another type.
# Q4_K_M on 576-wide tensors falls back to q5_0 for most matrices (k-quants need 256-wide rows);
# "Q4_K_M-IQ4" keeps its choices for the sensitive attn_v and ffn_down and writes the other
# matrices as iq4_nl (32-wide blocks, a faster kernel on x86).
QUANT_MIXES: dict[str, tuple[str, dict[str, str]]] = {
    "Q4_K_M-IQ4": ("Q4_K_M", {r"attn_(q|k|output)\.weight|ffn_(gate|up)\.weight": "IQ4_NL"}),
}
QUANT_CHOICES = (*QUANT_TYPES, *QUANT_MIXES)


def quantize_gguf(src: str | Path, dst: str | Path, quant: str = "Q4_K_M", *, threads: int = 0) -> None:
    """Quantize a GGUF with llama.cpp (requantizing allowed), writing ``dst`` atomically.

    ``quant``: a llama.cpp type (QUANT_TYPES) or a mix of them (QUANT_MIXES).
    """
    if quant not in QUANT_CHOICES:
        raise ValueError(f"unknown quant type {quant!r}; choose from {', '.join(QUANT_CHOICES)}")
    base, overrides = QUANT_MIXES.get(quant, (quant, {}))
    _init_backend(verbose=False)
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[base])
    params.allow_requantize = True
    params.nthread = threads
    # a C array of (pattern, type) ended by a null pattern; kept alive until the call returns
    table = (llama_cpp.llama_model_tensor_override * (len(overrides) + 1))()
    for i, (pattern, type_name) in enumerate(overrides.items()):
        table[i].pattern = pattern.encode()
        table[i].type = getattr(llama_cpp, f"GGML_TYPE_{type_name}")
    if overrides:
        params.tt_overrides = ctypes.cast(table, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0:
        tmp.unlink(missing_ok=True)
        raise LlamaCppError(f"quantizing {src} to {quant} failed (code {rc})")
    tmp.replace(dst)
