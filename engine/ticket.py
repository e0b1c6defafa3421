"""Tickets: the game's handle on a decision that is being made in the background."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from typing import Literal

from characters import CharacterProfile, Motivation, Situation

Source = Literal["model", "retry", "fallback", "cache", "rules"]


@dataclass(frozen=True)
class DecisionResult:
    """A schema-valid Motivation with where it came from and what it cost."""

    motivation: Motivation
    source: Source
    latency_ms: float
    prompt_tokens: int = 0
    output_tokens: int = 0
    model_id: str = ""
    reason: str | None = None
    attempts: int = 1

    def to_record(self) -> dict[str, object]:
        """A flat JSON-ready record of the result."""
        return {
            **self.motivation.model_dump(),
            "source": self.source,
            "latency_ms": round(self.latency_ms, 2),
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "model_id": self.model_id,
            "reason": self.reason,
        }


_ids = itertools.count(1)


@dataclass(eq=False)
class Ticket:
    """A pending decision: poll ``done()``, read ``result()``, or ``cancel()`` it."""

    profile: CharacterProfile
    situation: Situation
    priority: int = 0
    deadline: float | None = None
    seed: int = 0
    submitted_at: float = field(default_factory=time.monotonic)
    id: int = field(default_factory=lambda: next(_ids))
    # An Event only for a ticket someone blocks on: a game polls ``done()``, and making and
    # setting an Event for each of 50 submits a frame was a third of submit's time.
    _event: threading.Event | None = field(default=None, repr=False)
    _done: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _result: DecisionResult | None = field(default=None, repr=False)
    _cancelled: bool = field(default=False, repr=False)
    _callbacks: list[Callable[[Ticket], None]] = field(default_factory=list, repr=False)

    def done(self) -> bool:
        """True once a result is in or the ticket was cancelled. Never blocks."""
        return self._done

    def cancelled(self) -> bool:
        """True if the ticket was cancelled before it finished."""
        return self._cancelled

    def cancel(self) -> bool:
        """Cancel if not finished yet; returns whether it was cancelled."""
        with self._lock:
            if self._done:
                return self._cancelled
            self._cancelled = True
            self._finish()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(self)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (or ``timeout`` seconds); returns whether it is done."""
        with self._lock:
            if self._done:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def result(self, timeout: float | None = None) -> DecisionResult:
        """The result, waiting up to ``timeout`` seconds; raises CancelledError or TimeoutError."""
        if not self.wait(timeout):
            raise TimeoutError(f"ticket {self.id} not done after {timeout} s")
        if self._cancelled:
            raise CancelledError(f"ticket {self.id} was cancelled")
        assert self._result is not None
        return self._result

    def add_done_callback(self, callback: Callable[[Ticket], None]) -> None:
        """Call ``callback(ticket)`` when done (at once if already done), from the finishing thread."""
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def _complete(self, result: DecisionResult) -> bool:
        """Set the result unless already done; returns whether this call set it."""
        with self._lock:
            if self._done:
                return False
            self._result = result
            self._finish()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(self)
        return True

    def _finish(self) -> None:
        """Mark done and wake anyone waiting; holds ``_lock``."""
        self._done = True
        if self._event is not None:
            self._event.set()
