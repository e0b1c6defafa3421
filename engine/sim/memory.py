"""Memories scored by recency, importance and relevance, as in Generative Agents."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

_WORD = re.compile(r"[a-z']{3,}")
RECENCY_HALF_LIFE_MINUTES = 6 * 60


@dataclass
class MemoryItem:
    """Something a character experienced."""

    minute: int
    text: str
    importance: int  # 1 (mundane) .. 10 (life-changing)
    people: list[str] = field(default_factory=list)
    place: str | None = None
    own_action: bool = False  # what the character itself set out to do (its purpose, acted on)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class Memory:
    """A character's memory stream with retrieval."""

    items: list[MemoryItem] = field(default_factory=list)
    capacity: int = 300

    def add(self, item: MemoryItem) -> None:
        """Remember ``item``; past capacity the least important old memories are forgotten."""
        self.items.append(item)
        if len(self.items) > self.capacity:
            keep = sorted(self.items, key=lambda m: (m.importance, m.minute), reverse=True)[: self.capacity]
            self.items = sorted(keep, key=lambda m: m.minute)

    def score(self, item: MemoryItem, now: int, query_words: set[str]) -> float:
        """Recency (exponential decay) + importance + relevance (word overlap), each in 0..1."""
        recency = math.exp(-math.log(2) * max(0, now - item.minute) / RECENCY_HALF_LIFE_MINUTES)
        importance = item.importance / 10.0
        words = set(_WORD.findall(item.text.lower())) | {p.lower() for p in item.people}
        relevance = len(words & query_words) / max(len(query_words), 1) if query_words else 0.0
        return recency + importance + relevance

    def retrieve(self, now: int, query: str = "", k: int = 3) -> list[MemoryItem]:
        """The ``k`` best memories for the current moment and query text."""
        query_words = set(_WORD.findall(query.lower()))
        ranked = sorted(self.items, key=lambda m: (self.score(m, now, query_words), m.minute), reverse=True)
        return ranked[:k]

    def important(self, threshold: int = 6, k: int = 3) -> list[MemoryItem]:
        """The most important memories, newest first among equals (for the profile's background)."""
        strong = [m for m in self.items if m.importance >= threshold]
        return sorted(strong, key=lambda m: (m.importance, m.minute), reverse=True)[:k]
