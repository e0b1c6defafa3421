"""The HTTP API: a FastAPI view over a DecisionService, like the demo is a Textual view over it.

    app = build_app(DecisionService(model="default"))   # daydream serve runs it with uvicorn

Every decision has a deadline (the request's or the server's), so the game always gets an answer in
time: a missed deadline or a model failure is the flagged rules fallback, never a 5xx.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at runtime,
and some of them name dependencies that exist only inside ``build_app``.
"""

import asyncio
import contextlib
import hmac
import json
import math
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import HTTPException
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from characters import build_json_schemas
from engine.backends.rules import build_rule_motivation
from engine.serve import contract
from engine.serve.bodies import DecideCase, DecisionOut, HealthOut, StatsOut, TicketOut
from engine.serve.tickets import TicketStore, ticket_body
from engine.service import DecisionService, QueueFull
from engine.ticket import DecisionResult, Ticket

API_VERSION = "1"
_case = TypeAdapter(DecideCase)


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before any route reads it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        chunks, size = [], 0
        while True:  # chunked bodies declare no length: count what arrives
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body over the {self.max_bytes}-byte limit"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _error_path(loc: tuple[int | str, ...]) -> str:
    """``[3].profile.name``; a dict key that is no plain word is quoted: ``relationships["Old Bo"]``."""
    parts = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif p == "[key]":  # pydantic's marker: the key itself failed, not its value
            parts.append(p)
        else:
            parts.append(f".{p}" if _WORD.fullmatch(p) else f"[{json.dumps(p, ensure_ascii=False)}]")
    return "".join(parts).lstrip(".") or "(body)"


def _validation_detail(err: ValidationError, prefix: tuple[int | str, ...]) -> list[dict[str, Any]]:
    out = []
    for item in err.errors(include_url=False, include_input=False):
        loc = (*prefix, *item["loc"])
        out.append(
            {"loc": ["body", *loc], "path": _error_path(loc), "msg": item["msg"], "type": item["type"]}
        )
    return out


def _parse_cases(raw: Any, max_cases: int) -> tuple[list[DecideCase], bool]:
    """The cases in a body (one object or a list) and whether it was a list; raises HTTP 422."""
    many = isinstance(raw, list)
    items = raw if many else [raw]
    if many and not 1 <= len(items) <= max_cases:
        msg = f"give 1 to {max_cases} cases in a list"
        raise HTTPException(422, [{"loc": ["body"], "path": "(body)", "msg": msg, "type": "too_long"}])
    cases, errors = [], []
    for index, item in enumerate(items):
        try:
            cases.append(_case.validate_python(item))
        except ValidationError as err:
            errors.extend(_validation_detail(err, (index,) if many else ()))
    if errors:
        raise HTTPException(422, errors)
    return cases, many


async def _read_json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"invalid JSON: {err}"
        raise HTTPException(
            422, [{"loc": ["body"], "path": "(body)", "msg": msg, "type": "json_invalid"}]
        ) from None


_many_decisions = TypeAdapter(list[DecisionOut])
_many_tickets = TypeAdapter(list[TicketOut])


def _json(body: BaseModel | list[DecisionOut] | list[TicketOut], status_code: int = 200) -> Response:
    """The body serialised by pydantic directly: the route's response_model documents it, and
    FastAPI would otherwise validate again an answer the engine has already validated."""
    if isinstance(body, BaseModel):
        data = body.model_dump_json().encode()
    elif body and isinstance(body[0], TicketOut):
        data = _many_tickets.dump_json(body)
    else:
        data = _many_decisions.dump_json(body)  # type: ignore[arg-type]
    return Response(data, status_code=status_code, media_type="application/json")


def build_app(
    service: DecisionService,
    *,
    token: str | None = None,
    max_body_bytes: int = 1 << 20,
    max_cases: int = 256,
    default_deadline_ms: int = 30_000,
    store: TicketStore | None = None,
) -> FastAPI:
    """The FastAPI app over ``service``; with ``token`` every route but health needs it as a bearer.

    Without a token the OpenAPI document declares no security scheme and no 401, since neither
    applies. /docs and /redoc load their scripts from the app itself, so they work offline.
    """
    tickets = store or TicketStore()
    started = time.monotonic()
    bearer = HTTPBearer(auto_error=False, description="The token from `daydream serve --token-env VAR`.")

    def check_token(given: str | None) -> bool:
        if token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), token.encode())

    async def require_token(  # async: a sync dependency would cost a thread hop per request
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if not check_token(credentials.credentials if credentials else None):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tickets.attach(asyncio.get_running_loop())
        yield

    app = FastAPIOffline(
        title="Daydream",
        version=API_VERSION,
        summary="Character decisions for any game engine: three candidate next actions per character.",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},  # the badge would call validator.swagger.io
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(405, contract.method_not_allowed(app.router.routes))
    auth: list[DependsParam] = [Depends(require_token)] if token is not None else []
    guarded = (401,) if token is not None else ()

    def queue_full(err: QueueFull) -> JSONResponse:
        stats = service.stats()
        rate = max(stats.decisions_per_s, 0.5)
        retry_s = min(30, max(1, math.ceil(stats.queued / rate)))
        return JSONResponse({"detail": str(err)}, status_code=429, headers={"Retry-After": str(retry_s)})

    def submit_all(cases: list[DecideCase]) -> list[Ticket]:
        if service.max_queue - service.pending() < len(cases):
            raise QueueFull(f"decision queue has room for {service.max_queue - service.pending()}")
        submitted: list[Ticket] = []
        try:
            for case in cases:
                deadline_ms = case.deadline_ms or default_deadline_ms
                submitted.append(
                    service.submit(
                        case.profile,
                        case.situation,
                        priority=case.priority,
                        deadline_s=deadline_ms / 1000.0,
                        seed=case.seed,
                    )
                )
        except QueueFull:
            for ticket in submitted:  # all or nothing: a list is one request
                ticket.cancel()
            raise
        return submitted

    async def answer(ticket: Ticket, case: DecideCase) -> DecisionOut:
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def _set() -> None:
            if not finished.done():
                finished.set_result(None)

        def _wake(_: Ticket) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the server is shutting down
                loop.call_soon_threadsafe(_set)

        ticket.add_done_callback(_wake)
        deadline_s = (case.deadline_ms or default_deadline_ms) / 1000.0
        try:  # the service's deadline watcher answers in time; this only guards against a bug there
            await asyncio.wait_for(finished, deadline_s + 5.0)
        except TimeoutError:
            ticket.cancel()
        if ticket.done() and not ticket.cancelled():
            return DecisionOut.from_result(ticket.id, case.id, ticket.result(timeout=0))
        motivation = build_rule_motivation(ticket.profile, ticket.situation, ticket.seed)
        latency_ms = (time.monotonic() - ticket.submitted_at) * 1000.0
        fallback = DecisionResult(motivation, "fallback", latency_ms, model_id="rules", reason="cancelled")
        return DecisionOut.from_result(ticket.id, case.id, fallback)

    body_doc = contract.case_body(max_cases)

    @app.post(
        "/v1/decide",
        dependencies=auth,
        response_model=DecisionOut | list[DecisionOut],
        responses={
            200: {"description": "The decisions, in the order of the cases (an object for one case)."},
            **contract.errors(*guarded, 413, 422, 429),
        },
        openapi_extra=body_doc,
        operation_id="decide",
        tags=["decisions"],
    )
    async def decide(request: Request) -> Any:
        """Decide for one case or a list; waits for the answers (each within its deadline)."""
        cases, many = _parse_cases(await _read_json(request), max_cases)
        try:
            submitted = submit_all(cases)
        except QueueFull as err:
            return queue_full(err)
        answers = await asyncio.gather(*(answer(t, c) for t, c in zip(submitted, cases, strict=True)))
        return _json(list(answers) if many else answers[0])

    @app.post(
        "/v1/submit",
        status_code=202,
        dependencies=auth,
        response_model=TicketOut | list[TicketOut],
        responses={
            202: {
                "description": "Queued: the tickets, in the order of the cases.",
                "links": contract.submit_links(),
            },
            **contract.errors(*guarded, 413, 422, 429),
        },
        openapi_extra=body_doc,
        operation_id="submit",
        tags=["tickets"],
    )
    async def submit(request: Request) -> Any:
        """Queue one case or a list and return ticket ids at once; poll them or watch /v1/stream."""
        cases, many = _parse_cases(await _read_json(request), max_cases)
        try:
            submitted = submit_all(cases)
        except QueueFull as err:
            return queue_full(err)
        for ticket, case in zip(submitted, cases, strict=True):
            tickets.add(ticket, case.id)
        bodies = [ticket_body(t, c.id) for t, c in zip(submitted, cases, strict=True)]
        return _json(bodies if many else bodies[0], status_code=202)

    def lookup(ticket_id: int) -> tuple[Ticket, str | None]:
        found = tickets.get(ticket_id)
        if found is None:
            raise HTTPException(404, f"no ticket {ticket_id} (unknown, cancelled, or finished long ago)")
        return found

    @app.get(
        "/v1/tickets/{ticket}",
        dependencies=auth,
        response_model=TicketOut,
        responses={
            200: {
                "description": "The ticket: pending, or done with its result.",
                "links": contract.ticket_link("cancel_ticket"),
            },
            **contract.errors(*guarded, 404, 422),
        },
        operation_id="get_ticket",
        tags=["tickets"],
    )
    async def get_ticket(ticket: int) -> TicketOut:
        """A ticket's state, with its result once done. ``ticket`` is the id the bodies call so."""
        return ticket_body(*lookup(ticket))

    @app.delete(
        "/v1/tickets/{ticket}",
        dependencies=auth,
        response_model=TicketOut,
        responses={
            200: {
                "description": "Cancelled: the ticket's last state. It is gone from then on (404).",
                "links": contract.ticket_link("get_ticket"),
            },
            **contract.errors(*guarded, 404, 409, 422),
        },
        operation_id="cancel_ticket",
        tags=["tickets"],
    )
    async def cancel_ticket(ticket: int) -> TicketOut:
        """Cancel a pending ticket, which then is gone (404); 409 when it was already answered.

        Streams hear of the cancellation like of any finished ticket.
        """
        found, case_id = lookup(ticket)
        found.cancel()
        if not found.cancelled():
            raise HTTPException(409, f"ticket {ticket} was already answered")
        tickets.forget(ticket)
        return ticket_body(found, case_id)

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        """Every ticket submitted with /v1/submit, pushed as a TicketOut message when it finishes.

        Authenticate with the Authorization header, or ``?token=`` where a client cannot set headers.
        """
        scheme, _, given = websocket.headers.get("authorization", "").partition(" ")
        given_token = given if scheme.lower() == "bearer" else websocket.query_params.get("token")
        if not check_token(given_token):
            await websocket.close(code=1008, reason="missing or wrong bearer token")
            return
        await websocket.accept()
        subscriber = tickets.subscribe()

        async def push() -> None:
            while True:
                body = await subscriber.queue.get()
                await websocket.send_text(body.model_dump_json())

        async def listen() -> None:  # the stream is one-way; a {"type": "ping"} gets a pong
            while True:
                message = await websocket.receive_text()
                with contextlib.suppress(ValueError, AttributeError):
                    if json.loads(message).get("type") == "ping":
                        await websocket.send_text('{"type":"pong"}')

        tasks = [
            asyncio.create_task(push()),
            asyncio.create_task(listen()),
            asyncio.create_task(subscriber.overflowed.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[2] in done:  # fell behind: the client reconnects and GETs what it missed
                await websocket.close(code=1013, reason="stream fell behind; reconnect")
        except WebSocketDisconnect:
            pass
        finally:
            tickets.unsubscribe(subscriber)
            # Not awaited: the connection is over, and a server (or test client) may cancel this
            # handler as soon as the peer has gone. Pending tasks stop at their next await.
            for task in tasks:
                task.cancel()
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved, so asyncio does not log it as lost

    @app.get("/v1/health", response_model=HealthOut, operation_id="health", tags=["server"])
    async def health() -> HealthOut:
        """Up, on which model, how many decisions wait. Needs no token."""
        return HealthOut(
            model_id=service.model_id,
            backend=service.backend.name,
            queued=service.pending(),
            uptime_s=round(time.monotonic() - started, 3),
        )

    @app.get(
        "/v1/stats",
        dependencies=auth,
        response_model=StatsOut,
        responses=contract.errors(*guarded),
        operation_id="stats",
        tags=["server"],
    )
    async def stats() -> StatsOut:
        """Latency percentiles, throughput, sources, retries, fallbacks; per-server counts for remote backends."""
        backend_stats = getattr(service.backend, "stats", None)
        return StatsOut(
            service=service.stats(),
            backend=backend_stats() if callable(backend_stats) else {},
            tickets=tickets.stats(),
        )

    @app.get(
        "/v1/schema",
        dependencies=auth,
        responses=contract.errors(*guarded),
        operation_id="schema",
        tags=["server"],
    )
    async def schema() -> dict[str, Any]:
        """The JSON Schemas: motivation, profile, situation, and the request and response bodies."""
        return {
            **build_json_schemas(),
            "decide_case": DecideCase.model_json_schema(),
            "decision": DecisionOut.model_json_schema(),
            "ticket": TicketOut.model_json_schema(),
        }

    contract.install_openapi(app)
    return app
