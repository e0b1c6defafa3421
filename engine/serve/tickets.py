"""The server's ticket store: tickets submitted over HTTP, by id, and the streams that want them.

Lives on the event loop's thread: a service worker finishing a ticket hands it over with
``call_soon_threadsafe``, so no lock is needed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.serve.bodies import DecisionOut, TicketOut
from engine.ticket import Ticket


@dataclass(eq=False)
class Subscriber:
    """One stream's queue of finished tickets; ``overflowed`` is set when it fell too far behind."""

    queue: asyncio.Queue[TicketOut]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Entry:
    ticket: Ticket
    case_id: str | None
    finished_at: float | None = None


def ticket_body(ticket: Ticket, case_id: str | None) -> TicketOut:
    """The JSON body for a ticket in any state."""
    if not ticket.done():
        return TicketOut(ticket=ticket.id, id=case_id, status="pending")
    if ticket.cancelled():
        return TicketOut(ticket=ticket.id, id=case_id, status="cancelled")
    result = DecisionOut.from_result(ticket.id, case_id, ticket.result(timeout=0))
    return TicketOut(ticket=ticket.id, id=case_id, status="done", result=result)


class TicketStore:
    """Pending tickets until they finish; finished ones for ``keep_s`` seconds, at most ``max_finished``."""

    def __init__(
        self,
        *,
        max_finished: int = 10_000,
        keep_s: float = 600.0,
        subscriber_queue: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_finished = max_finished
        self.keep_s = keep_s
        self.subscriber_queue = subscriber_queue
        self._clock = clock
        self._pending: dict[int, _Entry] = {}
        self._finished: OrderedDict[int, _Entry] = OrderedDict()
        self._subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the event loop that serves requests (done once, at startup)."""
        self._loop = loop

    def add(self, ticket: Ticket, case_id: str | None) -> None:
        """Track a submitted ticket; its result goes to every subscriber when it finishes."""
        if self._loop is None:
            raise RuntimeError("TicketStore.attach(loop) was not called")
        loop = self._loop
        self._pending[ticket.id] = _Entry(ticket, case_id)

        def _hand_over(done: Ticket) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the server is shutting down
                loop.call_soon_threadsafe(self._finish, done.id)

        ticket.add_done_callback(_hand_over)

    def get(self, ticket_id: int) -> tuple[Ticket, str | None] | None:
        """The ticket and its caller id, or None when unknown or long finished."""
        self._evict()
        entry = self._pending.get(ticket_id) or self._finished.get(ticket_id)
        return None if entry is None else (entry.ticket, entry.case_id)

    def forget(self, ticket_id: int) -> None:
        """Drop a cancelled ticket, so that it is unknown from now on; its streams hear of it now."""
        entry = self._pending.pop(ticket_id, None)
        if entry is not None:  # still pending here: its done callback will find nothing to finish
            self._publish(ticket_body(entry.ticket, entry.case_id))
        self._finished.pop(ticket_id, None)

    def subscribe(self) -> Subscriber:
        """A new stream of finished tickets."""
        subscriber = Subscriber(asyncio.Queue(self.subscriber_queue))
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop streaming to ``subscriber``."""
        self._subscribers.discard(subscriber)

    def stats(self) -> dict[str, int]:
        """How many tickets are pending and kept, and how many streams are open."""
        return {
            "pending": len(self._pending),
            "finished_kept": len(self._finished),
            "subscribers": len(self._subscribers),
        }

    def _finish(self, ticket_id: int) -> None:
        entry = self._pending.pop(ticket_id, None)
        if entry is None:
            return
        entry.finished_at = self._clock()
        self._finished[ticket_id] = entry
        self._publish(ticket_body(entry.ticket, entry.case_id))
        self._evict()

    def _publish(self, body: TicketOut) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber.queue.put_nowait(body)
            except asyncio.QueueFull:  # a stream that stopped reading: it is told to reconnect
                subscriber.overflowed.set()
                self._subscribers.discard(subscriber)

    def _evict(self) -> None:
        horizon = self._clock() - self.keep_s
        while self._finished:
            oldest = next(iter(self._finished.values()))
            if len(self._finished) <= self.max_finished and (oldest.finished_at or 0.0) > horizon:
                return
            self._finished.popitem(last=False)
