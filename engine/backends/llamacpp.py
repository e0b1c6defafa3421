"""The llama.cpp backend: batched, grammar-constrained decoding of many characters at once.

Requests that arrive together decode in one ``llama_decode`` per step, one ``seq_id`` each, as
llama.cpp's server does with slots. The system prompt shared by every request is decoded once into
sequence 0 and copied (not recomputed) into each slot's KV cache. Each slot has its own grammar
sampler built from the Motivation JSON Schema by llama.cpp's converter.

This module owns ``LlamaCppBackend``: loading the model, the one thread every llama.cpp call of a
backend runs on, closing and freeing, the settings and stats of the decode path, and quantizing.
The backend is made of parts, each a module beside this one, layered in this order:

- ``vocab``: the chat template, prompt tokens and each token's bytes;
- ``batch``: the ``llama_decode`` calls that ``batch_plan`` plans, and sequence 0's system prefix;
- ``sampling``: top-k/top-p sampling, checked against the grammar; ``top_k_indices``;
- ``jump_forward``: the tokens a grammar forces, fed with the sampled one and kept where they agree;
- ``slots``: a sequence per request, its grammar, and its KV start from the prompt cache
  (``prefix_cache``); live ids kept consecutive;
- ``scheduler``: whole batches and continuous batching;
- ``grammar``: the Motivation GBNF, anchored to a character's name.

This is the only module that imports ``llama_cpp``: the parts call it through ``_lib``.
"""

from __future__ import annotations

import ctypes
import os
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import llama_cpp
import numpy as np
from llama_cpp.llama_grammar import json_schema_to_gbnf

from engine.backends.errors import LlamaCppError
from engine.backends.grammar import motivation_grammar
from engine.backends.prefix_cache import PrefixCache
from engine.backends.sampling import TOKEN_DATA, top_k_indices
from engine.backends.scheduler import Scheduler
from engine.backends.steer import Steering
from engine.backends.thread_governor import ThreadGovernor, name_this_thread
from engine.request import DecisionRequest, RawDecision

__all__ = [
    "QUANT_CHOICES",
    "QUANT_MIXES",
    "QUANT_TYPES",
    "STEER_PENALTY",
    "LlamaCppBackend",
    "LlamaCppError",
    "build_grammar_text",
    "quantize_gguf",
    "top_k_indices",
]

# llama.cpp's CPU flash attention takes a tiled kernel, with other rounding, for 64+ query rows of
# one sequence in a ubatch; batch-invariant decoding keeps every call below it.
_FA_TILE_ROWS = 64
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


def build_grammar_text(name: str | None = None, *, lead_in: bool = True) -> str:
    """GBNF for the Motivation schema, made by llama.cpp's JSON Schema converter.

    With ``name``, every purpose must carry the character's exact name, at its start or (with
    ``lead_in``) after a short lead-in phrase and a comma: ``engine.backends.grammar``.
    """
    return motivation_grammar(json_schema_to_gbnf, name, lead_in=lead_in)


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


class LlamaCppBackend(Scheduler):
    """A GGUF model decoded with llama.cpp, many requests per batch, grammar on every sequence."""

    name = "llamacpp"
    _lib = llama_cpp  # the binding the parts call llama.cpp through (engine.backends.vocab)

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
        self._candidates = np.zeros(self.n_vocab, dtype=TOKEN_DATA)
        self._candidates["id"] = np.arange(self.n_vocab, dtype=np.int32)
        self._one = np.zeros(1, dtype=TOKEN_DATA)
        self._prefix = self._shared_prefix()
        self._decode_prefix()
        self._setup_decode()

    def _meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(4096)
        n = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

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

    def decode_floor(self, prompt_lens: Sequence[int], output_lens: Sequence[int]) -> float:
        """Seconds that raw ``llama_decode`` alone needs for these token counts, batched like ``generate``.

        Same prefix copy, same prompt chunks, one token per live sequence per step, logits where
        ``generate`` asks for them; no tokenizing, sampling, grammar or detokenizing. It is the floor
        our overhead is measured against.
        """
        if len(prompt_lens) > self.max_batch:
            raise ValueError("decode_floor takes at most max_batch sequences")
        return self._call(self._decode_floor, prompt_lens, output_lens)

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
