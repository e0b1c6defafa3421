"""Atomic text writes for the engine; the one implementation lives in models.registry."""

from __future__ import annotations

from pathlib import Path

from models.registry import write_atomic


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` so that a crash never leaves half a file where a good one was."""
    path = Path(path)
    write_atomic(path, text.encode("utf-8"))
    return path
