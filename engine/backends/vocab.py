"""The model's vocabulary, as the llama.cpp backend uses it: prompts, tokens and their bytes.

``Vocab`` is the base of ``LlamaCppBackend`` (``engine.backends.llamacpp``), which loads the model
and sets the handles declared here. Like the other parts of that backend (``batch``, ``sampling``,
``jump_forward``, ``slots``, ``scheduler``), it calls llama.cpp through ``_lib``, the binding that
``engine.backends.llamacpp`` imports: the one module that does.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.backends.errors import LlamaCppError
from engine.prompt import build_messages
from engine.request import DecisionRequest


class Vocab:
    """Prompt text through the GGUF's chat template, its tokens, and the bytes of each token."""

    _lib: ModuleType  # llama-cpp-python's binding (set by LlamaCppBackend)
    path: Path
    _model: Any  # llama_model *
    _vocab: Any  # llama_vocab *
    n_vocab: int
    _formatter: Callable[..., Any]  # the chat template (a Jinja2ChatFormatter)
    _prefix: list[int]  # tokens every prompt starts with (see _shared_prefix)

    def _token_text(self, token: int) -> str:
        return self._piece(token, special=True).decode("utf-8", "replace")

    def _build_formatter(self) -> Callable[..., Any]:
        template = self._lib.llama_model_chat_template(self._model, None)
        if not template:
            raise LlamaCppError(f"{self.path}: the GGUF has no chat template")
        return self._lib.llama_chat_format.Jinja2ChatFormatter(
            template=template.decode("utf-8"),
            eos_token=self._token_text(self._lib.llama_vocab_eos(self._vocab)),
            bos_token=self._token_text(self._lib.llama_vocab_bos(self._vocab)),
        )

    def render_prompt(self, request: DecisionRequest) -> str:
        """The exact prompt text for a request, through the GGUF's own chat template."""
        messages = build_messages(request.profile, request.situation)
        return self._formatter(messages=messages).prompt

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text``, special tokens parsed, BOS as the model wants it."""
        raw = text.encode("utf-8")
        add_bos = bool(self._lib.llama_vocab_get_add_bos(self._vocab))
        capacity = len(raw) + 8
        out = (self._lib.llama_token * capacity)()
        n = self._lib.llama_tokenize(self._vocab, raw, len(raw), out, capacity, add_bos, True)
        if n < 0:
            capacity = -n
            out = (self._lib.llama_token * capacity)()
            n = self._lib.llama_tokenize(self._vocab, raw, len(raw), out, capacity, add_bos, True)
        return list(out[:n])

    def _tokenize_bytes(self, raw: bytes) -> list[int]:
        capacity = len(raw) + 8
        out = (self._lib.llama_token * capacity)()
        n = self._lib.llama_tokenize(self._vocab, raw, len(raw), out, capacity, False, False)
        return list(out[: max(n, 0)])

    def _piece(self, token: int, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
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
