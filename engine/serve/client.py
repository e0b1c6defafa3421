"""A DecisionService on another process or machine: the same submit / poll / result API over HTTP.

    with RemoteDecisionService("http://127.0.0.1:8765") as service:
        ticket = service.submit(profile, situation, deadline_s=2.0)
        ...                                   # game keeps rendering
        for ticket in service.poll():         # never blocks
            act_on(ticket.result().motivation)

``submit`` is one POST (about a millisecond on loopback) and raises QueueFull on a 429, as the
in-process service does. Results arrive on a background thread over the server's WebSocket stream.
A ticket whose answer has not arrived a second after its deadline (server gone, connection lost)
gets the rules fallback here, flagged ``fallback``, so the game always has an answer in time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from characters import CharacterProfile, Situation
from engine.backends.rules import build_rule_motivation
from engine.serve.bodies import DecisionOut, StatsOut, TicketOut
from engine.service import QueueFull
from engine.stats import ServiceStats
from engine.ticket import DecisionResult, Ticket

LATE_GRACE_S = 1.0  # how long past its deadline a ticket waits for the server before the local fallback


class RemoteError(RuntimeError):
    """The server could not be reached, or refused a request for a reason other than a full queue."""


@dataclass(eq=False)
class RemoteTicket(Ticket):
    """A ticket whose decision is made by the server; ``cancel()`` cancels it there too."""

    _service: RemoteDecisionService | None = field(default=None, repr=False)

    def cancel(self) -> bool:
        """Cancel on the server, then here; False when it was already answered."""
        if self.done():
            return self.cancelled()
        if self._service is not None and not self._service._cancel_remote(self.id):
            return False
        return super().cancel()


def _fallback(ticket: Ticket, reason: str) -> DecisionResult:
    motivation = build_rule_motivation(ticket.profile, ticket.situation, ticket.seed)
    latency_ms = (time.monotonic() - ticket.submitted_at) * 1000.0
    return DecisionResult(motivation, "fallback", latency_ms, model_id="rules", reason=reason)


class RemoteDecisionService:
    """Talks to ``daydream serve``; tickets, poll() and result() behave as with DecisionService."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8765",
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        seed: int = 0,
    ) -> None:
        self.url = url.rstrip("/")
        self.seed = seed
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=self._headers, timeout=timeout_s)
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._pending: dict[int, RemoteTicket] = {}
        self._early: OrderedDict[int, TicketOut] = OrderedDict()  # results that beat their POST's reply
        self._finished: deque[Ticket] = deque()
        self._closed = threading.Event()
        self._connected = threading.Event()
        try:
            self.model_id = self._call("GET", "/v1/health").json()["model_id"]
            self._call("GET", "/v1/stats")  # a wrong token fails here, with the server's 401
        except (RemoteError, QueueFull, ValueError):
            self._http.close()
            raise
        self._stream_error: str | None = None
        self._listener = threading.Thread(target=self._listen, name="daydream-remote-stream", daemon=True)
        self._listener.start()
        if not self._connected.wait(timeout_s):
            self.close()
            raise RemoteError(
                f"{self.url}/v1/stream: no WebSocket connection within {timeout_s} s ({self._stream_error})"
            )

    # -- game-facing API -------------------------------------------------------------------

    def submit(
        self,
        profile: CharacterProfile,
        situation: Situation,
        *,
        priority: int = 0,
        deadline_s: float | None = None,
        seed: int | None = None,
    ) -> Ticket:
        """Queue a decision on the server; raises QueueFull on 429, ValueError on bad input."""
        if self._closed.is_set():
            raise RuntimeError("RemoteDecisionService is closed")
        seed = self.seed if seed is None else seed
        body: dict[str, Any] = {
            "profile": profile.model_dump(mode="json"),
            "situation": situation.model_dump(mode="json"),
            "priority": priority,
            "seed": seed,
        }
        if deadline_s is not None:
            body["deadline_ms"] = max(1, math.ceil(deadline_s * 1000))
        submitted_at = time.monotonic()
        out = TicketOut.model_validate(self._call("POST", "/v1/submit", json=body).json())
        ticket = RemoteTicket(
            profile=profile,
            situation=situation,
            priority=priority,
            deadline=None if deadline_s is None else submitted_at + deadline_s,
            seed=seed,
            submitted_at=submitted_at,
            id=out.ticket,
            _service=self,
        )
        ticket.add_done_callback(self._finished.append)
        with self._lock:
            early = self._early.pop(out.ticket, None)
            if out.status == "pending" and early is None:
                self._pending[out.ticket] = ticket
                return ticket
        self._settle(ticket, early or out)
        return ticket

    def decide(
        self,
        profile: CharacterProfile,
        situation: Situation,
        *,
        deadline_s: float | None = None,
        seed: int | None = None,
    ) -> DecisionResult:
        """One decision, waiting for it (for scripts and tools, not the game loop)."""
        body: dict[str, Any] = {
            "profile": profile.model_dump(mode="json"),
            "situation": situation.model_dump(mode="json"),
            "seed": self.seed if seed is None else seed,
        }
        if deadline_s is not None:
            body["deadline_ms"] = max(1, math.ceil(deadline_s * 1000))
        return DecisionOut.model_validate(self._call("POST", "/v1/decide", json=body).json()).to_result()

    def poll(self) -> list[Ticket]:
        """Tickets finished since the last poll (results and cancellations). Never blocks."""
        out = []
        while True:
            try:
                out.append(self._finished.popleft())
            except IndexError:
                return out

    def stats(self) -> ServiceStats:
        """The server's statistics."""
        return StatsOut.model_validate(self._call("GET", "/v1/stats").json()).service

    def pending(self) -> int:
        """How many decisions wait in the server's queue."""
        return int(self._call("GET", "/v1/health").json()["queued"])

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop listening; tickets still pending here are cancelled locally."""
        self._closed.set()
        if self._listener.is_alive() and self._listener is not threading.current_thread():
            self._listener.join(timeout_s)
        with self._lock:
            leftovers = list(self._pending.values())
            self._pending.clear()
        for ticket in leftovers:
            Ticket.cancel(ticket)
        self._http.close()

    def __enter__(self) -> RemoteDecisionService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise RemoteError(f"{self.url}{path}: {type(err).__name__}: {err}") from None
        if response.status_code == 429:
            raise QueueFull(
                f"{response.json().get('detail')} (retry after {response.headers.get('retry-after')} s)"
            )
        if response.status_code == 422:
            raise ValueError(f"{self.url}{path}: {response.json().get('detail')}")
        if response.status_code >= 400:
            raise RemoteError(f"{self.url}{path}: HTTP {response.status_code}: {response.text[:300]}")
        return response

    def _cancel_remote(self, ticket_id: int) -> bool:
        try:
            response = self._http.delete(f"/v1/tickets/{ticket_id}")
        except httpx.HTTPError:
            response = None  # unreachable: the ticket is cancelled here all the same
        if response is not None and response.status_code == 409:
            return False  # already answered: its result is on the way
        with self._lock:
            self._pending.pop(ticket_id, None)
        return True

    def _settle(self, ticket: Ticket, out: TicketOut) -> None:
        if out.status == "done" and out.result is not None:
            ticket._complete(out.result.to_result())
        elif out.status == "cancelled":
            Ticket.cancel(ticket)

    def _on_message(self, text: str) -> None:
        try:
            out = TicketOut.model_validate_json(text)
        except ValueError:
            return  # a pong, or a message this client does not know
        with self._lock:
            ticket = self._pending.pop(out.ticket, None)
            if ticket is None:
                self._early[out.ticket] = out
                while len(self._early) > 4096:  # other clients' tickets: keep only recent ones
                    self._early.popitem(last=False)
                return
        self._settle(ticket, out)

    def _catch_up(self) -> None:
        """After a (re)connect: ask for every pending ticket, since its result may have been missed."""
        with self._lock:
            waiting = list(self._pending.values())
        for ticket in waiting:
            response = self._http.get(f"/v1/tickets/{ticket.id}")
            if response.status_code == 404:  # the server restarted and forgot it, or it was cancelled there
                found = self._pending_pop(ticket.id)
                if found is not None:
                    found._complete(_fallback(found, "lost: the server no longer knows this ticket"))
            elif response.status_code == 200:
                out = TicketOut.model_validate(response.json())
                if out.status != "pending" and self._pending_pop(ticket.id) is not None:
                    self._settle(ticket, out)

    def _pending_pop(self, ticket_id: int) -> RemoteTicket | None:
        with self._lock:
            return self._pending.pop(ticket_id, None)

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [
                t
                for t in self._pending.values()
                if t.deadline is not None and now > t.deadline + LATE_GRACE_S
            ]
            for ticket in late:
                del self._pending[ticket.id]
        for ticket in late:
            ticket._complete(_fallback(ticket, "deadline: no answer from the server"))

    def _listen(self) -> None:
        ws_url = "ws" + self.url.removeprefix("http") + "/v1/stream"
        backoff_s = 0.1
        while not self._closed.is_set():
            try:
                with connect(ws_url, additional_headers=self._headers, open_timeout=self._timeout_s) as ws:
                    self._connected.set()
                    backoff_s = 0.1
                    self._catch_up()
                    self._read(ws)
            except (OSError, WebSocketException, httpx.HTTPError) as err:
                self._stream_error = f"{type(err).__name__}: {err}"  # gone: expire what is late, reconnect
            self._connected.clear()
            self._expire()
            self._closed.wait(backoff_s)
            backoff_s = min(backoff_s * 2, 2.0)

    def _read(self, ws: ClientConnection) -> None:
        expired_at = time.monotonic()
        while not self._closed.is_set():
            try:
                message = ws.recv(timeout=0.25)
            except TimeoutError:
                message = None
            if message is not None:
                self._on_message(message if isinstance(message, str) else message.decode())
            if time.monotonic() - expired_at >= 0.25:
                expired_at = time.monotonic()
                self._expire()
