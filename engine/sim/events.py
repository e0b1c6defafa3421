"""Simulation events and the bus the demo and the logs read."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.sim.world import format_clock


@dataclass(frozen=True)
class Event:
    """Something that happened in the world."""

    minute: int
    kind: str  # decision, follow (a leftover purpose while deciding), interaction, injected, unmapped, ...
    text: str
    actors: list[str] = field(default_factory=list)
    place: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One JSONL line (stable key order, for byte-exact replays)."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    def readable(self) -> str:
        """A log line for people."""
        return f"[{format_clock(self.minute)}] {self.kind:11} {self.text}"


class EventBus:
    """Publishes events to subscribers and keeps the recent ones."""

    def __init__(self, keep: int = 5000) -> None:
        self.recent: deque[Event] = deque(maxlen=keep)
        self._subscribers: list[Callable[[Event], None]] = []
        self.count = 0

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback(event)`` for every event from now on."""
        self._subscribers.append(callback)

    def publish(self, event: Event) -> None:
        """Record and deliver an event."""
        self.recent.append(event)
        self.count += 1
        for callback in self._subscribers:
            callback(event)
