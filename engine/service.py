"""DecisionService: non-blocking decisions for a game loop, batched, validated, never invalid.

service = DecisionService(model="default")
ticket = service.submit(profile, situation, deadline_s=2.0)
...                                   # game keeps rendering
for ticket in service.poll():         # never blocks
    act_on(ticket.result().motivation)
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from characters import CharacterProfile, Situation
from engine.backends.base import Backend
from engine.backends.rules import RulesBackend, build_rule_motivation
from engine.cache import ResultCache
from engine.prompt import PROMPT_VERSION
from engine.request import ABANDONED, DecisionRequest, RawDecision, Sampling, cache_key
from engine.stats import ServiceStats, StatsRecorder
from engine.ticket import DecisionResult, Source, Ticket
from engine.validation import InvalidOutput, parse_motivation

RETRY_SEED_OFFSET = 1_000_003


class QueueFull(RuntimeError):
    """The service's bounded queue is full; the caller should retry later or drop the request."""


@dataclass
class _Attempt:
    ticket: Ticket
    request: DecisionRequest
    attempt: int = 1
    prompt_tokens: int = 0
    output_tokens: int = 0
    last_error: str | None = None


class DecisionService:
    """Runs decisions on a background thread and hands back tickets the game can poll."""

    def __init__(
        self,
        model: Backend | str = "rules",
        *,
        workers: int = 1,
        max_batch: int = 8,
        max_queue: int = 256,
        cache_size: int = 1024,
        sampling: Sampling | None = None,
        gather_s: float = 0.002,
        default_deadline_s: float | None = None,
        backend_factory: Callable[[], Backend] | None = None,
        keep_finished: bool = True,
        continuous: bool = True,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if isinstance(model, str):
            from engine.models import load_backend

            spec = model
            backend_factory = backend_factory or (lambda: load_backend(spec))
            first = backend_factory()
        else:
            first = model
        # A backend that copes with calls from several threads (a remote one) is shared by all
        # workers, so its view of each server's load stays whole; others get one copy per worker
        # when a factory is given, or are shared under a lock.
        thread_safe = bool(getattr(first, "thread_safe", False))
        self._backends: list[Backend] = [first]
        for _ in range(workers - 1):
            self._backends.append(backend_factory() if backend_factory and not thread_safe else first)
        # the backends this service made are its to close; one the caller passed in stays theirs
        self._owned = list({id(b): b for b in self._backends if b is not model}.values())
        self.model_id = first.model_id
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.sampling = sampling or Sampling()
        self.gather_s = gather_s
        self.default_deadline_s = default_deadline_s
        # poll() hands back finished tickets; a caller that never polls (the HTTP server waits on
        # each ticket itself) turns this off so finished tickets do not pile up.
        self.keep_finished = keep_finished
        # A backend with ``generate_stream`` (llama.cpp) admits tickets between decode steps and
        # hands each answer back as it ends, instead of whole batches; False keeps whole batches.
        # ``max_batch`` caps how many decode together. On 2 cores a step costs about as much per
        # sequence at 8 as at 16 (81 against 83 output tokens/s), so 16 only stretches every
        # answer: in an overloaded town day, 8 let the model answer 76-79 decisions to 16's 43-62.
        self.continuous = continuous
        self.cache: ResultCache[DecisionResult] = ResultCache(cache_size)
        self._fallback = RulesBackend()
        self._stats = StatsRecorder()
        self._queue: list[tuple[int, float, int, Ticket]] = []
        self._cond = threading.Condition()
        self._finished: deque[Ticket] = deque()
        self._running: set[Ticket] = set()  # taken by a worker, not finished yet
        self._deadlines: list[tuple[float, int, Ticket]] = []
        self._deadline_cond = threading.Condition()
        self._closed = False
        # Seconds a batch takes: a moving average of finished batches, raised by abandoned ones
        # (a lower bound). Under overload, earliest-deadline-first hands the model only tickets that
        # are about to expire, and none finishes; a ticket with less time left than this gets its
        # fallback at once instead, leaving the model to the ones it can still answer.
        self._batch_s: float | None = None
        shared = len({id(b) for b in self._backends}) < len(self._backends)
        self._backend_lock = threading.Lock() if shared and not thread_safe else None
        self._threads = [
            threading.Thread(target=self._work, args=(b,), name=f"daydream-worker-{i}", daemon=True)
            for i, b in enumerate(self._backends)
        ]
        self._threads.append(
            threading.Thread(target=self._watch_deadlines, name="daydream-deadlines", daemon=True)
        )
        # A worker holding the GIL for the default 5 ms switch interval shows up as frame stalls
        # in the game's thread; 1 ms keeps submit() and poll() from waiting behind sampling.
        if sys.getswitchinterval() > 0.001:
            sys.setswitchinterval(0.001)
        for thread in self._threads:
            thread.start()

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
        """Queue a decision and return at once. Higher ``priority`` runs sooner.

        When ``deadline_s`` passes before the model answers, the ticket gets the rules fallback
        (flagged ``fallback``) so the game always has an answer in time. Raises QueueFull when the
        bounded queue is full.
        """
        if self._closed:
            raise RuntimeError("DecisionService is closed")
        deadline_s = self.default_deadline_s if deadline_s is None else deadline_s
        now = time.monotonic()
        ticket = Ticket(
            profile=profile,
            situation=situation,
            priority=priority,
            deadline=None if deadline_s is None else now + deadline_s,
            seed=self.sampling.seed if seed is None else seed,
            submitted_at=now,
        )
        if self.keep_finished:
            ticket.add_done_callback(self._finished.append)
        cached = None
        if self.cache.max_entries > 0:  # no key to build when there is no cache
            key = cache_key(self.model_id, PROMPT_VERSION, profile, situation, self.sampling, ticket.seed)
            cached = self.cache.get(key)
        if cached is not None:
            self._deliver(ticket, cached, source="cache")
            return ticket
        with self._cond:
            if len(self._queue) >= self.max_queue:
                self._drop_finished()
            if len(self._queue) >= self.max_queue:
                raise QueueFull(f"decision queue is full ({self.max_queue} waiting)")
            order = ticket.deadline if ticket.deadline is not None else float("inf")
            heapq.heappush(self._queue, (-priority, order, ticket.id, ticket))
            self._cond.notify()
        if ticket.deadline is not None:
            with self._deadline_cond:
                heapq.heappush(self._deadlines, (ticket.deadline, ticket.id, ticket))
                self._deadline_cond.notify()
        return ticket

    def poll(self) -> list[Ticket]:
        """Tickets finished since the last poll (results and cancellations). Never blocks."""
        out = []
        while True:
            try:
                out.append(self._finished.popleft())
            except IndexError:
                return out

    def stats(self) -> ServiceStats:
        """Latency percentiles, throughput, batch sizes, cache hits, retries and fallbacks."""
        return self._stats.snapshot(self.pending())

    @property
    def backend(self) -> Backend:
        """The backend the first worker runs (all of them, for a shared backend)."""
        return self._backends[0]

    def pending(self) -> int:
        """How many decisions wait in the queue (not counting ones already answered by their deadline)."""
        with self._cond:
            return sum(1 for entry in self._queue if not entry[-1].done())

    def close(self, timeout_s: float = 0.5) -> None:
        """Stop the service: queued and in-flight tickets are cancelled and its threads end.

        Idempotent and safe from any thread (a ticket callback included). Returns within about
        ``timeout_s`` even while a batch decodes: backends the service made are closed, which
        stops their decode at the next step. A worker still inside a backend the caller owns is a
        daemon thread and ends when that call returns.
        """
        end = time.monotonic() + timeout_s
        with self._cond:
            self._closed = True
            leftovers = [entry[-1] for entry in self._queue] + list(self._running)
            self._queue.clear()
            self._cond.notify_all()
        with self._deadline_cond:
            self._deadline_cond.notify_all()
        for ticket in leftovers:
            ticket.cancel()
        for backend in self._owned:
            close = getattr(backend, "close", None)
            if callable(close):
                close(timeout_s=max(0.0, end - time.monotonic()))
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, end - time.monotonic()))

    def __enter__(self) -> DecisionService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _request_for(self, ticket: Ticket, seed: int | None = None) -> DecisionRequest:
        sampling = self.sampling.with_seed(ticket.seed if seed is None else seed)
        return DecisionRequest(ticket.profile, ticket.situation, sampling, abandoned=ticket.done)

    def _deliver(self, ticket: Ticket, result: DecisionResult, source: Source) -> None:
        latency_ms = (time.monotonic() - ticket.submitted_at) * 1000.0
        final = DecisionResult(
            motivation=result.motivation,
            source=source,
            latency_ms=latency_ms,
            prompt_tokens=result.prompt_tokens,
            output_tokens=result.output_tokens,
            model_id=result.model_id,
            reason=result.reason,
            attempts=result.attempts,
        )
        if ticket._complete(final):
            self._stats.record_result(source, latency_ms, final.reason)

    def _fallback_result(self, ticket: Ticket, reason: str, attempts: int = 0) -> DecisionResult:
        motivation = build_rule_motivation(ticket.profile, ticket.situation, ticket.seed)
        return DecisionResult(
            motivation=motivation,
            source="fallback",
            latency_ms=0.0,
            model_id=self._fallback.model_id,
            reason=reason,
            attempts=attempts,
        )

    def _drop_finished(self) -> None:
        """Forget queued tickets already answered (deadline fallback) or cancelled; holds ``_cond``."""
        live = [entry for entry in self._queue if not entry[-1].done()]
        if len(live) < len(self._queue):
            heapq.heapify(live)
            self._queue = live

    def _take_batch(self) -> list[Ticket] | None:
        if not self._wait_for_work():
            return None
        if self.gather_s > 0:
            time.sleep(self.gather_s)  # let tickets submitted in the same frame join this batch
        return self._pop_tickets(self.max_batch, at_least_one=True)

    def _wait_for_work(self) -> bool:
        """Block until the queue has a ticket (True) or the service closes (False)."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            return not self._closed

    def _pop_tickets(self, n: int, *, at_least_one: bool) -> list[Ticket]:
        """Up to ``n`` queued tickets for the model, best first; never blocks.

        Tickets already past their deadline, or with less time left than the model takes, get
        their fallback here instead. ``at_least_one``: when all are short of time, one goes anyway.
        """
        batch: list[Ticket] = []
        hopeless: list[Ticket] = []
        expired: list[Ticket] = []
        with self._cond:
            now = time.monotonic()
            while self._queue and len(batch) < n and not self._closed:
                ticket = heapq.heappop(self._queue)[-1]
                if ticket.done():
                    continue
                if ticket.deadline is not None and ticket.deadline <= now:
                    expired.append(ticket)  # already past it: a plain "deadline", never a batch
                elif ticket.deadline is not None and self._batch_s and ticket.deadline - now < self._batch_s:
                    hopeless.append(ticket)
                else:
                    batch.append(ticket)
            # one goes anyway: the estimate may be stale, and only a batch renews it
            if at_least_one and hopeless and not batch:
                batch.append(max(hopeless, key=lambda t: t.deadline or 0.0))
                hopeless.remove(batch[0])
            self._running.update(batch)
        for ticket in expired:
            self._deliver(ticket, self._fallback_result(ticket, "deadline"), "fallback")
        for ticket in hopeless:
            reason = f"deadline: too little time left for the model (a batch takes ~{self._batch_s:.1f} s)"
            self._deliver(ticket, self._fallback_result(ticket, reason), "fallback")
        return batch

    def _work(self, backend: Backend) -> None:
        if self.continuous and callable(getattr(backend, "generate_stream", None)):
            while self._wait_for_work():
                self._run_stream(backend)
            return
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            try:
                self._run_batch(backend, batch)
            except Exception as err:  # a bug here must not kill the worker and strand its tickets
                reason = f"internal: {type(err).__name__}: {err}"
                for ticket in batch:
                    self._deliver(ticket, self._fallback_result(ticket, reason), "fallback")
            finally:
                with self._cond:
                    self._running.difference_update(batch)

    def _generate(self, backend: Backend, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        start = time.perf_counter()
        try:
            with self._backend_lock or contextlib.nullcontext():
                raws = backend.generate(requests)
            if len(raws) != len(requests):
                raise RuntimeError(f"backend returned {len(raws)} results for {len(requests)}")
        except Exception as err:  # a broken backend must not take the game down
            raws = [RawDecision(text="", error=f"backend: {type(err).__name__}: {err}")] * len(requests)
        elapsed = time.perf_counter() - start
        self._stats.record_batch(len(requests), sum(r.output_tokens for r in raws), elapsed)
        if any((r.error or "").startswith(ABANDONED) for r in raws):
            self._batch_s = max(self._batch_s or 0.0, elapsed)
        else:
            self._note_decode_time(elapsed)
        return raws

    def _note_decode_time(self, seconds: float) -> None:
        """Fold a measured decode time into the moving average that admission uses."""
        self._batch_s = seconds if self._batch_s is None else 0.7 * self._batch_s + 0.3 * seconds

    def _run_batch(self, backend: Backend, batch: list[Ticket]) -> None:
        attempts = [_Attempt(t, self._request_for(t)) for t in batch]
        for round_no in (1, 2):
            live = [a for a in attempts if not a.ticket.done()]
            if not live:
                return
            raws = self._generate(backend, [a.request for a in live])
            failed = []
            for attempt, raw in zip(live, raws, strict=True):
                attempt.attempt = round_no
                if not self._judge(backend, attempt, raw):
                    failed.append(attempt)
            attempts = failed
            if round_no == 1:
                for attempt in failed:
                    if attempt.ticket.done():  # answered meanwhile (its deadline): nothing to retry
                        continue
                    self._stats.record_retry()
                    attempt.request = self._request_for(
                        attempt.ticket, attempt.ticket.seed + RETRY_SEED_OFFSET
                    )
        for attempt in attempts:
            reason = f"invalid: {attempt.last_error}"
            self._deliver(attempt.ticket, self._fallback_result(attempt.ticket, reason, 2), "fallback")

    def _judge(self, backend: Backend, attempt: _Attempt, raw: RawDecision) -> bool:
        """Deliver (and cache) a valid answer; False, with the error kept, for an invalid one."""
        attempt.prompt_tokens += raw.prompt_tokens
        attempt.output_tokens += raw.output_tokens
        try:
            if raw.error:
                raise InvalidOutput("backend", raw.error)
            motivation = parse_motivation(raw.text, attempt.ticket.profile.name)
        except InvalidOutput as err:
            attempt.last_error = str(err)
            return False
        source: Source = "model" if attempt.attempt == 1 else "retry"
        if backend.name == "rules":  # the game chose no model: say so, it is not a fallback
            source = "rules"
        result = DecisionResult(
            motivation=motivation,
            source=source,
            latency_ms=0.0,
            prompt_tokens=attempt.prompt_tokens,
            output_tokens=attempt.output_tokens,
            model_id=self.model_id,
            reason=attempt.last_error if attempt.attempt == 2 else None,
            attempts=attempt.attempt,
        )
        if self.cache.max_entries > 0:
            self.cache.put(attempt.request.cache_key(self.model_id, PROMPT_VERSION), result)
        self._deliver(attempt.ticket, result, source)
        return True

    def _run_stream(self, backend: Backend) -> None:
        """Continuous batching: the backend takes tickets between its steps and hands each
        answer back as it ends; a retry goes back in ahead of the queue."""
        flights: dict[int, _Attempt] = {}  # id(request) -> its attempt, while the backend has it
        retries: deque[_Attempt] = deque()
        tokens = asked = 0

        def forget(ticket: Ticket) -> None:
            with self._cond:
                self._running.discard(ticket)

        def take(n: int) -> list[DecisionRequest]:
            nonlocal asked
            asked += 1
            n = min(n, self.max_batch - len(flights))  # max_batch: how many decode together
            out: list[_Attempt] = []
            while retries and len(out) < n:
                attempt = retries.popleft()
                if attempt.ticket.done():
                    forget(attempt.ticket)  # answered meanwhile (its deadline): nothing to retry
                else:
                    out.append(attempt)
            if len(out) < n:
                first = not flights and not out  # nothing running: one goes even if short of time
                tickets = self._pop_tickets(n - len(out), at_least_one=first)
                out += [_Attempt(t, self._request_for(t)) for t in tickets]
            for attempt in out:
                flights[id(attempt.request)] = attempt
            return [attempt.request for attempt in out]

        def emit(request: DecisionRequest, raw: RawDecision) -> None:
            nonlocal tokens
            attempt = flights.pop(id(request))
            ticket = attempt.ticket
            tokens += raw.output_tokens
            try:
                if raw.output_tokens and not (raw.error or "").startswith(ABANDONED):
                    self._note_decode_time(raw.decode_s)  # an instant error says nothing about it
                if self._judge(backend, attempt, raw) or ticket.done():
                    return
                if attempt.attempt == 1:
                    self._stats.record_retry()
                    attempt.attempt = 2
                    attempt.request = self._request_for(ticket, ticket.seed + RETRY_SEED_OFFSET)
                    retries.append(attempt)
                    return
                reason = f"invalid: {attempt.last_error}"
                self._deliver(ticket, self._fallback_result(ticket, reason, 2), "fallback")
            except Exception as err:  # a bug here must not strand the ticket nor stop the stream
                self._deliver(
                    ticket,
                    self._fallback_result(ticket, f"internal: {type(err).__name__}: {err}"),
                    "fallback",
                )
            finally:
                if ticket.done():
                    forget(ticket)

        start = time.perf_counter()
        passes, live_sum = 0, 0.0
        while True:
            try:
                with self._backend_lock or contextlib.nullcontext():
                    mean_live = backend.generate_stream(take, emit)  # type: ignore[attr-defined]
                passes, live_sum = passes + 1, live_sum + mean_live
                failure = None if asked else "backend: it took no request"
            except Exception as err:  # a broken backend must not take the game down
                failure = f"backend: {type(err).__name__}: {err}"
            if failure is not None:
                # a backend that fails before taking anything would leave the queue as it is and
                # this worker spinning on it: what waits gets the fallback, as in whole batches
                stranded = [a.ticket for a in [*flights.values(), *retries]]
                if not asked:
                    stranded += self._pop_tickets(self.max_batch, at_least_one=True)
                for ticket in stranded:
                    self._deliver(ticket, self._fallback_result(ticket, failure), "fallback")
                    forget(ticket)
                return
            if self._closed or all(a.ticket.done() for a in retries):
                break
        for attempt in retries:  # answered by their deadline while waiting for a slot
            forget(attempt.ticket)
        if tokens:
            self._stats.record_batch(live_sum / passes, tokens, time.perf_counter() - start)

    def _watch_deadlines(self) -> None:
        while True:
            with self._deadline_cond:
                while not self._closed:
                    while self._deadlines and self._deadlines[0][2].done():
                        heapq.heappop(self._deadlines)
                    if not self._deadlines:
                        self._deadline_cond.wait()
                        continue
                    wait_s = self._deadlines[0][0] - time.monotonic()
                    if wait_s <= 0:
                        break
                    self._deadline_cond.wait(wait_s)
                if self._closed:
                    return
                _, _, ticket = heapq.heappop(self._deadlines)
            if not ticket.done():
                self._deliver(ticket, self._fallback_result(ticket, "deadline"), "fallback")


def decide(
    profile: CharacterProfile,
    situation: Situation,
    *,
    service: DecisionService | None = None,
    model: str = "default",
    deadline_s: float | None = None,
    seed: int | None = None,
) -> DecisionResult:
    """Make one decision synchronously (for scripts and tools, not the game loop)."""
    svc = service or _shared_service(model)
    return svc.submit(profile, situation, deadline_s=deadline_s, seed=seed).result()


async def decide_async(
    profile: CharacterProfile,
    situation: Situation,
    *,
    service: DecisionService | None = None,
    model: str = "default",
    deadline_s: float | None = None,
    seed: int | None = None,
) -> DecisionResult:
    """Await one decision without blocking the event loop."""
    svc = service or _shared_service(model)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[DecisionResult] = loop.create_future()
    ticket = svc.submit(profile, situation, deadline_s=deadline_s, seed=seed)

    def _resolve(done: Ticket) -> None:
        def _set() -> None:
            if future.done():
                return
            if done.cancelled():
                future.cancel()
            else:
                future.set_result(done.result())

        loop.call_soon_threadsafe(_set)

    ticket.add_done_callback(_resolve)
    try:
        return await future
    except asyncio.CancelledError:
        ticket.cancel()
        raise


_shared: dict[str, DecisionService] = {}
_shared_lock = threading.Lock()


def _shared_service(model: str) -> DecisionService:
    with _shared_lock:
        if model not in _shared:
            _shared[model] = DecisionService(model=model)
        return _shared[model]
