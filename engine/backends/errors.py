"""The llama.cpp backend's error, shared by the modules it is made of."""

from __future__ import annotations


class LlamaCppError(RuntimeError):
    """The GGUF could not be loaded or a decode failed."""
