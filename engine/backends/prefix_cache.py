"""Per-character prompt cache: the KV state of each character's last prompt, bounded by bytes.

A world asks the same character again and again and only the situation lines change, so the
next prompt shares a long token prefix (system message, name, description, background...) with
the last one. The backend keeps, per character, the last prompt's tokens and the sequence state
llama.cpp saved after prefilling them; a new request restores it and prefills only from the first
token that differs. A changed profile shortens that shared prefix (it is recomputed from the
first changed line on) and its new state replaces the old entry: the cache is keyed by name but
reuse is decided by comparing tokens, so a stale entry can cost time, never correctness.

This module holds no llama.cpp state itself: entries carry an opaque blob and its size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(frozen=True)
class PrefixEntry:
    """One character's cached prompt: its tokens and the saved state of exactly those tokens."""

    tokens: tuple[int, ...]
    blob: Any
    nbytes: int


class PrefixCache:
    """Least-recently-used map from a character key to its last prompt state, within ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self._entries: OrderedDict[str, PrefixEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0  # a lookup that reused more than the shared system prefix
        self.misses = 0
        self.partial = 0  # hits whose entry differed before its end (profile or situation changed)
        self.reused_tokens = 0
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        """Whether anything can be stored."""
        return self.max_bytes > 0

    def lookup(self, key: str, tokens: Sequence[int]) -> tuple[PrefixEntry | None, int]:
        """The entry for ``key`` (refreshed as most recent) and how many leading tokens it shares."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None, 0
            self._entries.move_to_end(key)
            return entry, common_prefix_len(entry.tokens, tokens)

    def count(self, reused: int, entry_len: int | None) -> None:
        """Record one request: ``reused`` tokens restored from an entry of ``entry_len`` (None: a miss)."""
        with self._lock:
            if entry_len is None or reused == 0:
                self.misses += 1
                return
            self.hits += 1
            self.reused_tokens += reused
            if reused + 1 < entry_len:  # one token short is the same prompt: its last is re-fed
                self.partial += 1

    def store(self, key: str, tokens: Sequence[int], blob: Any, nbytes: int) -> None:
        """Keep ``blob`` as ``key``'s state, evicting least recently used entries past the bound."""
        if not self.enabled or nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = PrefixEntry(tuple(tokens), blob, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes
                self.evictions += 1

    def clear(self) -> None:
        """Drop every entry (counters stay)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def stats(self) -> dict[str, float]:
        """Bound, size, entries and hit rate."""
        with self._lock:
            looked = self.hits + self.misses
            return {
                "max_bytes": self.max_bytes,
                "bytes": self._bytes,
                "entries": len(self._entries),
                "hits": self.hits,
                "misses": self.misses,
                "partial_hits": self.partial,
                "hit_rate": self.hits / looked if looked else 0.0,
                "reused_tokens": self.reused_tokens,
                "evictions": self.evictions,
            }

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
